#!/usr/bin/env python3
"""Load a ringtrain checkpoint with Hugging Face transformers and check it computes ringtrain's loss.

A manual check (transformers is not a ringtrain dependency): run with the benchmark venv,
    .venv-bench/bin/pip install transformers safetensors
    .venv-bench/bin/python bench/peer/hf_load_check.py --ringtrain build/trainer/ringtrain
For each model shape below it trains ringtrain for 4 steps on a text file exactly seq_len + 1 bytes long
(so every training sequence is that one window), saving checkpoints at steps 2 and 4. The loss ringtrain
logs for step 3 is the loss of the step-2 weights on the window; the script loads step_00000002 with
LlamaForCausalLM.from_pretrained, requires no missing or unexpected keys, computes the same loss and
compares. Exit 0 when every shape agrees within 1e-5 relative.
The RoPE-scaling shapes (model.rope_scaling: linear, dynamic, yarn, llama3) train at 128 tokens, four times their
original_max_position_embeddings (32), so most positions lie beyond the original length; weights start large
(initializer_range 0.5) so that attention, and so the loss, depends on the positions. For each, the same checkpoint
loaded with plain RoPE must give a clearly different loss (the scaling is what matched, not an insensitive model).
A ctest (hf_parity, label hf) runs this where .venv-bench has transformers, and skips otherwise.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM

SHAPES = {
    "tied, MHA": ["model.hidden_size=128", "model.num_hidden_layers=2", "model.num_attention_heads=4",
                  "model.num_key_value_heads=4", "model.intermediate_size=256", "train.seq_len=64"],
    "untied, GQA": ["model.hidden_size=96", "model.num_hidden_layers=3", "model.num_attention_heads=6",
                    "model.num_key_value_heads=2", "model.intermediate_size=160", "model.tie_word_embeddings=false",
                    "model.rope_theta=500000.0", "train.seq_len=128"],
}

ROPE = ["model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=4",
        "model.num_key_value_heads=2", "model.intermediate_size=128", "model.initializer_range=0.5",
        "train.seq_len=128", "train.lr=1e-4", "train.min_lr=1e-5"]
SHAPES.update({
    "rope linear": ROPE + ["model.rope_scaling.rope_type=linear", "model.rope_scaling.factor=4"],
    "rope dynamic": ROPE + ["model.rope_scaling.rope_type=dynamic", "model.rope_scaling.factor=4",
                            "model.rope_scaling.original_max_position_embeddings=32"],
    "rope yarn": ROPE + ["model.rope_scaling.rope_type=yarn", "model.rope_scaling.factor=4",
                         "model.rope_scaling.original_max_position_embeddings=32", "model.rope_scaling.beta_fast=8"],
    "rope llama3": ROPE + ["model.rope_scaling.rope_type=llama3", "model.rope_scaling.factor=4",
                           "model.rope_scaling.original_max_position_embeddings=32", "model.rope_theta=500.0"],
})

TEXT = (b"It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
        b"foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light.")


def check(ringtrain, name, sets, work):
    seq_len = int(next(s for s in sets if s.startswith("train.seq_len=")).split("=")[1])
    text_path = os.path.join(work, "window.txt")
    with open(text_path, "wb") as f:
        f.write(TEXT[: seq_len + 1])
    run = os.path.join(work, "run")
    cmd = [ringtrain, "train", "--set", "data.task=text", "--set", "data.path=" + text_path, "--set", "train.steps=4",
           "--set", "train.batch_size=2", "--set", "train.warmup_steps=1", "--set", "checkpoint.every=2",
           "--set", "log.dir=" + run, "--set", "train.threads=1"]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(run, "metrics.jsonl")) as f:
        losses = {r["step"]: r["loss"] for r in map(json.loads, f)}

    ckpt = os.path.join(run, "checkpoints", "step_00000002")
    model, info = LlamaForCausalLM.from_pretrained(ckpt, output_loading_info=True, attn_implementation="eager",
                                                   dtype=torch.float32)
    problems = {k: v for k, v in info.items() if v}
    ids = torch.tensor([list(TEXT[: seq_len + 1])])

    def hf_loss(m):
        with torch.no_grad():
            logits = m(ids[:, :seq_len]).logits
        return F.cross_entropy(logits[0].double(), ids[0, 1:]).item(), torch.isfinite(logits).all().item()

    loss, finite = hf_loss(model)
    rel = abs(loss - losses[3]) / losses[3]
    ok = not problems and finite and rel < 1e-5
    plain = ""
    if model.config.rope_parameters.get("rope_type", "default") != "default":
        unscaled = LlamaForCausalLM.from_pretrained(ckpt, attn_implementation="eager", dtype=torch.float32,
                                                    rope_parameters={"rope_type": "default",
                                                                     "rope_theta": model.config.rope_parameters[
                                                                         "rope_theta"]},
                                                    max_position_embeddings=seq_len)
        rel_plain = abs(hf_loss(unscaled)[0] - losses[3]) / losses[3]
        plain = f" | plain RoPE rel diff {rel_plain:.1e}"
        ok = ok and rel_plain > 100 * max(rel, 1e-7)
    print(f"{name:12s} | transformers loss {loss:.7f} | ringtrain step-3 loss {losses[3]:.7f} | rel diff {rel:.1e}"
          f"{plain} | loading issues {problems or 'none'} | {'ok' if ok else 'MISMATCH'}")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ringtrain", default="build/trainer/ringtrain")
    args = parser.parse_args()
    import transformers
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    torch.manual_seed(0)
    results = []
    for name, sets in SHAPES.items():
        with tempfile.TemporaryDirectory() as work:
            results.append(check(os.path.abspath(args.ringtrain), name, sets, work))
    print("verdict:", "PASS" if all(results) else "FAIL")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
