#!/usr/bin/env python3
"""Writes a bundle's tests.list (launch/bundle.sh): every ctest test of a build tree whose programs the bundle holds,
one per line, tab-separated: name, timeout (s), environment (KEY=VALUE,... or -), skip exit code (or -), then the
command, with the build's paths replaced by the bundle's (@B@ stands for the bundle's directory; run-tests.sh fills
it in). Left out: the cluster, slurm, hf and bundle labels (they need network namespaces, Slurm's daemons, PyTorch
or the repository's scripts) and the CUDA emulator's suites (simt*, Simt*; the CUDA suites themselves are in)."""
import argparse
import json
import os
import subprocess
import sys

LEFT_OUT_LABELS = {"cluster", "slurm", "hf", "bundle"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--stage", required=True)
    args = parser.parse_args()
    listing = subprocess.run(["ctest", "--show-only=json-v1"], cwd=args.build, check=True, capture_output=True,
                             text=True).stdout
    mpiexec = None
    cache = os.path.join(args.build, "CMakeCache.txt")
    for line in open(cache):
        if line.startswith("MPIEXEC_EXECUTABLE:"):
            mpiexec = line.split("=", 1)[1].strip()
    for test in json.loads(listing)["tests"]:
        props = {p["name"]: p["value"] for p in test.get("properties", [])}
        if LEFT_OUT_LABELS & set(props.get("LABELS", [])) or test["name"].lower().startswith("simt"):
            continue
        command = []
        for arg in test.get("command", []):
            if arg == mpiexec:
                arg = "@B@/bin/mpirun"
            elif arg.startswith(args.build + "/"):
                name = os.path.basename(arg)
                place = "bench" if arg.startswith(args.build + "/bench/") else "tests"
                if not os.path.exists(os.path.join(args.stage, place, name)):
                    command = None
                    break
                arg = "@B@/%s/%s" % (place, name)
            elif arg.startswith(args.source + "/"):
                rel = os.path.relpath(arg, args.source)
                if not os.path.exists(os.path.join(args.stage, "share/ringtrain", rel)):
                    command = None
                    break
                arg = "@B@/share/ringtrain/" + rel
            if "\t" in arg or "\n" in arg or arg == "":
                sys.exit("test_list.py: test %s has an argument the list cannot hold: %r" % (test["name"], arg))
            command.append(arg)
        if not command:
            print("test_list.py: %s left out: its command uses what the bundle lacks" % test["name"], file=sys.stderr)
            continue
        env = props.get("ENVIRONMENT", [])
        skip = props.get("SKIP_RETURN_CODE")
        fields = [test["name"], str(int(props.get("TIMEOUT", 600))), ",".join(env) if env else "-",
                  str(skip) if skip is not None else "-"] + command
        print("\t".join(fields))


if __name__ == "__main__":
    main()
