#!/usr/bin/env bash
# Training-step throughput beside PyTorch in all four of its modes, in one run: the reference model (hidden 256,
# 4 layers, 4 heads, SwiGLU 1024), forward+backward+AdamW, batch 1, 2 threads, seq 1024 and 4096; ringtrain in fp32
# and bf16 (train.precision), PyTorch fp32 and bf16 autocast, eager and torch.compile. Prints the host's measured
# peaks, a markdown table and a verdict (ringtrain's losses are checked by train_step_bench before it prints a speed).
#   bench/compare_train_step.sh [seq ...]     (builds ringtrain, sets up .venv-bench with PyTorch if needed)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peer="${RINGTRAIN_PEER_DIR:-$root/../shared/bench}"
seqs=("$@"); [ ${#seqs[@]} -gt 0 ] || seqs=(1024 4096)
"$root/launch/setup.sh" >/dev/null
"$root/bench/peer/setup_venv.sh" >/dev/null
py="$root/.venv-bench/bin/python"
fp32_line=$("$root/build/bench/fma_peak" --threads 2)
bf16_line=$("$root/build/bench/fma_peak" --threads 2 --precision bf16)
fp32_peak=$(sed -n 's/.* gflops=\([0-9.]*\).*/\1/p' <<<"$fp32_line")
# The bf16 peak: AMX where the CPU has it, else vdpbf16ps, else none (bf16 runs emulated: no % is given).
bf16_peak=$(sed -n 's/.*amx_gflops=\([0-9.]*\).*/\1/p' <<<"$bf16_line")
[ -n "$bf16_peak" ] || bf16_peak=$(sed -n 's/.*dpbf16ps_gflops=\([0-9.]*\).*/\1/p' <<<"$bf16_line")
echo "host: $(lscpu | sed -n 's/^Model name: *//p'), 2 threads"
echo "peaks: $fp32_line"
echo "       $bf16_line"
echo
echo "| seq | ringtrain fp32 | ringtrain bf16 | torch fp32 | torch bf16 | torch fp32 compile | torch bf16 compile |" \
     "bf16 vs best torch | ringtrain fp32 GFLOP/s (% FMA peak) | ringtrain bf16 GFLOP/s (% bf16 peak) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
verdict=0
tok() { sed -n 's/.*tokens_per_s=\([0-9]*\).*/\1/p' <<<"$1" | head -1; }
for seq in "${seqs[@]}"; do
  steps=$(( seq <= 1024 ? 10 : 5 ))
  ours=(); gf=()
  for precision in fp32 bf16; do
    out=$("$root/build/bench/train_step_bench" --seq "$seq" --steps "$steps" --threads 2 --precision "$precision") ||
      { echo "$out"; verdict=1; continue 2; }
    ours+=("$(tok "$out")"); gf+=("$(sed -n 's/.*gflops=\([0-9.]*\).*/\1/p' <<<"$out" | head -1)")
  done
  theirs=()
  for mode in "" "--autocast bf16" "--compile" "--autocast bf16 --compile"; do
    # shellcheck disable=SC2086
    out=$("$py" "$peer/torch_llama_ref.py" --dim 256 --layers 4 --heads 4 --seq "$seq" --steps "$steps" --threads 2 $mode)
    theirs+=("$(tok "$out")")
  done
  best=$(printf '%s\n' "${theirs[@]}" | sort -n | tail -1)
  ratio=$(awk -v a="${ours[1]}" -v b="$best" 'BEGIN { printf "%.2f", a / b }')
  pf=$(awk -v g="${gf[0]}" -v p="$fp32_peak" 'BEGIN { printf "%.0f%%", 100 * g / p }')
  pb=$([ -n "$bf16_peak" ] && awk -v g="${gf[1]}" -v p="$bf16_peak" 'BEGIN { printf "%.1f%%", 100 * g / p }' || echo "n/a")
  echo "| $seq | ${ours[0]} | ${ours[1]} | ${theirs[0]} | ${theirs[1]} | ${theirs[2]} | ${theirs[3]} | ${ratio}x |" \
       "${gf[0]} ($pf) | ${gf[1]} ($pb) |"
done
[ $verdict -eq 0 ] && echo "PASS: ringtrain's results checked (train_step_bench verifies its losses)" || { echo "FAIL"; exit 1; }
