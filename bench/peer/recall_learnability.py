#!/usr/bin/env python3
"""Is the recall task learnable in a given budget? The peer's Llama trained on recall sequences of ringtrain's layout.

    .venv-bench/bin/python bench/peer/recall_learnability.py [--seq 64] [--batch 32] [--steps 1500] [--lr 3e-3]
        [--dim 128] [--layers 2] [--heads 4] [--hidden 256] [--threads 2] [--answers-only]
The model is shared/bench/torch_llama_ref.py's (its init: embedding N(0, 1), Kaiming-uniform linears); the sequences
follow data/synthetic_tasks.cpp's recall layout (start token, K key-value pairs among '.' fillers in the first
C = S - 3Q tokens, then Q queries "? k v"; filler-to-filler labels not trained) from Python's own generator, so they
are drawn like ringtrain's, not bit for bit. AdamW (0.9, 0.95, weight decay 0.1), clip 1.0, 10 warmup steps, constant
lr, as configs/tiny.yaml with min_lr = lr. --answers-only trains on the queried values alone (ringtrain's
data.train_on=long_range). Prints the loss and the long-range loss (the queried values) every 100 steps: ln 10 = 2.303
is chance. docs/benchmarks.md ("Retrieval heatmaps") compares it with ringtrain's runs.
"""
import argparse, os, random, sys, time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "shared", "bench"))
from torch_llama_ref import Model  # noqa: E402

KEYS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def recall_sequence(S, rng):
    """tokens (S), labels (S; -100 = not trained), long-range flags (S), as data/synthetic_tasks.cpp lays them out."""
    Q = S // 12
    C = S - 3 * Q
    K = min(52, (C - 1) // 4)
    fillers = C - 1 - 2 * K
    t = [ord(".")] * S
    t[0] = ord(">")
    keys = rng.sample(KEYS, K)
    values = [str(rng.randrange(10)) for _ in range(K)]
    cuts = sorted(rng.randrange(fillers + 1) for _ in range(K))
    for k in range(K):
        p = 1 + cuts[k] + 2 * k
        t[p], t[p + 1] = ord(keys[k]), ord(values[k])
    flags = [0] * S
    order, last = [], None
    for j in range(Q):
        if not order:
            order = list(range(K))
            rng.shuffle(order)
            if K > 1 and order[0] == last:
                order[0], order[1] = order[1], order[0]
        pair = order.pop(0)
        last = pair
        p = C + 3 * j
        t[p], t[p + 1], t[p + 2] = ord("?"), ord(keys[pair]), ord(values[pair])
        flags[p + 1] = 1
    labels = [-100] * S
    for i in range(S - 1):
        if not (t[i] == ord(".") and t[i + 1] == ord(".")):
            labels[i] = t[i + 1]
    return t, labels, flags


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--answers-only", action="store_true", help="train on the queried values alone")
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    rng = random.Random(1)
    model = Model(256, a.dim, a.layers, a.heads, a.heads, a.hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
    pos = torch.arange(a.seq)
    start = time.time()
    for step in range(1, a.steps + 1):
        for g in opt.param_groups:
            g["lr"] = a.lr * min(1.0, step / 10)
        batch = [recall_sequence(a.seq, rng) for _ in range(a.batch)]
        x = torch.tensor([b[0] for b in batch])
        y = torch.tensor([b[1] for b in batch])
        flags = torch.tensor([b[2] for b in batch], dtype=torch.float32)
        if a.answers_only:
            y = torch.where(flags > 0, y, torch.full_like(y, -100))
        h = model.emb(x)
        for block in model.blocks:
            h = block(h, pos)
        logits = model.norm(h) @ model.emb.weight.t()
        per_token = F.cross_entropy(logits.view(-1, 256), y.view(-1), reduction="none", ignore_index=-100)
        per_token = per_token.view(a.batch, a.seq)
        loss = per_token.sum() / (y != -100).sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0:
            long_range = (per_token * flags).sum() / flags.sum()
            print(f"step {step} loss {loss.item():.4f} long {long_range.item():.4f} {time.time() - start:.0f}s",
                  flush=True)


if __name__ == "__main__":
    main()
