#!/usr/bin/env bash
# Ring attention measurements recorded in docs/parallel.md, printed as markdown tables:
#   1. error of o and dq against fp64 as the ring grows from 1 to 8 ranks (causal, zigzag);
#   2. per-rank compute and wait time, zigzag against contiguous, on 2 ranks;
#   3. forward+backward at total T = 16k: 2 ranks x 1 thread against 1 rank x 2 threads (parallel efficiency),
#      with the share of the exchange time hidden behind compute.
#   bench/ring_measurements.sh [seq [precision]]      (default 16384 fp32; RINGTRAIN_NO_BUILD=1 uses build/ as it is;
#   precision bf16 runs sections 2 and 3 with bf16 kernels and bf16 K/V blocks on the ring)
# ring_attention_bench checks the ring against one-rank flash attention before it times anything and exits 1 on a
# wrong value; this script then fails too.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seq="${1:-16384}" precision="${2:-fp32}"
[ "${RINGTRAIN_NO_BUILD:-0}" = 1 ] || "$root/launch/setup.sh" >/dev/null
bench="$root/build/bench/ring_attention_bench"
flags=(--oversubscribe --bind-to none --mca btl self,vader)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
run() { local n=$1; shift; mpirun -np "$n" "${flags[@]}" "$bench" "$@"; }
ms_of() { sed -n 's/.*| \([0-9.]*\) ms |.*/\1/p' <<<"$1"; }

echo "## 1. Error against fp64 as the ring grows (S = 1536, H = 2, D = 64, causal, zigzag; relative L2, RMS over ranks)"
echo
echo "| ranks | S | o error | dq error |"
echo "|---|---|---|---|"
for n in 1 2 3 4 8; do run "$n" --seq 1536 --heads 2 --head-dim 64 --threads 1 --error-sweep | grep '^|'; done

echo
echo "## 2. Zigzag against contiguous: per-rank time (S = $seq, H = 8, D = 64, causal, 2 ranks x 1 thread, $precision)"
for sharding in zigzag contiguous; do
  echo
  run 2 --seq "$seq" --heads 8 --head-dim 64 --threads 1 --reps 3 --sharding "$sharding" --precision "$precision" | grep -v '^PASS'
done

echo
echo "## 3. Parallel efficiency at S = $seq (H = 8, D = 64, causal, zigzag, $precision)"
echo
one=$(run 1 --seq "$seq" --heads 8 --head-dim 64 --threads 2 --reps 3 --precision "$precision")
two=$(run 2 --seq "$seq" --heads 8 --head-dim 64 --threads 1 --reps 3 --precision "$precision")
echo "$one" | grep -v '^PASS'
echo "$two" | grep -v '^PASS'
t1=$(ms_of "$one") t2=$(ms_of "$two")
echo
awk -v a="$t1" -v b="$t2" 'BEGIN { printf "efficiency = t(1 rank x 2 threads) / t(2 ranks x 1 thread) = %.1f / %.1f = %.1f%% (target >= 85%%)\n", a, b, 100 * a / b }'
echo "PASS: every ring result checked against one-rank flash attention"
