#!/usr/bin/env python3
"""ringtrain's greedy sampling against Hugging Face transformers' generate(do_sample=False) on the same checkpoint.

A manual check (transformers is not a ringtrain dependency): with the benchmark venv,
    .venv-bench/bin/python bench/peer/hf_generate_check.py --ringtrain build/trainer/ringtrain
trains a small byte-level model on a repetitive text for 150 steps (GQA, untied head, so that the model predicts
something more than noise and the two implementations must agree on a real distribution), then for two prompts runs
`ringtrain sample --temperature 0 --max-new-tokens 200 --ids` and LlamaForCausalLM.generate(do_sample=False,
max_new_tokens=200) on the checkpoint, and requires the 200 token ids to be identical (greedy decoding turns any
difference at a near tie into a different continuation).
A ctest (hf_generate, label hf) runs this where .venv-bench has transformers, and skips otherwise.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from transformers import LlamaForCausalLM

TEXT = (b"def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n"
        b"for i in range(10):\n    print(i, fib(i))\n\n") * 40
PROMPTS = [b"def fib(n):\n    if n", b"for i in range("]
NEW = 200


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ringtrain", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        text = os.path.join(work, "code.txt")
        with open(text, "wb") as f:
            f.write(TEXT)
        run = os.path.join(work, "run")
        sets = ["data.task=text", "data.path=" + text, "train.steps=150", "train.seq_len=256", "train.batch_size=4",
                "model.hidden_size=96", "model.num_hidden_layers=2", "model.num_attention_heads=6",
                "model.num_key_value_heads=2", "model.intermediate_size=192", "model.tie_word_embeddings=false",
                "train.lr=3e-3", "log.every=50", "log.dir=" + run]
        cmd = [args.ringtrain, "train"] + [x for s in sets for x in ("--set", s)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        ckpt = os.path.join(run, "checkpoints", "step_00000150")
        model = LlamaForCausalLM.from_pretrained(ckpt, torch_dtype=torch.float32).eval()
        failed = False
        for prompt in PROMPTS:
            ids = list(prompt)
            out = subprocess.run([args.ringtrain, "sample", "--checkpoint", ckpt, "--prompt-ids",
                                  ",".join(map(str, ids)), "--temperature", "0", "--max-new-tokens", str(NEW),
                                  "--ids", "--context", str(len(ids) + NEW)],
                                 check=True, capture_output=True, text=True).stdout.split()
            ours = [int(t) for t in out]
            with torch.no_grad():
                theirs = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=NEW, min_new_tokens=NEW,
                                        pad_token_id=0)[0, len(ids):].tolist()
            same = ours == theirs
            first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
            print(f"prompt {prompt!r}: {len(ours)} tokens, identical to transformers: {same}"
                  + ("" if same else f" (first difference at token {first})"))
            print("  ringtrain:", bytes(t for t in ours if t < 256)[:80])
            failed |= not same
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
