#!/usr/bin/env bash
# Set-up shared by train.sh and test.sh: install missing Debian packages, then configure and build build/.
# Sourced or run; a second run is incremental. Extra CMake options: RINGTRAIN_CMAKE_ARGS="-D..."
#   --with-slurm (or RINGTRAIN_WITH_SLURM=1)  also Slurm and munge, for launch/slurm_local.sh and the slurm tests
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

with_slurm="${RINGTRAIN_WITH_SLURM:-0}"
for arg in "$@"; do
  case "$arg" in
    --with-slurm) with_slurm=1 ;;
    *) echo "setup.sh: error: unknown option '$arg'; valid: --with-slurm" >&2; exit 2 ;;
  esac
done

packages=(cmake ninja-build g++ pkg-config openmpi-bin libopenmpi-dev libyaml-cpp-dev libgtest-dev libgmock-dev
          libbenchmark-dev libdnnl-dev nlohmann-json3-dev libcli11-dev libxxhash-dev libprotobuf-dev protobuf-compiler
          python3 iproute2 libcairo2-dev fonts-dejavu-core libisal-dev
          clang libclang-rt-dev libomp-dev  # clang, libFuzzer and clang's OpenMP: launch/fuzz.sh
          patchelf debootstrap)  # launch/bundle.sh, and the minimal Debian root its test runs it in
slurm_packages=(slurm-wlm munge)
if [ "$with_slurm" = 1 ]; then packages+=("${slurm_packages[@]}"); fi
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
    # Slurm's and munge's package scripts would start slurmctld, slurmd and munged as system services (with the
    # system's configuration, which a fresh machine lacks); launch/slurm_local.sh starts its own. A policy-rc.d that
    # refuses service starts keeps them stopped during the install.
    policy=""
    if [[ " ${missing[*]} " == *" slurm-wlm "* || " ${missing[*]} " == *" munge "* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' > "$policy"
      chmod 755 "$policy"
      trap 'rm -f "$policy"' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    [ -z "$policy" ] || { rm -f "$policy"; trap - EXIT; }
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
