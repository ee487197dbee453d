#!/usr/bin/env bash
# The slurm tests' fixture: `up` brings up a 2-node local cluster with Slurm on it (munged, slurmctld, a slurmd per node),
# `down` removes both. Exit 77 (ctest: skipped) with the reason where root or Slurm is missing. An up that fails midway
# takes down what it started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export RINGTRAIN_CLUSTER="${RINGTRAIN_CLUSTER:-rtslurm}"
cluster="$root/launch/cluster.sh"
slurm="$root/launch/slurm_local.sh"

down() {
  local status=0
  "$slurm" down || status=$?
  "$cluster" down || status=$?
  return "$status"
}

# Exit 77 with the reason when this machine cannot run them.
need() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "the slurm tests need root (network namespaces, Slurm's daemons): they skip"
    exit 77
  fi
  for c in ip nsenter munged slurmctld slurmd sbatch; do
    if ! command -v "$c" > /dev/null; then
      echo "'$c' is not installed, so the slurm tests skip; launch/setup.sh --with-slurm installs slurm-wlm, munge and iproute2"
      exit 77
    fi
  done
}

case "${1:-}" in
  up)
    need
    down > /dev/null 2>&1 || true  # what an earlier run left
    trap 'down > /dev/null 2>&1' EXIT
    "$cluster" up 2 --slots 2
    "$slurm" up --cpus 4  # 4 CPUs a node: two 2-task-per-node jobs at once (a reference beside the preempted one)
    trap - EXIT
    ;;
  down)
    need
    down
    ;;
  *)
    echo "slurm_fixture.sh: error: unknown command '${1:-}'; valid: up, down" >&2
    exit 2
    ;;
esac
