#!/usr/bin/env bash
# Peak memory per rank of a training step (issue 13, item 6), printed as markdown: for the reference model (hidden 256,
# 4 layers) and the tiny one (hidden 128, 1 layer), each recompute mode and cp in {1, 2, 4}, at 64k to 1M tokens, and
# the longest seq_len that fits this machine.
#   bench/memory_table.sh [--verify] [--runs FILE]       (RINGTRAIN_NO_BUILD=1 uses build/ as it is)
#   --runs FILE: keep the measured rows (model recompute cp seq rank peak_KiB step_ms) in FILE; rows already there are
#   reused instead of run again (to re-print the table, or to add --verify later)
# Method: for a fixed model, recompute mode and cp, a rank's peak memory is affine in its token count (activations,
# ring blocks, attention statistics and the per-thread dQ parts are per token; code, parameters and AdamW state are
# fixed). Each combination runs one optimizer step (batch 1) at four short lengths (4k to 32k tokens per rank for the
# tiny model, 4k to 12k for the reference one); the peak resident set of every rank
# (ru_maxrss from wait4, the kernel's high-water mark, read by a small wrapper around each rank) is fitted as
# peak = a + b * tokens_per_rank by least squares, and the fit is extrapolated. The script fails if a run fails, if a
# calibration point is off its fit by more than 2%, or (--verify) if one real step of the tiny model at 524,288 tokens
# on 2 ranks with recompute full (a quarter of an hour or more on 2 cores) peaks more than 5% away from the table.
# All ranks share this machine, so a length fits when cp * (peak per rank) <= usable memory, taken as MemTotal minus
# 1 GiB for the OS, mpirun and the page cache.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
verify=0 runs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --verify) verify=1 ;;
    --runs) [ $# -ge 2 ] || { echo "memory_table.sh: error: --runs needs a file" >&2; exit 2; }; runs="$2"; shift ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "memory_table.sh: error: unknown option '$1'; valid: --verify, --runs FILE" >&2; exit 2 ;;
  esac
  shift
done
[ "${RINGTRAIN_NO_BUILD:-0}" = 1 ] || "$root/launch/setup.sh" >/dev/null
bin="$root/build/trainer/ringtrain"
[ -x "$bin" ] || { echo "memory_table.sh: error: $bin is missing; run launch/setup.sh" >&2; exit 2; }
work="$(mktemp -d /tmp/memory_table.XXXXXX)"
trap 'rm -rf "$work"' EXIT
[ -n "$runs" ] || runs="$work/runs.tsv"
touch "$runs"
# shellcheck disable=SC2054  # self,vader is one mpirun argument
flags=(--oversubscribe --bind-to none --mca btl self,vader)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)

# Runs argv[2:] and writes its peak resident set (KiB) to argv[1]/peak.<rank>; exits with the child's status.
cat > "$work/peak.py" <<'EOF'
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(os.path.join(sys.argv[1], "peak." + os.environ.get("OMPI_COMM_WORLD_RANK", "0")), "w") as f:
    f.write("%d\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
EOF

declare -A model_args=(
  [tiny]="--config $root/configs/tiny.yaml --set model.num_hidden_layers=1"
  [reference]="--config $root/configs/default.yaml"
)
# Calibration points, in tokens per rank (seq_len = cp x these): short, because a step's time grows with the square of
# the length, and at least 4096, where the loss's logits buffer (min(tokens, 4096) rows, trainer/model.cpp) stops growing.
declare -A local_tokens=([tiny]="4096 8192 16384 32768" [reference]="4096 6144 8192 12288")

# run_one MODEL RECOMPUTE CP SEQ [TIMEOUT_S]: one optimizer step; appends "model recompute cp seq rank kib ms" rows
# (unless the runs file has them already).
run_one() {
  local model=$1 recompute=$2 cp=$3 seq=$4 limit=${5:-900}
  if [ "$(awk -v k="$model $recompute $cp $seq" '$1" "$2" "$3" "$4 == k' "$runs" | wc -l)" = "$cp" ]; then return 0; fi
  local dir="$work/run_${model}_${recompute}_${cp}_${seq}"
  rm -rf "$dir"; mkdir -p "$dir"
  # shellcheck disable=SC2086
  if ! timeout "$limit" mpirun -np "$cp" "${flags[@]}" python3 "$work/peak.py" "$dir" "$bin" train ${model_args[$model]} \
      --set train.seq_len="$seq" --set train.batch_size=1 --set train.micro_batch_size=1 --set train.steps=1 \
      --set train.recompute="$recompute" --set parallel.cp="$cp" --set parallel.dp=1 --set log.dir="$dir/log" \
      --set checkpoint.every=0 --set checkpoint.keep=1 >"$dir/out.txt" 2>&1; then
    echo "FAIL: $model recompute $recompute cp $cp seq $seq did not finish; its output:" >&2
    tail -20 "$dir/out.txt" >&2
    exit 1
  fi
  local ms
  ms="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["ms_per_step"])' \
        "$dir/log/metrics.jsonl")"
  for ((r = 0; r < cp; r++)); do
    [ -s "$dir/peak.$r" ] || { echo "FAIL: no peak for rank $r of $dir" >&2; exit 1; }
    echo "$model $recompute $cp $seq $r $(cat "$dir/peak.$r") $ms" >> "$runs"
  done
  rm -rf "$dir/log"  # the final checkpoint
  echo "ran: $model recompute $recompute cp $cp seq $seq: step $ms ms" >&2
}

mem_total_kib="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
mem_avail_kib="$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)"
echo "## Peak memory per rank (bench/memory_table.sh)"
echo
echo "Host: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, MemTotal $(awk -v k="$mem_total_kib" 'BEGIN {printf "%.2f", k / 1048576}') GiB" \
     "(MemAvailable at start $(awk -v k="$mem_avail_kib" 'BEGIN {printf "%.2f", k / 1048576}') GiB), $(date -u '+%Y-%m-%d %H:%M UTC')," \
     "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown); threads per rank: train.threads = 0 (the cores divided among the ranks)"
echo
for model in tiny reference; do
  for recompute in none full; do
    for cp in 1 2 4; do
      for n in ${local_tokens[$model]}; do
        run_one "$model" "$recompute" "$cp" $((cp * n))
      done
    done
  done
done

cat > "$work/analyse.py" <<'EOF'
# Fits peak = a + b * tokens_per_rank per (model, recompute, cp); prints the table, the fits and the longest lengths.
import sys
runs_path, mode, mem_total_kib = sys.argv[1], sys.argv[2], int(sys.argv[3])
calibration = {m: [int(n) for n in ns.split(",")] for m, ns in (a.split(":") for a in sys.argv[4].split())}
GIB = 1 << 30
usable = mem_total_kib * 1024 - GIB
rows = [l.split() for l in open(runs_path) if l.strip()]
peak = {}   # (model, rc, cp, seq) -> max over ranks (bytes)
spread = {}  # same key -> (min, max) over ranks
ms = {}
for model, rc, cp, seq, rank, kib, step_ms in rows:
    key = (model, rc, int(cp), int(seq))
    b = int(kib) * 1024
    lo, hi = spread.get(key, (b, b))
    spread[key] = (min(lo, b), max(hi, b))
    peak[key] = spread[key][1]
    ms[key] = float(step_ms)
models, rcs, cps = ["tiny", "reference"], ["none", "full"], [1, 2, 4]
names = {"tiny": "tiny (128 x 1)", "reference": "reference (256 x 4)"}
verify_key = ("tiny", "full", 2, 524288)

def fit(model, rc, cp):
    pts = [(n, peak[(model, rc, cp, cp * n)]) for n in calibration[model]]
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    b = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    a = my - b * mx
    res = max(abs(y - (a + b * x)) / y for x, y in pts)
    return a, b, res, pts

fits = {(m, r, c): fit(m, r, c) for m in models for r in rcs for c in cps}
predict = lambda m, r, c, seq: fits[(m, r, c)][0] + fits[(m, r, c)][1] * (seq / c)

if mode == "table":
    bad = []
    print("Fits, peak per rank = a + b * (tokens per rank), least squares over the calibration runs (max over ranks):")
    print()
    print("| model | recompute | cp | calibration seq_len | a (MiB) | b (KiB per token) | worst residual | rank spread | step ms at the longest |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (m, r, c), (a, b, res, pts) in fits.items():
        seqs = [c * n for n in calibration[m]]
        worst_spread = max((spread[(m, r, c, s)][1] - spread[(m, r, c, s)][0]) / peak[(m, r, c, s)] for s in seqs)
        print(f"| {names[m]} | {r} | {c} | {', '.join(str(s // 1024) + 'k' for s in seqs)} | {a / 2**20:.1f} | "
              f"{b / 1024:.3f} | {100 * res:.2f}% | {100 * worst_spread:.1f}% | {ms[(m, r, c, seqs[-1])]:.0f} |")
        if res > 0.02:
            bad.append(f"{m} recompute {r} cp {c}: a calibration point is {100 * res:.1f}% off the fit (limit 2%)")
    print()
    print(f"Peak memory per rank in GiB, extrapolated; usable memory {usable / GIB:.2f} GiB (MemTotal {mem_total_kib / 2**20:.2f}"
          f" GiB minus 1 GiB); a cell is marked \u2717 where cp x peak exceeds it (all ranks share this machine).")
    print()
    cols = [(m, r, c) for m in models for r in rcs for c in cps]
    print("| tokens | " + " | ".join(f"{'tiny' if m == 'tiny' else 'ref'} {r} cp{c}" for m, r, c in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for seq in [65536, 131072, 262144, 524288, 1048576]:
        cells = []
        for m, r, c in cols:
            p = predict(m, r, c, seq)
            cells.append(f"{p / GIB:.2f}" + ("" if c * p <= usable else " \u2717"))
        print(f"| {seq:,} | " + " | ".join(cells) + " |")
    print()
    print("Longest seq_len that fits (cp x (a + b seq / cp) <= usable, rounded down to a multiple of 2 cp 1024):")
    print()
    print("| model | recompute | cp=1 | cp=2 | cp=4 |")
    print("|---|---|---|---|---|")
    for m in models:
        for r in rcs:
            out = []
            for c in cps:
                a, b, _, _ = fits[(m, r, c)]
                longest = (usable / c - a) / b * c
                q = 2 * c * 1024
                out.append(f"{int(longest // q) * q:,}")
            print(f"| {names[m]} | {r} | " + " | ".join(out) + " |")
    print()
    p = predict("tiny", "full", 2, 1048576)
    fits_1m = 2 * p <= usable
    print(f"Target, 1,048,576 tokens of the tiny model on 2 ranks (recompute full): {p / GIB:.2f} GiB per rank, "
          f"{2 * p / GIB:.2f} GiB both ranks, against {usable / GIB:.2f} usable: {'fits' if fits_1m else 'does NOT fit'}")
    pn = predict("tiny", "none", 2, 1048576)
    print(f"(recompute none: {pn / GIB:.2f} GiB per rank, {2 * pn / GIB:.2f} both ranks)")
    print()
    if bad:
        for line in bad:
            print("FAIL: " + line)
        sys.exit(1)
    print("PASS: every calibration run finished and every point lies within 2% of its fit"
          + ("" if fits_1m else "; the 1M-token target does not fit"))
elif mode == "verify":
    m, r, c, seq = verify_key
    pred = predict(m, r, c, seq)
    meas = peak[verify_key]
    err = (meas - pred) / pred
    lo, hi = spread[verify_key]
    print(f"Verification: tiny model, 524,288 tokens, cp 2, recompute full, one step: measured peak {meas / GIB:.3f} GiB per rank "
          f"(ranks {lo / GIB:.3f} and {hi / GIB:.3f}), table {pred / GIB:.3f} GiB: error {100 * err:+.2f}%; "
          f"step {ms[verify_key] / 1000:.0f} s")
    if abs(err) > 0.05:
        print("FAIL: the measured peak is more than 5% away from the table's figure")
        sys.exit(1)
    print("PASS: the measured peak is within 5% of the table's figure")
EOF

calibration="tiny:${local_tokens[tiny]// /,} reference:${local_tokens[reference]// /,}"
python3 "$work/analyse.py" "$runs" table "$mem_total_kib" "$calibration"
if [ "$verify" = 1 ]; then
  grep -q '^tiny full 2 524288 ' "$runs" ||
    echo >&2 "verifying: tiny model, 524288 tokens, cp 2, recompute full (a quarter of an hour or more)"
  run_one tiny full 2 524288 7200
  echo
  python3 "$work/analyse.py" "$runs" verify "$mem_total_kib" "$calibration"
fi
