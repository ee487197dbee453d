#!/usr/bin/env bash
# Set-up shared by train.sh and test.sh: install missing Debian packages, then configure and build build/.
# Sourced or run; a second run is incremental. Extra CMake options: RINGTRAIN_CMAKE_ARGS="-D..."
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(cmake ninja-build g++ pkg-config openmpi-bin libopenmpi-dev libyaml-cpp-dev libgtest-dev libgmock-dev
          libbenchmark-dev libdnnl-dev nlohmann-json3-dev libcli11-dev libxxhash-dev libprotobuf-dev protobuf-compiler
          python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ringtrain setup: missing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    echo "ringtrain setup: installing them with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "ringtrain setup: not root; run this, then try again:"
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
fi

jobs="$(nproc)"
if [ ! -f "$root/build/build.ninja" ]; then
  # shellcheck disable=SC2086
  cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${RINGTRAIN_CMAKE_ARGS:-}
fi
cmake --build "$root/build" -j "$jobs"
