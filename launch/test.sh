#!/usr/bin/env bash
# Set up, build, and run the whole test suite with ctest, then the same code under the sanitizers and the fuzzers
# (what CI runs; docs/reliability.md). With arguments, only the plain suite runs and they go to ctest (-R, -L, ...).
# The set-up includes Slurm and munge (setup.sh --with-slurm): CI runs the slurm label too.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/launch/setup.sh" --with-slurm
(cd "$root/build" && ctest --output-on-failure --timeout 600 "$@")
[ $# -eq 0 ] || exit 0
echo "== AddressSanitizer + UBSan (launch/sanitizers.sh address)"
"$root/launch/sanitizers.sh" address
echo "== ThreadSanitizer (launch/sanitizers.sh thread)"
"$root/launch/sanitizers.sh" thread
echo "== fuzzers, ${RINGTRAIN_FUZZ_SECONDS:-30} s each (launch/fuzz.sh)"
"$root/launch/fuzz.sh" "${RINGTRAIN_FUZZ_SECONDS:-30}"
