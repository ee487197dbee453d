#!/usr/bin/env bash
# Builds the CPU code and its tests under a sanitizer, each in its own build directory, and runs the suites under it
# with the suppressions of tests/sanitizers/ (each explained there). docs/reliability.md says what each covers.
#   launch/sanitizers.sh address [CTEST_ARGS...]   AddressSanitizer + UBSan, build-asan/: every suite but those of
#                                                   the labels below; CTEST_ARGS narrow it (-R, -L, ...)
#   launch/sanitizers.sh thread [CTEST_ARGS...]    ThreadSanitizer, build-tsan/: the suites with threads beside MPI
#                                                   (communicator and its exchange thread, gradient reducer, ring
#                                                   attention, watchdog, rank failure, stop signals)
# The compiler is CXX (default g++; clang++ works too). Labels left out under ASan: cluster and slurm (their nodes
# and daemons start ringtrain in namespaces and under slurmd, outside this environment), hf (PyTorch reads the files).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kind="${1:-}"
shift || true
case "$kind" in
  address) build="$root/build-asan" ;;
  thread) build="$root/build-tsan" ;;
  *) echo "sanitizers.sh: error: give 'address' or 'thread' (got '$kind')" >&2; exit 2 ;;
esac
"$root/launch/setup.sh" >/dev/null  # the Debian packages (and build/, which the suites do not use)

supp="$root/tests/sanitizers"
# fast_unwind_on_malloc=0: Debian's libraries have no frame pointers, so the fast unwinder stops at their first frame
# and LeakSanitizer could not match Open MPI's allocations (made in components MPI_Finalize unloads) to lsan.supp.
export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:strict_init_order=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp:print_suppressions=0"

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="${CXX:-g++}" \
    -DRINGTRAIN_CUDA=OFF -DRINGTRAIN_BENCH=OFF -DRINGTRAIN_SANITIZE="$kind"
fi
cd "$build"
if [ "$kind" = address ]; then
  cmake --build . -j "$(nproc)"
  exec ctest --output-on-failure --timeout 900 -LE '^(cluster|slurm|hf)$' "$@"
else
  # The threaded suites and what they launch.
  targets=(ringtrain communicator_test gradient_reducer_test ring_attention_test mpi_watchdog_test mpi_watchdog_main
           rank_failure_test rank_failure_main checkpoint_cli_test stop_signal_test)
  cmake --build . -j "$(nproc)" --target "${targets[@]}"
  exec ctest --output-on-failure --timeout 900 \
    -R '^(communicator_np|gradient_reducer_np|ring_attention_np|MpiWatchdog\.|RankFailure\.|StopSignal\.|CheckpointCli\.Sig)' "$@"
fi
