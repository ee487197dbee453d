#!/usr/bin/env bash
# Set up, build, and run the whole test suite with ctest (what CI runs). Extra arguments go to ctest.
# The sanitizer suites and the fuzzers run apart: launch/sanitizers.sh address|thread, launch/fuzz.sh [SECONDS].
# The set-up includes Slurm and munge (setup.sh --with-slurm): CI runs the slurm label too.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/launch/setup.sh" --with-slurm
cd "$root/build"
exec ctest --output-on-failure --timeout 600 "$@"
