#!/usr/bin/env bash
# Runs the GEMM library comparison the way docs/gemm.md reports it: the program RUNS times (default 3), each run
# interleaving 3 rounds over all cells, then one table with the median per cell over the runs.
#   bench/gemm_libraries.sh [extra gemm_libraries flags]          RUNS=1 bench/gemm_libraries.sh   (one run)
# The machine has 2 cores and other processes may be using them: the script prints the load before and after.
# OpenBLAS is measured with OPENBLAS_CORETYPE=Haswell (what this environment sets) and unset (OpenBLAS detects the
# CPU); BLIS with its own CPU detection and with the skx sub-configuration forced (BLIS_ARCH_TYPE).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cmake -S . -B build >/dev/null
ninja -C build gemm_libraries >/dev/null
runs=${RUNS:-3}
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for r in $(seq 1 "$runs"); do
  echo "run $r/$runs before: $(uptime)"
  ./build/bench/gemm_libraries --threads 2 --rounds 3 --reps 30 \
    --openblas-coretypes Haswell,auto --blis-archs auto,skx "$@" | tee "$log/run$r.txt"
  echo "run $r/$runs after: $(uptime)"
done
[[ "$runs" -gt 1 ]] || exit 0
python3 - "$log"/run*.txt <<'EOF'
# Median per cell over the runs' tables; best column, geometric means and wins recomputed from the medians.
import math, re, statistics, sys
tables = []
for path in sys.argv[1:]:
    rows = [l.rstrip("\n") for l in open(path) if l.startswith("| ")]
    tables.append([[c.strip() for c in r.strip("|").split("|")] for r in rows])
head, peak = tables[0][0], float(re.search(r"of (\d+)", tables[0][0][-1]).group(1))
libs = head[2:-1]
shapes = [r for r in tables[0][1:] if r[0] not in ("geometric mean", "shapes won")]
print(f"\nmedian per cell over {len(tables)} runs\n")
print("| " + " | ".join(head) + " |")
print("|---|---|" + "---:|" * len(libs) + "---|")
logs, wins = [[] for _ in libs], [0] * len(libs)
for i, row in enumerate(shapes):
    cells = []
    for j in range(len(libs)):
        vals = [float(t[1 + i][2 + j].rstrip("~")) for t in tables if t[1 + i][2 + j] != "n/a"]
        cells.append(statistics.median(vals) if vals else None)
    best = max(range(len(libs)), key=lambda j: cells[j] or -1)
    wins[best] += 1
    for j, c in enumerate(cells):
        if c: logs[j].append(math.log(c))
    print(f"| {row[0]} | {row[1]} | " + " | ".join("n/a" if c is None else f"{c:.1f}" for c in cells)
          + f" | {libs[best]} {100 * cells[best] / peak:.0f}% |")
geo = [math.exp(sum(l) / len(l)) if l else None for l in logs]
print("| geometric mean | | " + " | ".join("n/a" if g is None else f"{g:.1f}" for g in geo) + " | |")
print("| shapes won | | " + " | ".join(str(w) for w in wins) + " | |")
EOF
