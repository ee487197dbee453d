#!/usr/bin/env bash
# Set up, build, and run the default training job: configs/default.yaml on 2 MPI ranks sharing each sequence
# by ring attention (parallel.cp = 2). launch/run.sh launches it (rank count cp x dp x ulysses, rings or Ulysses
# groups kept inside nodes).
# Launcher options come first (see launch/run.sh), then ringtrain's, which pass through and win:
#   ./launch/train.sh --set train.steps=50
#   ./launch/train.sh --set parallel.cp=4            (launches 4 ranks)
#   ./launch/train.sh --set parallel.cp=1            (one process)
#   ./launch/train.sh --hostfile hosts --set parallel.cp=8 parallel.dp=2   (16 ranks on the hostfile's nodes)
#   ./launch/train.sh --local-cluster --set parallel.cp=4                 (the nodes of launch/cluster.sh up N)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/launch/setup.sh"
cd "$root"

launcher=()
while [ $# -gt 0 ]; do
  case "$1" in
    --hostfile | --agent) launcher+=("$1" "${2:-}"); shift 2 || shift ;;
    --hostfile=* | --agent=* | --local-cluster | --dry-run) launcher+=("$1"); shift ;;
    *) break ;;
  esac
done
exec "$root/launch/run.sh" "${launcher[@]}" train --config "$root/configs/default.yaml" --set parallel.cp=2 "$@"
