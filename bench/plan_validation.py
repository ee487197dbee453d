#!/usr/bin/env python3
"""The planner against measured runs: runs `ringtrain plan --validate` over layouts on one node (cp 1-8, 4k-256k
tokens, dp, Ulysses, recompute, bf16) and across two local-cluster nodes on a 1 Gbit/s link, and prints predicted
against measured step time (in total and by part) and peak memory per rank.

  bench/plan_validation.py [--quick] [--no-long] [--skip-cluster] [--repeats N]

Each run of a row measures its step time as the median of the timed steps, between two calibrations (`ringtrain
calibrate` of the row's model), one just before it and one just after, and is predicted as the mean of their two
predictions: this host's speed drifts by 10-25% over minutes and by up to 30% between two 10-second windows (other
tenants of the machine), so a calibration from the start of a 30-minute run would measure the drift, not the model.
A row is run twice (--repeats), each run between its calibrations, unless its first run and calibrations took
REPEAT_UNTIL_S (the 256k row); its measured step time is the mean of its runs' medians, its prediction the mean of all its calibrations'.
The table also gives each row's error against the first calibration, and the spread of the calibrated rates.

Target (issue 16): memory within 5% and step time within 15% on every row. Prints markdown tables, then one line per
target; exits 1 if a run fails (a missed target is reported, not an error: these are benchmark figures).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RINGTRAIN = os.path.join(ROOT, "build", "trainer", "ringtrain")
CLUSTER = os.path.join(ROOT, "launch", "cluster.sh")
ENV = dict(os.environ, RINGTRAIN_CLUSTER="rtplan")
LOCAL = os.path.join(ROOT, "configs", "clusters", "local.yaml")
SHAPED = os.path.join(ROOT, "configs", "clusters", "local_cluster_1gbit.yaml")
TINY = os.path.join(ROOT, "configs", "tiny.yaml")
MICRO = ["model.num_hidden_layers=1", "model.hidden_size=32", "model.num_attention_heads=1",
         "model.num_key_value_heads=1", "model.intermediate_size=64"]

# (name, config or None for the defaults, --set overrides, steps); the reference model is configs/default.yaml's.
ONE_NODE = [
    ("reference, cp 1, 4k", None, ["train.seq_len=4096", "train.batch_size=1"], 5),
    ("reference, cp 1, 16k", None, ["train.seq_len=16384", "train.batch_size=1"], 3),
    ("reference, cp 1, 8k, bf16", None, ["train.seq_len=8192", "train.batch_size=1", "train.precision=bf16"], 4),
    ("reference, cp 1, 8k, recompute", None, ["train.seq_len=8192", "train.batch_size=1", "train.recompute=full"], 4),
    ("reference, cp 1, 4k, batch 4 in micro 2", None,
     ["train.seq_len=4096", "train.batch_size=4", "train.micro_batch_size=2"], 4),
    ("reference, cp 2, 16k", None, ["train.seq_len=16384", "train.batch_size=1", "parallel.cp=2"], 3),
    ("reference, cp 2, 16k, bf16", None,
     ["train.seq_len=16384", "train.batch_size=1", "parallel.cp=2", "train.precision=bf16"], 3),
    ("reference, dp 2, 8k", None, ["train.seq_len=8192", "train.batch_size=2", "parallel.dp=2"], 4),
    ("reference, ulysses 2, 16k", None, ["train.seq_len=16384", "train.batch_size=1", "parallel.ulysses=2"], 3),
    ("tiny, cp 4, 32k", TINY, ["train.seq_len=32768", "train.batch_size=1", "parallel.cp=4"], 3),
    ("tiny, cp 8, 32k", TINY, ["train.seq_len=32768", "train.batch_size=1", "parallel.cp=8"], 3),
]
LONG = [("micro (1 layer, hidden 32, 1 head), cp 4, 256k, recompute", TINY,
         MICRO + ["train.seq_len=262144", "train.batch_size=1", "parallel.cp=4", "train.recompute=full"], 2)]
ACROSS = [  # 2 local-cluster nodes, 1 rank x 1 thread each, 1 Gbit/s
    ("reference, cp 2 across nodes, 16k", None,
     ["train.seq_len=16384", "train.batch_size=1", "parallel.cp=2", "train.threads=1"], 3),
    ("reference, cp 2 across nodes, 2k (ring exposed)", None,
     ["train.seq_len=2048", "train.batch_size=1", "parallel.cp=2", "train.threads=1"], 5),
    ("reference, dp 2 across nodes, 4k", None,
     ["train.seq_len=4096", "train.batch_size=2", "parallel.dp=2", "train.threads=1"], 4),
]
MODEL_KEYS = ("model.",)  # the overrides calibrate takes: the row's model shapes
REPEAT_UNTIL_S = 240  # a row is run again (between fresh calibrations) until its runs span this many seconds


def sh(cmd, **kw):
    return subprocess.run(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def config_args(config, sets):
    args = ["--config", config] if config else []
    model = [s for s in sets if s.startswith(MODEL_KEYS)]
    return args + (["--set"] + model if model else [])


def calibrate(out, config, sets):
    """This machine's rates for the row's model, into `out`; returns calibrate's first line."""
    run = sh([RINGTRAIN, "calibrate", "--out", out] + config_args(config, sets), cwd=ROOT)
    if run.returncode != 0:
        sys.exit(f"FAIL: calibrate\n{run.stdout}")
    return run.stdout.splitlines()[0]


def predict(cluster, config, sets):
    cmd = [RINGTRAIN, "plan", "--cluster", cluster, "--json"] + (["--config", config] if config else [])
    out = sh(cmd + ["--set"] + sets, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)}\n{out.stdout}")
    return json.loads(out.stdout[out.stdout.index("{"):])


def validate(cluster, config, sets, launch, steps):
    cmd = [RINGTRAIN, "plan", "--cluster", cluster, "--validate", "--json", "--steps", str(steps), "--launch", launch]
    if config:
        cmd += ["--config", config]
    cmd += ["--set"] + sets
    out = sh(cmd, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)}\n{out.stdout}")
    return json.loads(out.stdout[out.stdout.index("{"):])


def calibrate_shaped_cluster(out, config, sets):
    """The local cluster's file: its nodes' rates and links measured by calibrate under the cluster's mpirun (2 ranks
    per node), each node 1 core and half the host's memory (the nodes share one host)."""
    run = sh([CLUSTER, "mpirun", "-np", "4", "--map-by", "node", "--oversubscribe", "--bind-to", "none", RINGTRAIN,
              "calibrate", "--out", out + ".tmp", "--name",
              "local cluster: 2 namespace nodes of one host, 1 core each, 1 Gbit/s (tc tbf)"] + config_args(config, sets))
    if run.returncode != 0:
        sys.exit("FAIL: calibrate on the local cluster\n" + run.stdout)
    spec = yaml.safe_load(open(out + ".tmp"))
    os.remove(out + ".tmp")
    spec["devices_per_node"] = 1
    mem = spec["node_memory_gib"]
    spec["node_memory_gib"] = {"value": mem["value"] / 2, "source": mem["source"] + "; halved: the 2 nodes share it"}
    bw = spec["memory_bandwidth_gbs"]
    spec["memory_bandwidth_gbs"] = {"value": bw["value"] / 2,
                                    "source": bw["source"] + "; halved: measured with the host's 2 cores, a node has 1"}
    with open(out, "w") as f:
        f.write("# The local cluster (launch/cluster.sh up 2; shape 1gbit), written by bench/plan_validation.py from\n"
                "# `launch/cluster.sh mpirun -np 4 --map-by node ringtrain calibrate`: 2 nodes of 1 core each.\n")
        yaml.safe_dump(spec, f, sort_keys=False, width=1000)
    return run.stdout.strip()


def parts_of(plan):
    """The predicted step by the parts metrics.jsonl measures, from `plan --json`'s terms."""
    t = plan["time_terms_s"]
    return {"gemm": t["gemm"], "attention": t["attention"],
            "communication_waits": t["ring_exposed"] + t["all_to_all"] + t["all_reduce_exposed"],
            "other": t["elementwise"] + t["optimizer"]}


class Calibrations:
    """Each row is predicted from the mean of two calibrations: one just before it and one just after (which is the
    next row's before, when that row calibrates the same model the same way). This host's speed drifts over minutes;
    a row between two calibrations is predicted from the rates around it rather than from a moment before it."""

    def __init__(self, tmp):
        self.tmp, self.count, self.last = tmp, 0, None

    def take(self, calibrate_into, config, sets):
        self.count += 1
        path = os.path.join(self.tmp, f"calibration_{self.count}.yaml")
        line = calibrate_into(path, config, sets)
        self.last = ((calibrate_into, config, tuple(s for s in sets if s.startswith(MODEL_KEYS))), path, line)
        return path, line

    def before(self, calibrate_into, config, sets):
        key = (calibrate_into, config, tuple(s for s in sets if s.startswith(MODEL_KEYS)))
        if self.last and self.last[0] == key:
            return self.last[1], self.last[2]
        return self.take(calibrate_into, config, sets)


def run_row(name, config, sets, steps, launch, calibrate_into, fixed, calibrations, repeats):
    """Calibrates around the row and validates it, `repeats` times unless the runs so far took REPEAT_UNTIL_S; predicts
    it from the run's first calibration (`fixed`) too. Measured: the mean of the runs' medians and their largest
    memory; predicted: the mean of each run's two calibrations' predictions, averaged over the runs."""
    runs, plans, lines, first, started = [], [], [], None, time.monotonic()
    while len(runs) < repeats and (not runs or time.monotonic() - started < REPEAT_UNTIL_S):
        before, line = calibrations.before(calibrate_into, config, sets)
        first = first or before
        runs.append(validate(before, config, sets, launch, steps))
        after, after_line = calibrations.take(calibrate_into, config, sets)
        plans += [predict(before, config, sets), predict(after, config, sets)]
        lines += [after_line] if lines else [line, after_line]
    j = dict(runs[0])
    j["runs"] = len(runs)
    j["measured_runs_s"] = [r["measured_step_time_s"] for r in runs]
    j["measured_step_time_s"] = sum(j["measured_runs_s"]) / len(runs)
    j["measured_memory_per_rank_bytes"] = max(r["measured_memory_per_rank_bytes"] for r in runs)
    j["memory_error"] = j["memory_per_rank_bytes"] / j["measured_memory_per_rank_bytes"] - 1
    j["step_time_before_after_s"] = [p["step_time_s"] for p in plans]
    j["step_time_s"] = sum(j["step_time_before_after_s"]) / len(plans)
    j["step_time_error"] = j["step_time_s"] / j["measured_step_time_s"] - 1
    if "predicted_parts_s" in j:
        j["predicted_parts_s"] = {k: sum(parts_of(p)[k] for p in plans) / len(plans) for k in parts_of(plans[0])}
        j["measured_parts_s"] = {k: sum(r["measured_parts_s"][k] for r in runs) / len(runs)
                                 for k in runs[0]["measured_parts_s"]}
    j["calibration"] = lines[0]
    j["rates"] = yaml.safe_load(open(first))
    if config == fixed[1] and not any(s.startswith(MODEL_KEYS) for s in sets):
        j["fixed_step_time_s"] = predict(fixed[0], config, sets)["step_time_s"]
    print(f"  {name}: {j['step_time_s']:.3f} s predicted (before/after each run: "
          f"{', '.join(f'{p:.3f}' for p in j['step_time_before_after_s'])}), measured "
          f"{', '.join(f'{m:.3f}' for m in j['measured_runs_s'])} s | " + " | ".join(lines), file=sys.stderr)
    return j


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="three rows on one node")
    ap.add_argument("--no-long", action="store_true", help="leave out the 256k row (about 10 minutes)")
    ap.add_argument("--skip-cluster", action="store_true", help="leave out the local-cluster rows")
    ap.add_argument("--repeats", type=int, default=2,
                    help=f"runs of a row at most, each between two calibrations (fewer once they span {REPEAT_UNTIL_S} s)")
    args = ap.parse_args()
    cpu = re.search(r"Model name:\s*(.*)", sh(["lscpu"]).stdout)
    family = re.search(r"CPU family:\s*(\d+)", sh(["lscpu"]).stdout)
    print(f"# Planner validation ({sh(['date', '-u', '+%F']).stdout.strip()}, {cpu.group(1) if cpu else '?'}"
          f"{' family ' + family.group(1) if family else ''}, {os.cpu_count()} cores)\n")
    tmp = tempfile.mkdtemp(prefix="plan_validation_")
    print(calibrate(LOCAL, None, []))  # this machine's file, and the fixed calibration of the reference rows
    fixed_local = (LOCAL, None)
    rows = []
    calibrations = Calibrations(tmp)
    one = ONE_NODE[:3] if args.quick else ONE_NODE + ([] if args.no_long else LONG)
    for name, config, sets, steps in one:
        rows.append((name, run_row(name, config, sets, steps, "launch/run.sh", calibrate, fixed_local, calibrations,
                                      args.repeats)))
    if not (args.quick or args.skip_cluster):
        sh([CLUSTER, "down"])
        if sh([CLUSTER, "up", "2", "--slots", "1"]).returncode != 0:
            sys.exit("FAIL: launch/cluster.sh up 2 (needs root)")
        try:
            sh([CLUSTER, "shape", "1gbit"], check=True)
            print(calibrate_shaped_cluster(SHAPED, None, []))
            for name, config, sets, steps in ACROSS:
                rows.append((name, run_row(name, config, sets, steps, "launch/run.sh --local-cluster",
                                           calibrate_shaped_cluster, (SHAPED, None), calibrations, args.repeats)))
        finally:
            sh([CLUSTER, "down"])
    shutil.rmtree(tmp, ignore_errors=True)
    print("\n| layout | ranks x cores | runs | predicted step s | measured step s (mean of the runs' medians) | step error | error against the first "
          "calibration | predicted MiB/rank | measured MiB/rank (resident peak) | memory error | ring |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    worst_step = worst_mem = 0.0
    for name, j in rows:
        p = j["placement"]
        ring = "-" if j["layout"]["cp"] == 1 else (
            f"{j['ring_link']}, {'hidden' if j['ring_hidden'] else 'exposed'} (>= {j['ring_min_tokens_per_rank']})")
        fixed = (f"{100 * (j['fixed_step_time_s'] / j['measured_step_time_s'] - 1):+.1f}%"
                 if "fixed_step_time_s" in j else "(other model)")
        print(f"| {name} | {j['layout']['cp'] * j['layout']['dp'] * j['layout']['ulysses']} x {p['compute_cores']:.3g} | "
              f"{j['runs']} | "
              f"{j['step_time_s']:.3f} | {j['measured_step_time_s']:.3f} | {100 * j['step_time_error']:+.1f}% | {fixed} | "
              f"{j['memory_per_rank_bytes'] / 2**20:.1f} | {j['measured_memory_per_rank_bytes'] / 2**20:.1f} | "
              f"{100 * j['memory_error']:+.1f}% | {ring} |")
        worst_step = max(worst_step, abs(j["step_time_error"]))
        worst_mem = max(worst_mem, abs(j["memory_error"]))

    print("\nBy part, predicted / measured seconds (rank 0; communication = the waits no compute hid):\n")
    print("| layout | gemm | attention | communication | other (elementwise, AdamW, loader) |")
    print("|---|---|---|---|---|")
    for name, j in rows:
        if "measured_parts_s" not in j:
            continue
        pp, mp = j["predicted_parts_s"], j["measured_parts_s"]
        cells = " | ".join(f"{pp[k]:.3f} / {mp[k]:.3f}" for k in ("gemm", "attention", "communication_waits", "other"))
        print(f"| {name} | {cells} |")

    print("\nCalibrated rates over the run (per core, TFLOP/s; elementwise GB/s), the reference model's rows:\n")
    ref = [j["rates"] for name, j in rows if name.startswith("reference")]
    for key in ("gemm_tflops_fp32", "gemm_tflops_bf16", "attention_tflops_fp32", "attention_tflops_bf16",
                "memory_bandwidth_gbs"):
        values = [r[key]["value"] for r in ref]
        if values:
            print(f"- {key}: {min(values):.4g} to {max(values):.4g} ({100 * (max(values) / min(values) - 1):.0f}% "
                  f"apart, {len(values)} calibrations)")

    print(f"\nmemory: worst |error| {100 * worst_mem:.1f}% over {len(rows)} rows (target 5%): "
          f"{'MET' if worst_mem <= 0.05 else 'MISSED'}")
    print(f"step time: worst |error| {100 * worst_step:.1f}% over {len(rows)} rows (target 15%): "
          f"{'MET' if worst_step <= 0.15 else 'MISSED'}")


if __name__ == "__main__":
    main()
