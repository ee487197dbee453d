#!/usr/bin/env python3
"""Ring vs Ulysses vs 2-D context parallelism on 4 ranks, recorded in docs/parallel.md, printed as markdown tables.

The training step of configs/default.yaml (hidden 256, 4 heads, 1 layer unless --layers, batch 1, 1 thread per rank)
with parallel.cp = 4 (the ring), parallel.ulysses = 4 (all-to-all over heads) and cp = 2 x ulysses = 2 (the 2-D
layout: Ulysses pairs inside a node, the ring across), on one node (4 ranks over shared memory) and on 2 nodes of the
local cluster (launch/cluster.sh, 2 ranks per node, TCP over veth links shaped with tc tbf to 10 and 1 Gbit/s), at
16k-64k tokens: step time, the bytes each rank sent per step (ringtrain's own count: ring blocks, all-to-all,
gradients) and the bytes that crossed node 0's link per step (the kernel's count).

    bench/layout_measurements.py [--seqs 16384,32768] [--long 65536] [--layers 1] [--repeats 1]
                                 (root; RINGTRAIN_NO_BUILD=1 uses build/ as it is)

--long runs its lengths across the nodes on the 1 Gbit/s link only (a 64k step takes about 40 s on 2 cores).
Before any time is printed, every layout's losses (steps 1-3) are checked against the ring's at the same length; the
script exits 1 when one differs by more than reduction-order precision.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from multinode_measurements import CLUSTER, ENV, ROOT, RINGTRAIN, cluster, shape  # noqa: E402

ROOT_FLAGS = ["--allow-run-as-root"] if os.geteuid() == 0 else []
ONE_NODE = ["mpirun", "-np", "4", "--oversubscribe", "--bind-to", "none", "--mca", "btl", "self,vader",
            "--mca", "mpi_yield_when_idle", "1"] + ROOT_FLAGS
TWO_NODES = [CLUSTER, "mpirun", "-np", "4", "--bind-to", "none"]  # by slot: ranks 0-1 on node 0, 2-3 on node 1
LAYOUTS = {"ring (cp 4)": (4, 1), "Ulysses (ulysses 4)": (1, 4), "2-D (cp 2 x ulysses 2)": (2, 2)}
STEPS = 3


def link_tx(node):
    out = subprocess.run([CLUSTER, "bytes", node], env=ENV, stdout=subprocess.PIPE, text=True, check=True).stdout
    return int(out.split()[0])


def train(where, seq, cp, ulysses, layers):
    """One training run: per-step seconds (steps 2..), losses, rank 0's bytes sent per step, node 0's link TX/step."""
    node0 = subprocess.run([CLUSTER, "nodes"], env=ENV, stdout=subprocess.PIPE, text=True).stdout.split()[0]
    tx0 = link_tx(node0) if where != "one" else 0
    with tempfile.TemporaryDirectory(prefix="ringtrain-layouts.") as d:
        cmd = (ONE_NODE if where == "one" else TWO_NODES) + [
            RINGTRAIN, "train", "--config", os.path.join(ROOT, "configs", "default.yaml"), "--set",
            f"model.num_hidden_layers={layers}", f"train.seq_len={seq}", "train.batch_size=1", f"train.steps={STEPS}",
            "train.threads=1", f"parallel.cp={cp}", f"parallel.ulysses={ulysses}", "log.every=1",
            "checkpoint.every=0", "log.tensorboard=false", f"log.dir={d}"]
        out = subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
        comm = re.search(r"^communication \| .*$", out, re.M)
        if comm is None or not os.path.exists(os.path.join(d, "metrics.jsonl")):
            sys.exit(f"FAIL: {where} node(s), seq {seq}, cp {cp}, ulysses {ulysses}:\n{out}")
        rows = [json.loads(line) for line in open(os.path.join(d, "metrics.jsonl"))]
    tx = (link_tx(node0) - tx0) / STEPS if where != "one" else None
    mb = {k: float(v) for k, v in re.findall(r"(ring|all-to-all|gradients) ([0-9.]+) MB", comm.group(0))}
    ring_wait = re.search(r"ring [0-9.]+ MB \(waited ([0-9.]+) s\)", comm.group(0))
    a2a = re.search(r"all-to-all [0-9.]+ MB \(([0-9.]+) s\)", comm.group(0))
    return {"s": statistics.median(r["ms_per_step"] / 1e3 for r in rows[1:]), "losses": [r["loss"] for r in rows],
            "mb": mb, "tx_mb": tx / 1e6 if tx is not None else None,
            "exposed": (float(ring_wait.group(1)) if ring_wait else 0.0) + (float(a2a.group(1)) if a2a else 0.0)}


def check_losses(runs, seq):
    ref = runs["ring (cp 4)"]["losses"]
    for name, r in runs.items():
        for a, b in zip(ref, r["losses"]):
            if abs(a - b) > 2e-4 * max(1.0, abs(a)):
                sys.exit(f"FAIL: seq {seq}: {name}'s losses {r['losses']} differ from the ring's {ref}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqs", default="16384,32768", help="lengths measured inside one node and across nodes")
    ap.add_argument("--long", default="65536", help="lengths measured across nodes on the 1gbit link only ('' for none)")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1, help="runs of each layout, alternating; the best is printed")
    args = ap.parse_args()
    seqs = [int(s) for s in args.seqs.split(",") if s]
    longs = [int(s) for s in args.long.split(",") if s]
    if os.environ.get("RINGTRAIN_NO_BUILD") != "1":
        subprocess.run([os.path.join(ROOT, "launch", "setup.sh")], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([CLUSTER, "down"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cluster("up", "2", "--slots", "2")
    try:
        cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout)
        date = subprocess.run(["date", "-u", "+%F"], stdout=subprocess.PIPE, text=True).stdout.strip()
        print(f"# Ring vs Ulysses vs 2-D on 4 ranks ({date}, {cpu.group(1) if cpu else '?'}, {os.cpu_count()} cores)\n")
        print(f"configs/default.yaml with {args.layers} layer(s), batch 1, 1 thread per rank, fp32; step time = the "
              f"median of steps 2-{STEPS}, the best of {args.repeats} alternating run(s). Sent = MB rank 0 sent per step (ringtrain's count: ring blocks, "
              "all-to-all, gradients into the all-reduce); exposed = s per step rank 0 waited on the ring or spent "
              "in all-to-alls; link = MB node 0's link sent per step (the kernel's count, run total / steps).\n")
        print("| where | seq | layout | step s | vs ring | sent: ring + all-to-all + gradients MB | exposed s | link MB |")
        print("|---|---|---|---|---|---|---|---|")
        places = [("one", "unshaped")] + [("two", r) for r in ("10gbit", "1gbit")]
        for where, rate in places:
            if where == "two":
                shape(rate)
            for seq in seqs + (longs if rate == "1gbit" else []):
                runs = {}
                for _ in range(args.repeats):  # alternating layouts; noise only ever slows a run down: keep the best
                    for name, (cp, u) in LAYOUTS.items():
                        r = train(where, seq, cp, u, args.layers)
                        if name not in runs or r["s"] < runs[name]["s"]:
                            runs[name] = r
                check_losses(runs, seq)
                ring_s = runs["ring (cp 4)"]["s"]
                for name, r in runs.items():
                    sent = " + ".join(f"{r['mb'].get(k, 0):.1f}" for k in ("ring", "all-to-all", "gradients"))
                    label = "1 node" if where == "one" else f"2 nodes, {rate}"
                    link = f"{r['tx_mb']:.1f}" if r["tx_mb"] is not None else "-"
                    print(f"| {label} | {seq} | {name} | {r['s']:.2f} | {ring_s / r['s']:.2f}x | {sent} "
                          f"| {r['exposed']:.2f} | {link} |", flush=True)
        print("\nPASS: every layout's losses equal the ring's within reduction-order precision")
    finally:
        shape("unshaped")
        subprocess.run([CLUSTER, "down"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
