#!/usr/bin/env python3
"""The planner against measured runs: calibrates this machine and the local cluster, then runs `ringtrain plan
--validate` over layouts on one node (cp 1-8, 4k-256k tokens, dp, Ulysses, recompute, bf16) and across two
local-cluster nodes on a 1 Gbit/s link, and prints predicted against measured step time and peak memory per rank.

  bench/plan_validation.py [--quick] [--no-long] [--skip-cluster]

Target (issue 16): memory within 5% and step time within 15% on every row. Prints a markdown table, then one line per
target; exits 1 if a run fails (a missed target is reported, not an error: these are benchmark figures).
"""
import argparse
import json
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RINGTRAIN = os.path.join(ROOT, "build", "trainer", "ringtrain")
CLUSTER = os.path.join(ROOT, "launch", "cluster.sh")
ENV = dict(os.environ, RINGTRAIN_CLUSTER="rtplan")
LOCAL = os.path.join(ROOT, "configs", "clusters", "local.yaml")
SHAPED = os.path.join(ROOT, "configs", "clusters", "local_cluster_1gbit.yaml")
TINY = os.path.join(ROOT, "configs", "tiny.yaml")

# (name, config or None for the defaults, --set overrides); the reference model is configs/default.yaml's.
ONE_NODE = [
    ("reference, cp 1, 4k", None, ["train.seq_len=4096", "train.batch_size=1"]),
    ("reference, cp 1, 16k", None, ["train.seq_len=16384", "train.batch_size=1"]),
    ("reference, cp 1, 8k, bf16", None, ["train.seq_len=8192", "train.batch_size=1", "train.precision=bf16"]),
    ("reference, cp 1, 8k, recompute", None, ["train.seq_len=8192", "train.batch_size=1", "train.recompute=full"]),
    ("reference, cp 1, 4k, batch 4 in micro 2", None,
     ["train.seq_len=4096", "train.batch_size=4", "train.micro_batch_size=2"]),
    ("reference, cp 2, 16k", None, ["train.seq_len=16384", "train.batch_size=1", "parallel.cp=2"]),
    ("reference, cp 2, 32k, bf16", None,
     ["train.seq_len=32768", "train.batch_size=1", "parallel.cp=2", "train.precision=bf16"]),
    ("reference, dp 2, 8k", None, ["train.seq_len=8192", "train.batch_size=2", "parallel.dp=2"]),
    ("reference, ulysses 2, 16k", None, ["train.seq_len=16384", "train.batch_size=1", "parallel.ulysses=2"]),
    ("tiny, cp 4, 64k", TINY, ["train.seq_len=65536", "train.batch_size=1", "parallel.cp=4"]),
    ("tiny, cp 8, 64k", TINY, ["train.seq_len=65536", "train.batch_size=1", "parallel.cp=8"]),
]
LONG = [("tiny 1 layer, cp 4, 256k, recompute", TINY,
         ["model.num_hidden_layers=1", "train.seq_len=262144", "train.batch_size=1", "parallel.cp=4",
          "train.recompute=full"])]
ACROSS = [  # 2 local-cluster nodes, 1 rank x 1 thread each, 1 Gbit/s
    ("reference, cp 2 across nodes, 16k", None,
     ["train.seq_len=16384", "train.batch_size=1", "parallel.cp=2", "train.threads=1"]),
    ("reference, cp 2 across nodes, 2k (ring exposed)", None,
     ["train.seq_len=2048", "train.batch_size=1", "parallel.cp=2", "train.threads=1"]),
    ("reference, dp 2 across nodes, 4k", None,
     ["train.seq_len=4096", "train.batch_size=2", "parallel.dp=2", "train.threads=1"]),
]


def sh(cmd, **kw):
    return subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def validate(cluster, config, sets, launch, steps):
    cmd = [RINGTRAIN, "plan", "--cluster", cluster, "--validate", "--json", "--steps", str(steps), "--launch", launch]
    if config:
        cmd += ["--config", config]
    cmd += ["--set"] + sets
    out = sh(cmd, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)}\n{out.stdout}")
    return json.loads(out.stdout[out.stdout.index("{"):])


def calibrate_shaped_cluster():
    """The local cluster's file: its nodes' rates and links measured by calibrate under the cluster's mpirun (2 ranks
    per node), each node 1 core and half the host's memory (the nodes share one host)."""
    out = sh([CLUSTER, "mpirun", "-np", "4", "--map-by", "node", "--oversubscribe", "--bind-to", "none", RINGTRAIN, "calibrate", "--out",
              SHAPED + ".tmp", "--name", "local cluster: 2 namespace nodes of one host, 1 core each, 1 Gbit/s (tc tbf)"])
    if out.returncode != 0:
        sys.exit("FAIL: calibrate on the local cluster\n" + out.stdout)
    spec = yaml.safe_load(open(SHAPED + ".tmp"))
    os.remove(SHAPED + ".tmp")
    spec["devices_per_node"] = 1
    mem = spec["node_memory_gib"]
    spec["node_memory_gib"] = {"value": mem["value"] / 2, "source": mem["source"] + "; halved: the 2 nodes share it"}
    bw = spec["memory_bandwidth_gbs"]
    spec["memory_bandwidth_gbs"] = {"value": bw["value"] / 2, "source": bw["source"] + "; halved: the 2 nodes share it"}
    with open(SHAPED, "w") as f:
        f.write("# The local cluster (launch/cluster.sh up 2; shape 1gbit), written by bench/plan_validation.py from\n"
                "# `launch/cluster.sh mpirun -np 4 --map-by node ringtrain calibrate`: 2 nodes of 1 core each.\n")
        yaml.safe_dump(spec, f, sort_keys=False, width=1000)
    return out.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="three rows on one node")
    ap.add_argument("--no-long", action="store_true", help="leave out the 256k row (about 10 minutes)")
    ap.add_argument("--skip-cluster", action="store_true", help="leave out the local-cluster rows")
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    cpu = re.search(r"Model name:\s*(.*)", sh(["lscpu"]).stdout)
    print(f"# Planner validation ({sh(['date', '-u', '+%F']).stdout.strip()}, {cpu.group(1) if cpu else '?'}, "
          f"{os.cpu_count()} cores)\n")
    print(sh([RINGTRAIN, "calibrate", "--out", LOCAL]).stdout.strip())
    rows = []
    one = ONE_NODE[:3] if args.quick else ONE_NODE + ([] if args.no_long else LONG)
    for name, config, sets in one:
        rows.append((name, validate(LOCAL, config, sets, "launch/run.sh", args.steps)))
        print(f"  {name}: done", file=sys.stderr)
    if not (args.quick or args.skip_cluster):
        sh([CLUSTER, "down"])
        if sh([CLUSTER, "up", "2", "--slots", "1"]).returncode != 0:
            sys.exit("FAIL: launch/cluster.sh up 2 (needs root)")
        try:
            sh([CLUSTER, "shape", "1gbit"], check=True)
            print(calibrate_shaped_cluster().strip())
            for name, config, sets in ACROSS:
                rows.append((name, validate(SHAPED, config, sets, "launch/run.sh --local-cluster", args.steps)))
                print(f"  {name}: done", file=sys.stderr)
        finally:
            sh([CLUSTER, "down"])
    print("\n| layout | ranks x cores | predicted step s | measured step s | step error | predicted MiB/rank | "
          "measured MiB/rank (resident peak) | memory error | ring |")
    print("|---|---|---|---|---|---|---|---|---|")
    worst_step = worst_mem = 0.0
    for name, j in rows:
        p = j["placement"]
        ring = "-" if j["layout"]["cp"] == 1 else (
            f"{j['ring_link']}, {'hidden' if j['ring_hidden'] else 'exposed'} (>= {j['ring_min_tokens_per_rank']})")
        print(f"| {name} | {j['layout']['cp'] * j['layout']['dp'] * j['layout']['ulysses']} x {p['compute_cores']:.3g} | "
              f"{j['step_time_s']:.3f} | {j['measured_step_time_s']:.3f} | {100 * j['step_time_error']:+.1f}% | "
              f"{j['memory_per_rank_bytes'] / 2**20:.1f} | {j['measured_memory_per_rank_bytes'] / 2**20:.1f} | "
              f"{100 * j['memory_error']:+.1f}% | {ring} |")
        worst_step = max(worst_step, abs(j["step_time_error"]))
        worst_mem = max(worst_mem, abs(j["memory_error"]))
    print(f"\nmemory: worst |error| {100 * worst_mem:.1f}% over {len(rows)} rows (target 5%): "
          f"{'MET' if worst_mem <= 0.05 else 'MISSED'}")
    print(f"step time: worst |error| {100 * worst_step:.1f}% over {len(rows)} rows (target 15%): "
          f"{'MET' if worst_step <= 0.15 else 'MISSED'}")


if __name__ == "__main__":
    main()
