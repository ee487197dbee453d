#!/usr/bin/env bash
# Training-step throughput beside PyTorch: the reference model (hidden 256, 4 layers, 4 heads, SwiGLU 1024),
# forward+backward+AdamW, batch 1, 2 threads, seq 1024 and 4096. Prints a markdown table and a verdict.
# The "reference attn" column is the same program with the reference (pre-flash) attention kernels.
#   bench/compare_train_step.sh [seq ...]     (builds ringtrain, sets up .venv-bench with PyTorch if needed)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peer="${RINGTRAIN_PEER_DIR:-$root/../shared/bench}"
seqs=("$@"); [ ${#seqs[@]} -gt 0 ] || seqs=(1024 4096)
"$root/launch/setup.sh" >/dev/null
"$root/bench/peer/setup_venv.sh" >/dev/null
py="$root/.venv-bench/bin/python"
peak=441
echo "| seq | ringtrain tok/s | ringtrain, reference attn tok/s | PyTorch tok/s | ratio to PyTorch | ringtrain GFLOP/s | % of ${peak} peak |"
echo "|---|---|---|---|---|---|---|"
verdict=0
for seq in "${seqs[@]}"; do
  steps=$(( seq <= 1024 ? 10 : 5 ))
  ours=$("$root/build/bench/train_step_bench" --seq "$seq" --steps "$steps" --threads 2 --peak-gflops "$peak") || { echo "$ours"; verdict=1; continue; }
  before=$("$root/build/bench/train_step_bench" --seq "$seq" --steps "$steps" --threads 2 --peak-gflops "$peak" \
           --attention reference) || { echo "$before"; verdict=1; continue; }
  theirs=$("$py" "$peer/torch_llama_ref.py" --dim 256 --layers 4 --heads 4 --seq "$seq" --steps "$steps" --threads 2)
  ot=$(sed -n 's/.*tokens_per_s=\([0-9]*\).*/\1/p' <<<"$ours" | head -1)
  og=$(sed -n 's/.*gflops=\([0-9.]*\).*/\1/p' <<<"$ours" | head -1)
  op=$(sed -n 's/.*peak=\([0-9.]*\)%.*/\1/p' <<<"$ours" | head -1)
  bt=$(sed -n 's/.*tokens_per_s=\([0-9]*\).*/\1/p' <<<"$before" | head -1)
  tt=$(sed -n 's/.*tokens_per_s=\([0-9]*\).*/\1/p' <<<"$theirs")
  ratio=$(awk -v a="$ot" -v b="$tt" 'BEGIN { printf "%.2f", a / b }')
  echo "| $seq | $ot | $bt | $tt | ${ratio}x | $og | $op% |"
done
echo "host: $("$root/build/bench/fma_peak" --threads 2) (measured FMA peak; the % column uses the project's $peak)"
[ $verdict -eq 0 ] && echo "PASS: ringtrain's results checked (train_step_bench verifies its losses)" || { echo "FAIL"; exit 1; }
