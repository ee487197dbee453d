#!/usr/bin/env python3
"""An independent reader of ringtrain checkpoints, standard library only (tests/checkpoints).

    read_safetensors.py CHECKPOINT_DIR

Reads model.safetensors and optimizer.safetensors by the safetensors specification (8-byte little-endian
header length N, N bytes of JSON, then the data; each tensor's data_offsets are relative to the end of the
header) and checks the layout: dtypes and shapes match the byte ranges, the ranges lie back to back and
cover the data exactly, the data starts 8-byte aligned, __metadata__ has format "pt". Checks that
model.safetensors holds exactly the tensors a Hugging Face LlamaForCausalLM with config.json has (names
and shapes), and optimizer.safetensors an exp_avg and exp_avg_sq of each plus an I64 scalar "step".
Prints one JSON object: per file its metadata and, per tensor, dtype, shape, the sum of its values
(float64, in order), its first and last value. Exits 1 with a message on any violation.
"""
import json
import os
import struct
import sys
from array import array

SIZES = {"F32": 4, "I64": 8}
TYPECODES = {"F32": "f", "I64": "q"}


def fail(message):
    print("read_safetensors: " + message, file=sys.stderr)
    sys.exit(1)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        fail(f"{path}: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        fail(f"{path}: header length {n} exceeds the file")
    if (8 + n) % 8:
        fail(f"{path}: data starts at byte {8 + n}, not 8-byte aligned")
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    if metadata.get("format") != "pt":
        fail(f"{path}: __metadata__.format is {metadata.get('format')!r}, transformers wants 'pt'")
    body = data[8 + n :]
    tensors, ranges = {}, []
    for name, entry in header.items():
        dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in SIZES:
            fail(f"{path}: {name} has dtype {dtype}")
        count = 1
        for d in shape:
            count *= d
        if end - begin != count * SIZES[dtype]:
            fail(f"{path}: {name} data_offsets {begin}..{end} do not hold {shape} {dtype}")
        ranges.append((begin, end))
        values = array(TYPECODES[dtype])
        values.frombytes(body[begin:end])
        if sys.byteorder != "little":
            values.byteswap()
        total = 0.0
        for v in values:
            total += float(v)
        tensors[name] = {"dtype": dtype, "shape": shape, "sum": total,
                         "first": float(values[0]) if count else None, "last": float(values[-1]) if count else None}
    at = 0
    for begin, end in sorted(ranges):
        if begin != at:
            fail(f"{path}: tensors are not back to back at data byte {at}")
        at = end
    if at != len(body):
        fail(f"{path}: tensors end at data byte {at} but the data has {len(body)} bytes")
    return {"metadata": metadata, "tensors": tensors}


def llama_shapes(config):
    """The tensors of transformers' LlamaForCausalLM for this config.json: name -> shape."""
    c, v, i = config["hidden_size"], config["vocab_size"], config["intermediate_size"]
    h, hk = config["num_attention_heads"], config["num_key_value_heads"]
    d = config.get("head_dim") or c // h
    shapes = {"model.embed_tokens.weight": [v, c], "model.norm.weight": [c]}
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes.update({
            p + "input_layernorm.weight": [c],
            p + "self_attn.q_proj.weight": [h * d, c],
            p + "self_attn.k_proj.weight": [hk * d, c],
            p + "self_attn.v_proj.weight": [hk * d, c],
            p + "self_attn.o_proj.weight": [c, h * d],
            p + "post_attention_layernorm.weight": [c],
            p + "mlp.gate_proj.weight": [i, c],
            p + "mlp.up_proj.weight": [i, c],
            p + "mlp.down_proj.weight": [c, i],
        })
    if not config["tie_word_embeddings"]:
        shapes["lm_head.weight"] = [v, c]
    return shapes


def main():
    if len(sys.argv) != 2:
        fail("usage: read_safetensors.py CHECKPOINT_DIR")
    directory = sys.argv[1]
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    if config.get("model_type") != "llama" or config.get("architectures") != ["LlamaForCausalLM"]:
        fail("config.json is not a LlamaForCausalLM config")
    out = {name: read_safetensors(os.path.join(directory, name)) for name in ("model.safetensors", "optimizer.safetensors")}

    expected = llama_shapes(config)
    model = out["model.safetensors"]["tensors"]
    got = {name: t["shape"] for name, t in model.items()}
    if got != expected:
        fail(f"model.safetensors: missing {sorted(set(expected) - set(got))}, unexpected {sorted(set(got) - set(expected))}, "
             f"other shapes {sorted(k for k in got if k in expected and got[k] != expected[k])}")
    if any(t["dtype"] != "F32" for t in model.values()):
        fail("model.safetensors: not every tensor is F32")
    optimizer = out["optimizer.safetensors"]["tensors"]
    want = {f"{name}.{moment}": shape for name, shape in expected.items() for moment in ("exp_avg", "exp_avg_sq")}
    want["step"] = []
    if {name: t["shape"] for name, t in optimizer.items()} != want or optimizer["step"]["dtype"] != "I64":
        fail("optimizer.safetensors does not hold exp_avg and exp_avg_sq of every weight and an I64 scalar step")
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
