#!/usr/bin/env python3
"""TensorBoard's own reader reads ringtrain's event files: the scalars equal metrics.jsonl.

A manual check (tensorboard is not a ringtrain dependency): with the benchmark venv,
    .venv-bench/bin/pip install tensorboard
    .venv-bench/bin/python bench/peer/tensorboard_read_check.py --ringtrain build/trainer/ringtrain
trains the tiny config for 12 steps, loads the run directory with tensorboard's EventAccumulator, and requires
train/loss, train/lr and train/grad_norm at every logged step to equal the values in metrics.jsonl (to float32).
A ctest (tensorboard_read, label hf) runs this where .venv-bench has tensorboard, and skips otherwise.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ringtrain", required=True)
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory() as run:
        subprocess.run([args.ringtrain, "train", "--config", os.path.join(root, "configs", "tiny.yaml"), "--set",
                        "train.steps=12", "--set", "log.every=3", "--set", "log.dir=" + run],
                       check=True, stdout=subprocess.DEVNULL)
        records = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
        acc = EventAccumulator(run)
        acc.Reload()
        tags = acc.Tags()["scalars"]
        failed = False
        for key, tag in [("loss", "train/loss"), ("lr", "train/lr"), ("grad_norm", "train/grad_norm")]:
            if tag not in tags:
                print(f"missing tag {tag}; tags: {tags}")
                failed = True
                continue
            events = {e.step: e.value for e in acc.Scalars(tag)}
            for r in records:
                got, want = events.get(r["step"]), r[key]
                if got is None or abs(got - want) > 1e-6 * max(1.0, abs(want)):
                    print(f"{tag} step {r['step']}: tensorboard read {got}, metrics.jsonl has {want}")
                    failed = True
        print(f"{len(records)} steps, tags {sorted(tags)}: {'all equal' if not failed else 'MISMATCH'}")
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
