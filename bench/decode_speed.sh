#!/usr/bin/env bash
# Decode speed of `ringtrain sample` (KV cache, one token at a time) beside transformers' generate on the CPU, on the
# same checkpoint of the reference model (configs/default.yaml: hidden 256, 4 layers, 4 heads), at several contexts,
# on 1 rank (2 threads) and on 2 ranks of 1 thread (mpirun, parallel.cp=2: the prompt prefilled through the ring, the
# KV cache split between the ranks, each decode step merged across them by LSE), and as a share of the measured
# memory read bandwidth: a decode step reads the weights and the whole KV cache once.
#   bench/decode_speed.sh [CONTEXTS...]   (default 1024 16384 65536; needs build/ and, for the peer, .venv-bench)
# PEER_MAX_CONTEXT (default 16384): longer contexts skip transformers, whose CPU prefill may materialise the
# attention matrix (4 heads x 64k x 64k floats = 64 GiB at 64k) and exhaust memory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/build/trainer/ringtrain"
contexts=("${@:-1024 16384 65536}")
read -r -a contexts <<< "${contexts[*]}"
new=64
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "host: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
bw=$("$root/build/bench/memory_bandwidth" --threads 2 --gib 2 | sed -n 's/.*read_gbs=\([0-9.]*\).*/\1/p')
echo "memory read bandwidth (bench/memory_bandwidth, 2 threads): $bw GB/s"
# A checkpoint of the reference model: 4 steps on this repository's docs (the weights only need to be real).
cat "$root"/docs/*.md "$root"/README.md > "$work/text.txt"
"$bin" train --config "$root/configs/default.yaml" --set data.task=text --set data.path="$work/text.txt" \
  --set train.seq_len=256 --set train.steps=4 --set parallel.cp=1 --set parallel.dp=1 --set log.every=4 --set log.tensorboard=false \
  --set log.dir="$work/run" > /dev/null
ckpt="$work/run/checkpoints/step_00000004"
# Per token: the weights (4 bytes per parameter) and K, V of every layer at every cached position.
read -r layers kv_heads head_dim < <(python3 -c "import json; c=json.load(open('$ckpt/config.json')); \
  print(c['num_hidden_layers'], c['num_key_value_heads'], c['hidden_size'] // c['num_attention_heads'])")
python3 - "$ckpt/model.safetensors" > "$work/params" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
print(sum(eval("*".join(map(str, v["shape"])) or "1") for k, v in header.items() if k != "__metadata__"))
PY
params=$(cat "$work/params")
# shellcheck disable=SC2054  # self,vader is one mpirun argument
mpi=(mpirun -np 2 --oversubscribe --bind-to none --mca btl self,vader)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
printf "\n| context | ringtrain tok/s | ringtrain 2 ranks tok/s | transformers tok/s | ratio (1 rank) | ringtrain GB/s read | %% of bandwidth |\n"
printf "|---|---|---|---|---|---|---|\n"
for ctx in "${contexts[@]}"; do
  python3 -c "import sys; t=open('$work/text.txt','rb').read(); sys.stdout.buffer.write((t*(1+$ctx//len(t)))[:$ctx])" \
    > "$work/prompt.txt"
  line=$("$bin" sample --checkpoint "$ckpt" --prompt-file "$work/prompt.txt" --max-new-tokens $new --temperature 0 \
         --context $((ctx + new)) --ids 2>"$work/one.err" > "$work/one.ids"; grep '^sample |' "$work/one.err")
  ours=$(echo "$line" | sed -n 's/.*decode [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p')
  [ -n "$ours" ] || { echo "no decode speed from ringtrain sample: $line" >&2; exit 1; }
  # The same on 2 ranks; its greedy tokens must be the one-rank run's (checked before the speed is printed).
  line2=$("${mpi[@]}" "$bin" sample --checkpoint "$ckpt" --prompt-file "$work/prompt.txt" --max-new-tokens $new \
          --temperature 0 --context $((ctx + new)) --ids --set parallel.cp=2 2>"$work/two.err" > "$work/two.ids"; \
          grep '^sample |' "$work/two.err")
  cmp -s "$work/one.ids" "$work/two.ids" || { echo "2-rank greedy tokens differ from 1 rank's at $ctx" >&2; exit 1; }
  two=$(echo "$line2" | sed -n 's/.*decode [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p')
  [ -n "$two" ] || { echo "no decode speed from 2-rank sample: $line2" >&2; exit 1; }
  peer="n/a"
  if [ "$ctx" -gt "${PEER_MAX_CONTEXT:-16384}" ]; then
    peer="not run (PEER_MAX_CONTEXT)"
  elif [ -x "$root/.venv-bench/bin/python" ] && "$root/.venv-bench/bin/python" -c 'import transformers' 2>/dev/null; then
    peer=$(timeout 1800 "$root/.venv-bench/bin/python" "$root/bench/peer/hf_decode_speed.py" "$ckpt" \
           "$work/prompt.txt" $new 2 2>/dev/null | sed -n 's/.*decode_tok_s=\([0-9.]*\).*/\1/p' || true)
    [ -n "$peer" ] || peer="failed"
  fi
  gbs=$(python3 -c "print(f'{$ours * (4 * $params + $layers * ($ctx + $new / 2) * $kv_heads * $head_dim * 2 * 4) / 1e9:.2f}')")
  ratio=$(python3 -c "print(f'{$ours / $peer:.2f}x')" 2>/dev/null || echo "n/a")
  share=$(python3 -c "print(f'{100 * $gbs / $bw:.0f}%')")
  printf "| %s | %s | %s | %s | %s | %s | %s |\n" "$ctx" "$ours" "$two" "$peer" "$ratio" "$gbs" "$share"
done
