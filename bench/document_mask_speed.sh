#!/usr/bin/env bash
# What document masking saves: the reference model (configs/default.yaml) trained on a directory of real files (each
# a document: Python's standard library sources by default), at one sequence length, with data.document_mask off and
# on, side by side over the same sequences: tokens/s over steps 2-5 (their summed time: how much a step skips depends
# on where its window falls), and the mean share of causal attention the mask skips in them.
#   bench/document_mask_speed.sh [SEQ_LEN] [CP] [DIR]   (defaults 16384, 1, '/usr/lib/python3.11/*.py')
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seq=${1:-16384} cp=${2:-1} dir=${3:-/usr/lib/python3.11/*.py}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "host: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; seq_len $seq, cp $cp, documents: $dir"
launch=("$root/build/trainer/ringtrain")
[ "$cp" -gt 1 ] && launch=(mpirun --allow-run-as-root --oversubscribe -np "$cp" "${launch[@]}")
printf "\n| document_mask | tok/s (steps 2-5) | docs skip (mean) | ring blocks skipped (mean) |\n|---|---|---|---|\n"
for mask in false true; do
  "${launch[@]}" train --config "$root/configs/default.yaml" --set data.task=text --set data.path="$dir" \
    --set data.document_mask=$mask --set train.seq_len="$seq" --set train.batch_size=1 --set train.steps=5 \
    --set parallel.cp="$cp" --set log.every=1 --set log.tensorboard=false --set checkpoint.every=0 \
    --set checkpoint.keep=1 --set log.dir="$work/$mask" > "$work/$mask.log"
  python3 - "$work/$mask/metrics.jsonl" "$mask" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 5 and all(r["loss"] == r["loss"] for r in rows), "the run did not log 5 finite steps"
steps = rows[1:]
tok = sum(r["tokens_per_s"] * r["ms_per_step"] for r in steps) / sum(r["ms_per_step"] for r in steps)
mean = lambda key: statistics.mean(r[key] for r in steps) if key in steps[0] else None
skip, ring = mean("doc_skipped_share"), mean("ring_blocks_skipped_share")
print(f"| {sys.argv[2]} | {tok:.0f} | {'-' if skip is None else f'{100*skip:.0f}%'} | "
      f"{'-' if ring is None else f'{100*ring:.0f}%'} |")
PY
done
