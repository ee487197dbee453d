#!/usr/bin/env bash
# Everything the GPU path needs checked and timed on a GPU machine, in one run:
#   1. configure and build with -DRINGTRAIN_CUDA=ON (build-gpu/, so build/ stays as it is),
#   2. run the CUDA tests (cuda_ops_test, cuda_attention_test, cuda_model_test, nccl_ring_np1/np2,
#      NcclWatchdog.*, Cli.DeviceCuda*) and require that
#      they ran rather than skipped,
#   3. CUDA flash attention forward and forward+backward TFLOP/s beside PyTorch's scaled_dot_product_attention (bf16)
#      at d = 64 and 128, T = 1k..16k, causal, 2048 / d heads (each row checked against the CPU kernels first),
#   4. the training step (train_step_bench --device cuda) beside PyTorch's (TF32) on the same GPU.
# Prints markdown tables for docs/benchmarks.md (GPU, driver, date) and a verdict; exit 1 when a build, test or check
# fails. The speed targets (H100, d=128, T=8k, causal: forward >= 250, fwd+bwd >= 200 TFLOP/s) are reported, met or
# not, without failing the script.
# From a bundle (launch/bundle.sh; this script is its bench/gpu_all.sh) step 1 is skipped: the bundle's programs run,
# and its run-tests.sh runs the CUDA tests. docs/gpu.md has the command for a GPU machine.
#   bench/gpu_all.sh              Environment: RINGTRAIN_GPU_BUILD (default <repo>/build-gpu), RINGTRAIN_PEER_DIR
#                                 (default <repo>/../shared/bench: torch_llama_ref.py), PYTHON (a python with a CUDA
#                                 PyTorch; default <repo>/.venv-bench/bin/python, else python3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle=0
if [ -x "$root/run-tests.sh" ] && [ -f "$root/tests.list" ]; then
  bundle=1
  RINGTRAIN_BUNDLE="$root"
  . "$root/env.sh"
fi
if [ "$bundle" = 1 ]; then build="$root" peer="${RINGTRAIN_PEER_DIR:-$root/bench/peer}"
else build="${RINGTRAIN_GPU_BUILD:-$root/build-gpu}" peer="${RINGTRAIN_PEER_DIR:-$root/../shared/bench}"; fi
fail=()

command -v nvidia-smi >/dev/null && gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)" \
  || { echo "FAIL: no GPU here (nvidia-smi not found); run this on a GPU machine"; exit 2; }
echo "GPU: $gpu | $(date -u +%Y-%m-%d) | $(/usr/local/cuda/bin/nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo 'nvcc ?')"

if [ "$bundle" = 1 ]; then
  # 1-2 from the bundle: its CUDA tests, which must not skip on a GPU machine.
  echo "bundle: $(head -1 "$root/MANIFEST.txt")"
  tests_log="$(mktemp)"
  "$root/run-tests.sh" 'cuda|Cuda|nccl|Nccl' | tee "$tests_log" | grep -v '^passed' || true
  tail -1 "$tests_log" | grep -q ' 0 failed' || fail+=("CUDA tests")
  if grep -q '^skipped' "$tests_log"; then
    grep '^skipped' "$tests_log" | head -5
    echo "note: some CUDA tests skipped (see above); nccl_ring_np2 needs two GPUs"
  fi
else
  # 1. build
  t0=$SECONDS
  mkdir -p "$build"
  if ! cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRINGTRAIN_CUDA=ON >"$build/configure.log" 2>&1; then
    grep -m3 -i "could not find\|error" "$build/configure.log" || true
    echo "FAIL: configuring the CUDA build failed (log: $build/configure.log). Machines without the Debian packages of"
    echo "      launch/setup.sh (the lent GPU machines have none and reach no registry): see docs/gpu.md, 'Before the"
    echo "      first GPU run'."
    exit 1
  fi
  cmake --build "$build" -j "$(nproc)" >/dev/null || { echo "FAIL: the CUDA build failed"; exit 1; }
  echo "build: $((SECONDS - t0)) s"

  # 2. the CUDA tests, which must not skip on a GPU machine (their SIMT-emulator twins, simt*, are CI's business)
  if ! (cd "$build" && ctest --output-on-failure --timeout 900 -j "$(nproc)" -R 'cuda|Cuda|nccl|Nccl' -E 'simt' | tee "$build/gpu_tests.log" | tail -5); then
    fail+=("CUDA tests")
  fi
  if grep -q "Skipped" "$build/gpu_tests.log" || grep -q "SKIPPED" "$build/Testing/Temporary/LastTest.log"; then
    grep -h "Skipped\|no CUDA\|NCCL needs" "$build/Testing/Temporary/LastTest.log" | sort -u | head -5
    echo "note: some CUDA tests skipped (see above); nccl_ring_np2 needs two GPUs"
  fi
fi

# A python with a CUDA PyTorch for the peer columns, or none.
py="${PYTHON:-}"
for cand in "$py" "$root/.venv-bench/bin/python" python3; do
  [ -n "$cand" ] && "$cand" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null \
    && { py="$cand"; break; }
  py=""
done
[ -n "$py" ] || echo "note: no python with a CUDA PyTorch found (set PYTHON=...); the PyTorch columns say n/a"
peer_run() { [ -n "$py" ] && "$py" "$root/bench/peer/torch_cuda_ref.py" "$@" 2>/dev/null || true; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2" | head -1; }

# 3. attention
echo
echo "| T | d | heads | ours fwd TFLOP/s | torch SDPA fwd | ours fwd+bwd | torch SDPA fwd+bwd | fwd+bwd ratio |"
echo "|---|---|---|---|---|---|---|---|"
target="d=128 T=8192 not run"
for D in 64 128; do
  H=$((2048 / D))
  for T in 1024 2048 4096 8192 16384; do
    args=(--seq "$T" --heads "$H" --head-dim "$D" --causal 1)
    if ! ours=$("$build/bench/cuda_attention_bench" "${args[@]}" --reps 20); then
      echo "$ours" >&2
      fail+=("attention T=$T d=$D")
      echo "| $T | $D | $H | FAIL | - | FAIL | - | - |"
      continue
    fi
    theirs=$(peer_run sdpa "${args[@]}" --reps 20)
    of=$(field fwd_tflops "$ours") ofb=$(field fwdbwd_tflops "$ours")
    tf=$(field fwd_tflops "$theirs") tfb=$(field fwdbwd_tflops "$theirs")
    ratio=$([ -n "$tfb" ] && awk -v a="$ofb" -v b="$tfb" 'BEGIN { printf "%.2fx", a / b }' || echo "n/a")
    echo "| $T | $D | $H | $of | ${tf:-n/a} | $ofb | ${tfb:-n/a} | $ratio |"
    if [ "$D" = 128 ] && [ "$T" = 8192 ]; then
      target=$(awk -v f="$of" -v fb="$ofb" 'BEGIN { printf "d=128 T=8192 causal: forward %.0f TFLOP/s (target 250: %s), fwd+bwd %.0f (target 200: %s)", f, f >= 250 ? "met" : "NOT met", fb, fb >= 200 ? "met" : "NOT met" }')
    fi
  done
done

# 4. training step
echo
echo "| seq | ringtrain tok/s (GPU) | PyTorch tok/s (GPU) | ratio |"
echo "|---|---|---|---|"
for seq in 4096 16384; do
  if ! ours=$("$build/bench/train_step_bench" --device cuda --seq "$seq" --steps 10); then
    echo "$ours" >&2
    fail+=("train step seq=$seq")
    echo "| $seq | FAIL | - | - |"
    continue
  fi
  theirs=$(peer_run train --seq "$seq" --steps 10 --peer-dir "$peer")
  ot=$(field tokens_per_s "$ours") tt=$(field tokens_per_s "$theirs")
  ratio=$([ -n "$tt" ] && awk -v a="$ot" -v b="$tt" 'BEGIN { printf "%.2fx", a / b }' || echo "n/a")
  echo "| $seq | $ot | ${tt:-n/a} | $ratio |"
done

echo
if [ ${#fail[@]} -eq 0 ]; then
  echo "PASS: CUDA build, tests and every benchmark's check against the CPU kernels; targets: $target"
else
  echo "FAIL: ${fail[*]}; targets: $target"
  exit 1
fi
