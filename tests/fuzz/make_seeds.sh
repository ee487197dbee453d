#!/usr/bin/env bash
# Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) from real files: a checkpoint and TensorBoard
# events of a real 2-step `ringtrain train` of tests/fuzz/fuzz_model.yaml, the repository's configs and cluster
# files, an llm.c shard as llm.c's own writer lays it out, hostfiles as launch/cluster.sh writes them.
#   tests/fuzz/make_seeds.sh [BUILD_DIR]   (default build/; its ringtrain trains the checkpoint)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
ringtrain="$build/trainer/ringtrain"
[ -x "$ringtrain" ] || { echo "make_seeds.sh: error: $ringtrain is not built; build it or give BUILD_DIR" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$ringtrain" train --config "$root/tests/fuzz/fuzz_model.yaml" --set "log.dir=$work/run" > "$work/train.log" 2>&1 ||
  { cat "$work/train.log" >&2; exit 1; }
python3 - "$root" "$work" <<'PY'
import glob, os, random, shutil, struct, sys
root, work = sys.argv[1], sys.argv[2]
corpus = os.path.join(root, "tests/fuzz/corpus")
shutil.rmtree(corpus, ignore_errors=True)
def put(target, name, data):
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)
def read(path):
    with open(path, "rb") as f:
        return f.read()

ckpt = sorted(glob.glob(os.path.join(work, "run/checkpoints/step_*")))[-1]
files = [read(os.path.join(ckpt, n)) for n in ("manifest.pb", "model.safetensors", "optimizer.safetensors", "config.json")]
for n in ("model", "optimizer"):
    put("safetensors", n + ".safetensors", read(os.path.join(ckpt, n + ".safetensors")))
put("manifest", "manifest.pb", b"\0" + files[0])
put("manifest", "manifest-body", b"\1" + files[0][:-9])  # the target appends the checksum
packed = b"".join(struct.pack("<I", len(f)) + f for f in files)
put("checkpoint", "step_00000002", b"\0" + packed)
put("checkpoint", "step_00000002-fix-checksums", b"\1" + packed)

for path in sorted(glob.glob(os.path.join(root, "configs/*.yaml"))):
    put("config", os.path.basename(path), read(path))
put("config", "tiny-with-overrides", read(os.path.join(root, "configs/tiny.yaml")) +
    b"\0train.steps=5\nparallel.sharding=contiguous\ntrain.stages=[{steps: 2, seq_len: 32}, {steps: 3, seq_len: 64}]\n")
for path in sorted(glob.glob(os.path.join(root, "configs/clusters/*.yaml"))):
    put("cluster", os.path.basename(path), read(path))

# llm.c's data_common.write_datafile: 256 int32 (magic 20240520, version 1, count), then uint16 tokens.
rng = random.Random(1)
for count in (0, 257):
    header = struct.pack("<256i", 20240520, 1, count, *([0] * 253))
    put("shard", "shard_%d.bin" % count, header + struct.pack("<%dH" % count, *[rng.randrange(50257) for _ in range(count)]))

put("hostfile", "local_cluster", b"rtcluster-node0 slots=2\nrtcluster-node1 slots=2\n")
put("hostfile", "commented", b"# two nodes\nnode-a.example slots=8 max_slots=16  # the first\n\n10.0.0.2 slots=4\n")

events = read(sorted(glob.glob(os.path.join(work, "run/events.out.tfevents.*")))[-1])
put("tensorboard", "events.out.tfevents", b"\0" + events)
payloads, at = b"", 0
while at < len(events):  # TFRecord: u64 length, u32 crc, data, u32 crc
    (n,) = struct.unpack_from("<Q", events, at)
    payloads += struct.pack("<H", n) + events[at + 12:at + 12 + n]
    at += 16 + n
put("tensorboard", "events-payloads", b"\1" + payloads)
PY
du -sh "$root/tests/fuzz/corpus"/* | sed "s|$root/||"
