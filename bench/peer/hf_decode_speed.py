#!/usr/bin/env python3
"""transformers' greedy decoding speed on a ringtrain checkpoint, on the CPU (the peer of `ringtrain sample`).

    .venv-bench/bin/python bench/peer/hf_decode_speed.py CHECKPOINT PROMPT_FILE NEW_TOKENS [THREADS]
Loads the checkpoint with LlamaForCausalLM (fp32, SDPA attention), prefills the prompt once (use_cache=True), then
times NEW_TOKENS greedy decode steps, each one forward of the new token against the DynamicCache, exactly the loop
generate(do_sample=False) runs (timing generate itself would bury the decode steps under the much longer prefill).
Prints "hf_decode context=<prompt tokens> decode_tok_s=... prefill_s=...", the best of 2 decode runs.
"""
import copy
import sys
import time

import torch
from transformers import LlamaForCausalLM


def main():
    ckpt, prompt_file, new = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    model = LlamaForCausalLM.from_pretrained(ckpt, torch_dtype=torch.float32, attn_implementation="sdpa").eval()
    ids = torch.tensor([list(open(prompt_file, "rb").read())])

    with torch.no_grad():
        start = time.perf_counter()
        out = model(ids, use_cache=True)
        prefill = time.perf_counter() - start
        best = float("inf")
        for _ in range(2):
            cache = copy.deepcopy(out.past_key_values)
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            start = time.perf_counter()
            for _ in range(new):
                step = model(token, past_key_values=cache, use_cache=True)
                cache = step.past_key_values
                token = step.logits[:, -1].argmax(-1, keepdim=True)
            best = min(best, time.perf_counter() - start)
    print(f"hf_decode context={ids.shape[1]} decode_tok_s={new / best:.1f} prefill_s={prefill:.3f}")


if __name__ == "__main__":
    main()
