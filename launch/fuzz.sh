#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) in the ASan + UBSan build, build-asan/ (launch/sanitizer_build.sh), and
# fuzzes each for SECONDS from its seeds (tests/fuzz/corpus/<target>/), as many at once as there are cores.
# docs/reliability.md has the targets.
#   launch/fuzz.sh [SECONDS] [TARGET...]     default 60 s each, every target
# Each run's corpus grows in build-asan/corpus/<target>/ (the committed seeds are copied in first and kept as they
# are); libFuzzer's log is build-asan/logs/<target>.log. A crash, leak, hang (-timeout) or oversized allocation
# (-malloc_limit_mb) is written to build-asan/findings/<target>/ and fails the script naming it: fix the code, then
# commit the input under tests/fuzz/regressions/<target>/, which fuzz_replay_test replays in every build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -ge 1 ] || { echo "fuzz.sh: error: SECONDS must be a positive number, not '$seconds'" >&2; exit 2; }
all=(safetensors manifest checkpoint config shard cluster hostfile tensorboard)
targets=("${@:-${all[@]}}")
for t in "${targets[@]}"; do
  [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz.sh: error: no fuzz target '$t'; valid: ${all[*]}" >&2; exit 2; }
done
source "$root/launch/sanitizer_build.sh"
sanitizer_build address fuzzers
# leak_check_at_exit=0: libFuzzer checks every input for leaks itself; at exit LeakSanitizer would report what Open
# MPI's initialisation keeps, with stacks its fast unwinder cannot follow through Debian's libraries (no frame
# pointers), so that lsan.supp cannot match them.
export ASAN_OPTIONS="detect_leaks=1:leak_check_at_exit=0:abort_on_error=1:strict_string_checks=1"
export OMP_NUM_THREADS=1

mkdir -p "$build/logs"
run_one() {
  local t="$1" corpus="$build/corpus/$1" findings="$build/findings/$1"
  mkdir -p "$corpus" "$findings"
  cp -n "$root/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
  # -timeout: one input may take 10 s; -malloc_limit_mb: no input justifies a 64 MiB allocation (the largest seed is
  # 40 KiB); -rss_limit_mb bounds the whole process.
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -malloc_limit_mb=64 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" > "$build/logs/$t.log" 2>&1
}

jobs="$(nproc)"
failed=()
pids=()
names=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  names+=("$t")
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    wait "${pids[0]}" || failed+=("${names[0]}")
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done

printf '%-12s %12s %10s %8s %8s\n' target executions "exec/s" corpus edges
for t in "${targets[@]}"; do
  log="$build/logs/$t.log"
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)"
  printf '%-12s %12s %10s %8s %8s\n' "$t" "${runs:-?}" "${rate:-?}" "$(ls "$build/corpus/$t" | wc -l)" "${cov:-?}"
done
if [ "${#failed[@]}" -gt 0 ]; then
  for t in "${failed[@]}"; do
    echo "fuzz.sh: fuzz_$t found a failure: $(ls "$build/findings/$t" | head -1) (log: build-asan/logs/$t.log):" >&2
    grep -m1 -E "ERROR: |runtime error|wrong result|terminate called|Assertion" "$build/logs/$t.log" >&2 || tail -5 "$build/logs/$t.log" >&2
  done
  exit 1
fi
