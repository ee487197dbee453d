#!/usr/bin/env bash
# The default job (configs/default.yaml on 2 ranks, cp = 2, as launch/train.sh runs it) in fp32 and in bf16, one after
# the other, and their loss curves side by side: total and long-range loss every 25 steps, where each long-range curve
# drops, where it ends, and the tokens/s of each. Extra arguments go to both jobs (e.g. --set train.steps=100).
#   bench/precision_curve.sh [--set ...]      (runs in runs/precision_curve/{fp32,bf16}; ~15 min on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/runs/precision_curve"
[ "${RINGTRAIN_NO_BUILD:-0}" = 1 ] || "$root/launch/setup.sh" >/dev/null
mkdir -p "$out"
for precision in fp32 bf16; do
  rm -rf "${out:?}/$precision"
  "$root/launch/run.sh" train --config "$root/configs/default.yaml" --set parallel.cp=2 \
    --set train.precision="$precision" --set log.dir="$out/$precision" "$@" >"$out.$precision.log" 2>&1 ||
    { tail -5 "$out.$precision.log"; echo "FAIL: the $precision job failed (log: $out.$precision.log)"; exit 1; }
done
python3 - "$out/fp32/metrics.jsonl" "$out/bf16/metrics.jsonl" <<'PY'
import json, statistics, sys
runs = [{m["step"]: m for m in map(json.loads, open(path))} for path in sys.argv[1:]]
steps = sorted(set(runs[0]) & set(runs[1]))
if not steps:
    sys.exit("FAIL: no common steps in the two runs' metrics")
print("| step | fp32 loss | bf16 loss | fp32 long-range loss | bf16 long-range loss |")
print("|---|---|---|---|---|")
for s in steps:
    if s == 1 or s % 25 == 0 or s == steps[-1]:
        a, b = runs[0][s], runs[1][s]
        print(f"| {s} | {a['loss']:.4f} | {b['loss']:.4f} | {a['long_range_loss']:.4f} | {b['long_range_loss']:.4f} |")
first = runs[0][steps[0]]["long_range_loss"]
gap, at = max((abs(runs[0][s]["long_range_loss"] - runs[1][s]["long_range_loss"]), s) for s in steps)
# The copy task learns in a sudden drop (the model finds the copy), so curves are compared by where that drop happens
# (the first step below half the initial long-range loss) and by where they end, not by the gap during the drop.
drop = [next((s for s in steps if r[s]["long_range_loss"] < first / 2), None) for r in runs]
tail = steps[-max(1, len(steps) // 10):]  # the last tenth of the run
mean = lambda r, k: statistics.mean(r[s][k] for s in tail)
la, lb = mean(runs[0], "long_range_loss"), mean(runs[1], "long_range_loss")
ta, tb = (statistics.median(r[s]["tokens_per_s"] for s in steps[1:] or steps) for r in runs)
print(f"\nlong-range loss first below half its initial {first:.3f}: fp32 at step {drop[0]}, bf16 at step {drop[1]}")
print(f"long-range loss over the last {len(tail)} steps: fp32 {la:.4f}, bf16 {lb:.4f}")
print(f"largest gap between the long-range curves: {gap:.4f} at step {at} (during the drop)")
print(f"median tokens/s: fp32 {ta:.0f}, bf16 {tb:.0f} ({tb / ta:.2f}x)")
same_drop = None not in drop and abs(drop[0] - drop[1]) <= 0.05 * len(steps)
same_end = lb <= la + 0.01 * first
ok = same_drop and same_end
print(("PASS" if ok else "FAIL") + ": bf16 drops within 5% of the steps of fp32 and ends at fp32's long-range loss "
      "or below (+1% of the initial)")
sys.exit(0 if ok else 1)
PY
