#!/usr/bin/env bash
# What CI runs: set up, build, and run the whole test suite with ctest; then the ASan + UBSan suite (every suite but
# the long learning runs below, launch/sanitizers.sh) and every fuzz target for 30 s (launch/fuzz.sh), in one clang
# build. Arguments narrow the run to the plain suite: they go to its ctest, and the sanitizer stages are skipped.
# ThreadSanitizer runs apart (launch/sanitizers.sh thread); docs/reliability.md says what each covers.
# The set-up includes Slurm and munge (setup.sh --with-slurm): CI runs the slurm label too.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/launch/setup.sh" --with-slurm
(cd "$root/build" && ctest --output-on-failure --timeout 600 "$@")
[ "$#" -eq 0 ] || exit 0

# Left out under ASan, to keep CI within its time: four learning runs (1-2 min each there; they test a loss falling
# over hundreds of steps, not new code paths, and the short tests reach the same kernels, model and trainer: the
# retrieval grid's 200 copy steps make a model worth sampling from, and Cli.EvalAndSampleFromACheckpoint runs eval and
# sample under ASan), ring attention on 8 ranks (8 processes on 2 cores; the 2-, 3- and 4-rank runs take the same
# code paths), and calibrate-then-validate (110 s under ASan: five timed training runs measuring ASan's speed; the
# plan, cluster-file and metrics code it reads runs under ASan in the planner's other tests). The plain suite above
# runs all of them.
long='^(ModelBf16\.CopyTaskLearnsLikeFp32|ModelTraining\.CopyTaskLongRangeLossFalls|ModelTraining\.OverfitsOneBatch|Cli\.RetrievalGridAndSamplingThroughTheRing|ring_attention_np8|PlanCli\.CalibrateThenValidate)$'
"$root/launch/sanitizers.sh" address -j "$(nproc)" -E "$long"
"$root/launch/fuzz.sh" 30
