#!/usr/bin/env python3
"""Projection: the planner's step time, tokens/s, memory and longest sequence for the reference model and a 1B Llama
(configs/llama_1b.yaml) on 8 to 1024 H100s (configs/clusters/h100_ib.yaml), each row the fastest layout
`ringtrain plan --search` recommends (fits memory, ring hidden), with the assumptions printed beside the table.

  bench/plan_projection.py [--cluster configs/clusters/h100_ib.yaml] [--seq 131072]
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RINGTRAIN = os.path.join(ROOT, "build", "trainer", "ringtrain")
MODELS = [("reference (256 x 4, 4.3M)", ["--set", "train.device=cuda", "train.precision=bf16"]),
          ("1B Llama (TinyLlama-1.1B shape)", ["--config", os.path.join(ROOT, "configs", "llama_1b.yaml")])]
DEVICES = [8, 64, 512, 1024]


def search(cluster, args, seq, devices):
    out = subprocess.run([RINGTRAIN, "plan", "--cluster", cluster, "--search", "--json", "--seq-len", str(seq),
                          "--devices", str(devices)] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if out.returncode != 0:
        sys.exit(f"FAIL: plan --search at {seq} on {devices}:\n{out.stdout}")
    best = [j for j in json.loads(out.stdout) if j["fits"] and j["ring_hidden"]]
    return best[0] if best else None


def layout(j):
    l = j["layout"]
    return (f"cp {l['cp']} x dp {l['dp']} x ulysses {l['ulysses']}, micro {l['micro_batch']}, {l['precision']}, "
            f"recompute {l['recompute']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cluster", default=os.path.join(ROOT, "configs", "clusters", "h100_ib.yaml"))
    ap.add_argument("--seq", type=int, default=131072)
    args = ap.parse_args()
    print(f"| model | GPUs | seq | fastest layout | step s | tokens/s | MFU | GiB per rank | longest seq that fits | "
          f"its layout, step s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, model_args in MODELS:
        for devices in DEVICES:
            j = search(args.cluster, model_args, args.seq, devices)
            longest, seq, capped = None, args.seq, True
            while seq <= 1 << 28:  # doubling: past the lengths whose ring is exposed, until nothing fits
                k = search(args.cluster, model_args, seq, devices)
                if k is None and longest is not None:
                    capped = False
                    break
                longest, seq = k or longest, seq * 2
            row = (f"| {name} | {devices} | {args.seq} | ")
            row += (f"{layout(j)} | {j['step_time_s']:.3f} | {j['tokens_per_s']:.3g} | "
                    f"{100 * j['model_flop_utilisation']:.0f}% | {j['memory_per_rank_bytes'] / 2**30:.1f} | "
                    if j else "none recommended: too few tokens per rank to hide the ring, or no fit | | | | | ")
            row += (f"{'>= ' if capped else ''}{longest['layout']['seq_len']:,} | {layout(longest)}, {longest['step_time_s']:.1f} s |"
                    if longest else "- | - |")
            print(row)
    print(f"\nAssumptions (cluster file {os.path.relpath(args.cluster, ROOT)}; every number there carries its source):")
    print("- batch of 8 sequences per step (the configs' train.batch_size), so dp <= 8 and the rest of the GPUs go to "
          "cp x ulysses; layouts: cp, dp, ulysses, micro-batch 1-8, recompute none/full, fp32/bf16;")
    print("- GEMMs at the cluster file's effective rate (65% of the dense peak), attention at FlashAttention-2's "
          "published forward+backward rate, elementwise work and AdamW at 90% of HBM bandwidth;")
    print("- zigzag ring attention, each ring step's K/V (and dK/dV) exchange overlapped with that step's attention; "
          "ranks placed 8 per node in order, so a ring longer than 8 crosses InfiniBand at 46 GB/s per GPU;")
    print("- the gradient all-reduce as a ring over all ranks at the slowest link, after the backward (NCCL on a "
          "stream), not overlapped; no tensor or pipeline parallelism, no optimizer sharding (every rank holds fp32 "
          "weights, gradients and AdamW moments);")
    print("- per-rank runtime overhead (CUDA context, cuBLAS, NCCL) as in the cluster file; memory fits when the "
          "modelled peak is within the GPU's memory. Not yet measured on a GPU (issue 17).")


if __name__ == "__main__":
    main()
