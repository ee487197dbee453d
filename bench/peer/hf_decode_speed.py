#!/usr/bin/env python3
"""transformers' greedy decoding speed on a ringtrain checkpoint, on the CPU (the peer of `ringtrain sample`).

    .venv-bench/bin/python bench/peer/hf_decode_speed.py CHECKPOINT PROMPT_FILE NEW_TOKENS [THREADS]
Loads the checkpoint with LlamaForCausalLM (fp32, SDPA attention), times generate(do_sample=False) for 1 new token
(the prefill) and for 1 + NEW_TOKENS tokens, and prints "hf_decode context=<prompt tokens> decode_tok_s=<NEW_TOKENS /
(t_all - t_prefill)> prefill_s=..."; the best of 2 runs of each.
"""
import sys
import time

import torch
from transformers import LlamaForCausalLM


def main():
    ckpt, prompt_file, new = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    model = LlamaForCausalLM.from_pretrained(ckpt, torch_dtype=torch.float32, attn_implementation="sdpa").eval()
    ids = torch.tensor([list(open(prompt_file, "rb").read())])

    def timed(n):
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            with torch.no_grad():
                out = model.generate(ids, do_sample=False, max_new_tokens=n, min_new_tokens=n, pad_token_id=0)
            best = min(best, time.perf_counter() - start)
            assert out.shape[1] == ids.shape[1] + n
        return best

    prefill = timed(1)
    total = timed(1 + new)
    print(f"hf_decode context={ids.shape[1]} decode_tok_s={new / (total - prefill):.1f} prefill_s={prefill:.3f}")


if __name__ == "__main__":
    main()
