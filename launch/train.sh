#!/usr/bin/env bash
# Set up, build, and run the default training job: configs/default.yaml on 2 MPI ranks sharing each sequence
# by ring attention (parallel.cp = 2). Extra arguments pass through and win:
#   ./launch/train.sh --set train.steps=50
#   ./launch/train.sh --set parallel.cp=4            (launches 4 ranks)
#   ./launch/train.sh --set parallel.cp=1            (one process)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/launch/setup.sh"
cd "$root"

# The rank count is parallel.cp * parallel.dp of the final arguments (default cp 2, dp from the config: 1).
cp=2 dp=1
for arg in "$@"; do
  case "$arg" in
    parallel.cp=*) cp="${arg#parallel.cp=}" ;;
    parallel.dp=*) dp="${arg#parallel.dp=}" ;;
  esac
done
ranks=$((cp * dp))

# Open MPI refuses root without --allow-run-as-root, and more ranks than cores without --oversubscribe.
flags=(--oversubscribe --bind-to none --mca btl self,vader)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
exec mpirun -np "$ranks" "${flags[@]}" "$root/build/trainer/ringtrain" train \
  --config "$root/configs/default.yaml" --set parallel.cp=2 "$@"
