#!/usr/bin/env bash
# ctest `bundle` (label bundle): launch/bundle.sh's archive of this build, unpacked inside a minimal Debian root made
# by debootstrap (no -dev packages, no Open MPI, no oneDNN), trains on 1 rank and on 2 under the bundled mpirun and
# passes its own test runner (in_root.sh says what runs there).
#   bundle_test.sh BUILD_DIR       Environment: RINGTRAIN_ROOTFS_CACHE (where the root is kept between runs; default
#                                  ~/.cache/ringtrain), RINGTRAIN_BUNDLE_TESTS (run-tests.sh's REGEX; "all" for every
#                                  test, default a subset that starts each kind of test program)
# The root is made once (about a minute, from the registry apt uses) and then only read: everything runs in a mount
# namespace of its own, with the root mounted read-only, tmpfs over /tmp, /root and /opt, and this machine's CUDA
# toolkit at /usr/local/cuda as GPU machines have it; the mounts vanish with the namespace, and a PID namespace ends
# every process the test started. Exit 77 (skipped, with the reason) where no root can be made: not root, no
# debootstrap, no registry.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="$(cd "$here/../.." && pwd)"
build="$(cd "${1:?usage: bundle_test.sh BUILD_DIR}" && pwd)"
skip() { echo "[  SKIPPED ] bundle: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (a chroot and mounts)"
for tool in debootstrap unshare chroot flock; do command -v "$tool" >/dev/null || skip "no $tool (launch/setup.sh installs it)"; done

cache="${RINGTRAIN_ROOTFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ringtrain}"
rootfs="$cache/debian-bookworm-minbase"
mkdir -p "$cache"
if [ ! -f "$rootfs/.complete" ]; then
  exec 9>"$cache/rootfs.lock"
  flock 9
  if [ ! -f "$rootfs/.complete" ]; then
    mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
    rm -rf "$rootfs.part"
    echo "bundle: making a minimal Debian 12 root in $rootfs (debootstrap --variant=minbase, ${mirror:-http://deb.debian.org/debian})"
    if ! timeout 900 debootstrap --variant=minbase bookworm "$rootfs.part" "${mirror:-http://deb.debian.org/debian}" \
      > "$cache/debootstrap.log" 2>&1; then
      rm -rf "$rootfs.part"
      skip "debootstrap could not make a Debian root (no package registry?): $(tail -1 "$cache/debootstrap.log")"
    fi
    mkdir -p "$rootfs.part/usr/local/cuda"
    touch "$rootfs.part/.complete"
    mv "$rootfs.part" "$rootfs"
  fi
  exec 9>&-
fi

# The root is what the bundle claims to need and no more.
for lib in libmpi.so.40 libdnnl.so.2 libyaml-cpp.so.0.7 libprotobuf.so.32 libpmix.so.2 libgomp.so.1; do
  if [ -n "$(find "$rootfs/usr/lib" "$rootfs/lib" -name "$lib" 2>/dev/null | head -1)" ]; then
    echo "FAIL: the root at $rootfs is not minimal: it has $lib (remove it to have it made again)"; exit 1
  fi
done
dev_packages="$(chroot "$rootfs" dpkg-query -W -f '${Package}\n' | grep -- '-dev$' || true)"
[ -z "$dev_packages" ] || { echo "FAIL: the root has -dev packages: $dev_packages"; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$source_dir/launch/bundle.sh" --build "$build" --out "$work/ringtrain.tar.gz" | tail -3
cp "$here/in_root.sh" "$work/"

cuda="$(readlink -f /usr/local/cuda 2>/dev/null || true)"
timeout -k 10 1500 unshare --mount --pid --fork --kill-child -- bash -c '
  set -e
  rootfs="$1" work="$2" cuda="$3" tests="$4"
  mount --make-rprivate /
  mount --bind "$rootfs" "$rootfs"
  mount -o remount,bind,ro "$rootfs"
  mount -t proc proc "$rootfs/proc"
  mount --rbind /sys "$rootfs/sys"
  mount --rbind /dev "$rootfs/dev"
  mount -t tmpfs tmpfs "$rootfs/dev/shm"
  for d in tmp root opt; do mount -t tmpfs -o size=8g tmpfs "$rootfs/$d"; done
  [ -z "$cuda" ] || [ ! -d "$cuda" ] || mount --bind -o ro "$cuda" "$rootfs/usr/local/cuda"
  mkdir -p "$rootfs/tmp/in"
  cp "$work/ringtrain.tar.gz" "$work/in_root.sh" "$rootfs/tmp/in/"
  exec chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp \
    RINGTRAIN_BUNDLE_TESTS="$tests" /bin/bash /tmp/in/in_root.sh /tmp/in/ringtrain.tar.gz
' bundle_root "$rootfs" "$work" "$cuda" "${RINGTRAIN_BUNDLE_TESTS:-}"
