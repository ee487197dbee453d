#!/usr/bin/env bash
# Set up, build, and run the default training job (configs/default.yaml); extra arguments pass through.
#   ./launch/train.sh --set train.steps=50
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/launch/setup.sh"
cd "$root"
exec "$root/build/trainer/ringtrain" train --config "$root/configs/default.yaml" "$@"
