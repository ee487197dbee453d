#!/usr/bin/env bash
# Set-up shared by sanitizers.sh and fuzz.sh (sourced): the sanitizers' environment, and a clang build of one kind.
#   sanitizer_build address|thread [TARGET...]   configures and builds (all targets, or TARGET...) in $build:
#     address: build-asan/, ASan + UBSan with libFuzzer's coverage, so one build serves the suites and the fuzzers
#     thread:  build-tsan/, ThreadSanitizer
# clang for both: libFuzzer is clang's, and clang's OpenMP runtime (libomp) tells TSan about its barriers through
# Archer (OMP_TOOL_LIBRARIES below), where GCC's libgomp is invisible to it. CUDA is off, benchmarks are not built.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
supp="$root/tests/sanitizers"
# fast_unwind_on_malloc=0: Debian's libraries have no frame pointers, so the fast unwinder stops at their first frame
# and LeakSanitizer could not match Open MPI's allocations (made in components MPI_Finalize unloads) to lsan.supp.
export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:strict_init_order=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
# ignore_noninstrumented_modules=1: Open MPI, libomp and oneDNN are Debian's, not instrumented. They move data with
# memcpy/memset on whichever thread drives them and order it with their own atomics, which TSan cannot see, so every
# completed MPI receive and every OpenMP runtime allocation would look like a race. This ignores the memory accesses
# of the interceptors they call (their locks stay visible); our code's accesses are all still checked.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1:suppressions=$supp/tsan.supp:print_suppressions=0"

sanitizer_build() {
  local kind="$1" flags
  shift
  case "$kind" in
    address) build="$root/build-asan"; flags=(-DRINGTRAIN_SANITIZE=address -DRINGTRAIN_FUZZ=ON) ;;
    thread) build="$root/build-tsan"; flags=(-DRINGTRAIN_SANITIZE=thread)
            export OMP_TOOL_LIBRARIES="$(dirname "$(readlink -f "$(command -v clang++)")")/../lib/libarcher.so" ;;
  esac
  "$root/launch/setup.sh" >/dev/null  # the Debian packages (and build/, which these builds do not use)
  if [ ! -f "$build/build.ninja" ]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
      -DRINGTRAIN_CUDA=OFF -DRINGTRAIN_BENCH=OFF -DRINGTRAIN_TESTS=ON "${flags[@]}" >/dev/null
  fi
  # The environment above is set while building too: gtest_discover_tests runs each test program to list its tests.
  cmake --build "$build" -j "$(nproc)" ${1:+--target "$@"}
}
