#!/bin/bash
# Runs inside the minimal Debian root of bundle_test.sh: unpacks the bundle with the root's own tar, then trains
# configs/tiny.yaml on 1 rank and on 2 (parallel.cp=2, under the bundle's mpirun), checks that both checkpoints
# verify and that the two runs reach the same loss, and runs the bundle's test runner over RINGTRAIN_BUNDLE_TESTS.
#   in_root.sh ARCHIVE
set -euo pipefail
archive="$1"
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p /opt/unpacked
tar -C /opt/unpacked -xzf "$archive"
bundle="$(echo /opt/unpacked/ringtrain-*)"
[ -x "$bundle/bin/ringtrain" ] || fail "the archive has no ringtrain-*/bin/ringtrain"
head -3 "$bundle/MANIFEST.txt"
tiny="$bundle/share/ringtrain/configs/tiny.yaml"
args=(train --config "$tiny" --set train.steps=6 --set log.every=1 --set checkpoint.every=6)

last_loss() { sed -n 's/.*"loss":\([0-9.eE+-]*\).*/\1/p' "$1/metrics.jsonl" | tail -1; }
t0=$SECONDS
timeout 300 "$bundle/bin/ringtrain" "${args[@]}" --set log.dir=/tmp/one > /tmp/one.log 2>&1 \
  || { tail -20 /tmp/one.log; fail "ringtrain train on 1 rank"; }
echo "1 rank: $(grep -m1 'ringtrain' /tmp/one.log | cut -c1-150) ... loss $(last_loss /tmp/one) ($((SECONDS - t0)) s)"
t0=$SECONDS
timeout 300 "$bundle/bin/mpirun" -n 2 --oversubscribe --allow-run-as-root --bind-to none \
  "$bundle/bin/ringtrain" "${args[@]}" --set parallel.cp=2 --set log.dir=/tmp/two > /tmp/two.log 2>&1 \
  || { tail -20 /tmp/two.log; fail "ringtrain train on 2 ranks under the bundle's mpirun"; }
echo "2 ranks (cp 2): loss $(last_loss /tmp/two) ($((SECONDS - t0)) s)"
for run in one two; do
  "$bundle/bin/ringtrain" inspect "/tmp/$run/checkpoints" > "/tmp/$run.inspect" 2>&1 \
    || { cat "/tmp/$run.inspect"; fail "the checkpoint of the $run-rank run does not verify"; }
done
awk -v a="$(last_loss /tmp/one)" -v b="$(last_loss /tmp/two)" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-4 * a) }' \
  || fail "1 rank and 2 ranks end at different losses: $(last_loss /tmp/one) and $(last_loss /tmp/two)"

# A subset that starts every kind of test program: MPI suites under the bundle's mpirun, the CLI, checkpoints, the
# planner, the fuzzers' replay, the rank-failure and watchdog programs, and the CUDA suites (which skip here).
subset='^(communicator_np2|ring_attention_np2|gradient_reducer_np2|model_parallel_np2|Backend/OpsTest\.|AttentionTest\.|attention_test_bf16_no_bf16_instructions|CheckpointTest\.|Targets/FuzzReplay\.|RankFailure\.|MpiWatchdog\.|ClusterFile\.|Config\.|PlanCli\.|Cli\.(Help|MissingConfigFile|TensorBoardEventsEvalEveryAndPlot|DeviceCuda)|CheckpointCli\.(InspectPrintsAndVerifies|ResumeOnAnotherRankCount|IndependentReader)|CudaAttentionTest\.|CudaModel\.|nccl_ring_np1)'
tests="${RINGTRAIN_BUNDLE_TESTS:-$subset}"
[ "$tests" != all ] || tests=""
"$bundle/run-tests.sh" "$tests" | tee /tmp/run-tests.log | grep -v '^passed\|^skipped' || true
tail -1 /tmp/run-tests.log | grep -q ' 0 failed' || fail "the bundle's run-tests.sh: $(tail -1 /tmp/run-tests.log)"
grep -q '^[1-9][0-9]* passed' <<<"$(tail -1 /tmp/run-tests.log)" || fail "run-tests.sh passed nothing"
echo "PASS: the bundle trains on 1 and 2 ranks and passes run-tests.sh ($(tail -1 /tmp/run-tests.log)) in a minimal Debian root"
