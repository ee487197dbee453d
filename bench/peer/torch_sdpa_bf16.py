#!/usr/bin/env python3
"""Peer benchmark: PyTorch scaled_dot_product_attention on the CPU in bf16 (q, k, v, dout in bf16), forward and
forward+backward, the bf16 column beside ringtrain's --precision bf16 flash attention (bench/compare_attention.sh).

Usage: torch_sdpa_bf16.py --seq 4096 --heads 8 --kv-heads 8 --head-dim 64 --causal 1 --threads 2 --reps 5
Same output lines and FLOP convention as ../shared/bench/torch_sdpa_ref.py (forward 4*T^2*d*H, halved if causal;
fwd+bwd 3.5x forward).
"""
import argparse, time
import torch
import torch.nn.functional as F


def median_ms(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2] * 1e3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seq", type=int, default=4096); p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=0); p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--causal", type=int, default=1); p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    H, Hk, T, D = a.heads, a.kv_heads or a.heads, a.seq, a.head_dim
    bf = dict(dtype=torch.bfloat16, requires_grad=True)
    q, k, v = torch.randn(1, H, T, D, **bf), torch.randn(1, Hk, T, D, **bf), torch.randn(1, Hk, T, D, **bf)
    do = torch.randn(1, H, T, D, dtype=torch.bfloat16)
    gqa = dict(enable_gqa=True) if Hk != H else {}
    attn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=bool(a.causal), **gqa)
    fwd_flop = 4 * T * T * D * H / (2 if a.causal else 1)
    with torch.no_grad():
        ms_f = median_ms(attn, a.reps)

    def fb():
        q.grad = k.grad = v.grad = None
        attn().backward(do)
    ms_fb = median_ms(fb, a.reps)
    shape = f"T={T} H={H} Hkv={Hk} d={D} causal={a.causal} threads={a.threads} bf16"
    print(f"torch {torch.__version__} sdpa forward  {shape} {ms_f:.1f} ms {fwd_flop / ms_f / 1e6:.1f} GFLOP/s")
    print(f"torch {torch.__version__} sdpa fwd+bwd  {shape} {ms_fb:.1f} ms {3.5 * fwd_flop / ms_fb / 1e6:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
