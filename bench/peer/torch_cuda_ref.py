#!/usr/bin/env python3
"""Peer benchmarks on a CUDA GPU (bench/gpu_all.sh), timed with CUDA events, median of --reps.

  torch_cuda_ref.py sdpa --seq 8192 --heads 16 --kv-heads 16 --head-dim 128 --causal 1 [--reps 20]
      PyTorch scaled_dot_product_attention on bf16 (B=1, H, T, d) tensors, forward and forward+backward.
      FLOP convention (FlashAttention): forward 4*T^2*d*H, halved if causal; backward 2.5x forward.
  torch_cuda_ref.py train --seq 4096 --dim 256 --layers 4 --heads 4 [--steps 10] [--peer-dir DIR]
      forward+backward+AdamW of the shared reference model (torch_llama_ref.py in --peer-dir, default
      <repo>/../shared/bench), fp32 weights with TF32 matmuls as ringtrain's GPU path, batch 1.
Prints one line per measurement.
"""
import argparse, os, sys, time
import torch
import torch.nn.functional as F


def median_ms(fn, reps):
    fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(reps):
        start.record(); fn(); stop.record(); stop.synchronize()
        ts.append(start.elapsed_time(stop))
    return sorted(ts)[len(ts) // 2]


def sdpa(a):
    H, Hk, T, D = a.heads, a.kv_heads or a.heads, a.seq, a.head_dim
    opts = dict(device="cuda", dtype=torch.bfloat16, requires_grad=True)
    q, k, v = torch.randn(1, H, T, D, **opts), torch.randn(1, Hk, T, D, **opts), torch.randn(1, Hk, T, D, **opts)
    do = torch.randn(1, H, T, D, device="cuda", dtype=torch.bfloat16)

    def attn():
        kk, vv = k, v
        if Hk != H:
            kk, vv = k.repeat_interleave(H // Hk, 1), v.repeat_interleave(H // Hk, 1)
        return F.scaled_dot_product_attention(q, kk, vv, is_causal=bool(a.causal))

    fwd_flop = 4 * T * T * D * H / (2 if a.causal else 1)
    with torch.no_grad():
        ms_f = median_ms(attn, a.reps)

    def fb():
        q.grad = k.grad = v.grad = None
        attn().backward(do)
    ms_fb = median_ms(fb, a.reps)
    shape = f"T={T} H={H} Hkv={Hk} d={D} causal={a.causal}"
    gpu = torch.cuda.get_device_name()
    print(f"torch {torch.__version__} sdpa gpu=\"{gpu}\" {shape} fwd_ms={ms_f:.3f} fwd_tflops={fwd_flop / ms_f / 1e9:.1f} "
          f"fwdbwd_ms={ms_fb:.3f} fwdbwd_tflops={3.5 * fwd_flop / ms_fb / 1e9:.1f}")


def train(a):
    sys.path.insert(0, a.peer_dir)
    import torch_llama_ref as ref  # the same model as the CPU comparison (bench/compare_train_step.sh)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.set_default_device("cuda")  # the reference builds its positions and masks with factory functions
    torch.manual_seed(0)
    model = ref.Model(256, a.dim, a.layers, a.heads, a.kv_heads or a.heads, a.hidden or 4 * a.dim)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    idx = torch.randint(0, 256, (1, a.seq)); tgt = torch.randint(0, 256, (1, a.seq))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(idx, tgt)
        loss.backward()
        opt.step()
        return loss
    ms = median_ms(step, a.steps)
    print(f"torch {torch.__version__} train gpu=\"{torch.cuda.get_device_name()}\" seq={a.seq} dim={a.dim} "
          f"layers={a.layers} step_ms={ms:.2f} tokens_per_s={a.seq / ms * 1e3:.0f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["sdpa", "train"])
    p.add_argument("--seq", type=int, default=8192); p.add_argument("--heads", type=int, default=16)
    p.add_argument("--kv-heads", type=int, default=0); p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--causal", type=int, default=1); p.add_argument("--reps", type=int, default=20)
    p.add_argument("--dim", type=int, default=256); p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=0); p.add_argument("--steps", type=int, default=10)
    p.add_argument("--peer-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "..", "..", "..", "shared", "bench"))
    a = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("torch sees no CUDA GPU")
    sdpa(a) if a.what == "sdpa" else train(a)


if __name__ == "__main__":
    main()
