#!/usr/bin/env bash
# Builds the CPU code and its tests under a sanitizer with clang (launch/sanitizer_build.sh), each in its own build
# directory, and runs the suites under it with the suppressions of tests/sanitizers/ (each explained there).
# docs/reliability.md says what each covers.
#   launch/sanitizers.sh address [CTEST_ARGS...]   ASan + UBSan, build-asan/: every suite but those of the labels
#                                                   below; CTEST_ARGS narrow it (-R, -E, -L, ...)
#   launch/sanitizers.sh thread [CTEST_ARGS...]    ThreadSanitizer, build-tsan/: the suites with threads beside MPI
#                                                   (communicator and its exchange thread, gradient reducer, ring
#                                                   attention, watchdog, rank failure, stop signals)
# Labels left out: cluster and slurm (their nodes and daemons start ringtrain in namespaces and under slurmd, outside
# this environment), hf (PyTorch reads the files), bundle (it packages a build for other machines).
set -euo pipefail
kind="${1:-}"
shift || true
case "$kind" in
  address | thread) ;;
  *) echo "sanitizers.sh: error: give 'address' or 'thread' (got '$kind')" >&2; exit 2 ;;
esac
source "$(dirname "${BASH_SOURCE[0]}")/sanitizer_build.sh"

if [ "$kind" = address ]; then
  sanitizer_build address
  cd "$build"
  exec ctest --output-on-failure --timeout 900 -LE '^(cluster|slurm|hf|bundle)$' "$@"
else
  # The threaded suites and what they launch.
  sanitizer_build thread ringtrain communicator_test gradient_reducer_test ring_attention_test mpi_watchdog_test \
    mpi_watchdog_main rank_failure_test rank_failure_main checkpoint_cli_test stop_signal_test
  cd "$build"
  exec ctest --output-on-failure --timeout 900 \
    -R '^(communicator_np|gradient_reducer_np|ring_attention_np|MpiWatchdog\.|RankFailure\.|StopSignal\.|CheckpointCli\.Sig)' "$@"
fi
