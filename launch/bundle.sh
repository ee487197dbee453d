#!/usr/bin/env bash
# Writes a relocatable archive of ringtrain for machines without the Debian packages it links (GPU machines with only
# a CUDA toolkit, clusters without root): the programs, every shared library that is not the C/C++ runtime, Open
# MPI's runtime with its launchers, and a test runner. docs/bundle.md says what it holds and how to use it.
#   launch/bundle.sh [--build DIR] [--out FILE.tar.gz]
#     --build DIR   package this build tree as it is (default: build/, built first by launch/setup.sh; it has the GPU
#                   path for sm_80 and sm_90 when nvcc exists)
#     --out FILE    default build-bundle/ringtrain-<git describe>-linux-<arch>.tar.gz
# Layout (RINGTRAIN_BUNDLE below is wherever it was unpacked):
#   bin/       ringtrain, mpirun/mpiexec, orted: wrappers that source env.sh, then run the program in libexec/
#   libexec/   the programs themselves (RUNPATH $ORIGIN/../lib)
#   tests/     the test programs; run-tests.sh runs them (tests.list: each test's command, as ctest has it)
#   bench/     the benchmark programs, gpu_all.sh and the PyTorch peers
#   lib/       the libraries; lib/openmpi/ and lib/pmix/ hold Open MPI's and PMIx's components
#   share/     Open MPI's and PMIx's help texts; share/ringtrain/ the configs and test inputs
#   etc/       Open MPI's MCA parameters
# Left out and taken from the machine: glibc, libgcc_s and libstdc++ (MANIFEST.txt gives the versions needed), and
# CUDA's own libraries (libcudart, cuBLAS, NCCL: hundreds of MiB; env.sh finds them in the CUDA toolkit or in
# PyTorch's nvidia-* packages). Open MPI's RDMA transports (UCX, OFI, verbs, PSM) and OpenSHMEM are left out with
# the libraries they need: the bundle's MPI speaks shared memory and TCP; GPUs talk over NCCL, which finds
# InfiniBand on its own.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "bundle.sh: error: $*" >&2; exit 2; }

build="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) [ $# -ge 2 ] || die "--build needs a directory"; build="$(cd "$2" && pwd)" || die "no build directory '$2'"; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a file name ending in .tar.gz"; out="$2"; shift 2 ;;
    *) die "unknown argument '$1'; valid: --build DIR, --out FILE.tar.gz" ;;
  esac
done
[ -z "$out" ] || [[ "$out" == *.tar.gz ]] || die "--out must end in .tar.gz, not '$out'"
if [ -z "$build" ]; then
  "$root/launch/setup.sh" >/dev/null
  build="$root/build"
fi
[ -x "$build/trainer/ringtrain" ] || die "$build has no trainer/ringtrain; build it first (launch/setup.sh)"
for tool in patchelf ompi_info objdump python3; do
  command -v "$tool" >/dev/null || die "$tool is missing; launch/setup.sh installs it"
done

name="ringtrain-$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)-linux-$(uname -m)"
out="${out:-$root/build-bundle/$name.tar.gz}"
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
stage="$scratch/$name"
mkdir -p "$stage"/{bin,libexec,lib/openmpi,lib/pmix,tests,bench/peer,share/ringtrain/tests,etc}

is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = "177ELF" ]; }

# Programs. Open MPI's launcher and daemon come from where this machine's mpirun lives.
cp "$build/trainer/ringtrain" "$stage/libexec/"
ompi_bin="$(dirname "$(readlink -f "$(command -v orted)")")"
cp "$(readlink -f "$(command -v mpirun)")" "$stage/libexec/orterun"
cp "$ompi_bin/orted" "$stage/libexec/orted"
while IFS= read -r f; do
  is_elf "$f" || continue
  [ ! -e "$stage/tests/$(basename "$f")" ] || die "two test programs are named $(basename "$f"); tests/ holds one"
  cp "$f" "$stage/tests/"
done < <(find "$build/tests" -path "$build/tests/cuda_emulation" -prune -o -type f -perm -u+x -print)
while IFS= read -r f; do
  is_elf "$f" && cp "$f" "$stage/bench/"
done < <(find "$build/bench" -maxdepth 1 -type f -perm -u+x)
cp "$root/bench/gpu_all.sh" "$stage/bench/"
cp "$root"/bench/peer/*.py "$stage/bench/peer/"
[ ! -f "$root/../shared/bench/torch_llama_ref.py" ] || cp "$root/../shared/bench/torch_llama_ref.py" "$stage/bench/peer/"

# Data the programs and tests read: configs, the fuzzers' seeds and regressions, the independent checkpoint reader.
cp -r "$root/configs" "$stage/share/ringtrain/"
mkdir -p "$stage/share/ringtrain/tests/fuzz" "$stage/share/ringtrain/tests/checkpoints"
cp -r "$root/tests/fuzz/corpus" "$root/tests/fuzz/regressions" "$root/tests/fuzz/fuzz_model.yaml" \
  "$stage/share/ringtrain/tests/fuzz/"
cp "$root/tests/checkpoints/read_safetensors.py" "$stage/share/ringtrain/tests/checkpoints/"
# The launcher that places cp rings inside nodes (plan --validate uses it too), with the local cluster it can use.
mkdir -p "$stage/share/ringtrain/launch"
cp "$root/launch/run.sh" "$root/launch/cluster.sh" "$stage/share/ringtrain/launch/"

# Open MPI's components (all but the RDMA transports and OpenSHMEM, whose libraries are not bundled), help texts and
# parameters; PMIx's components and help texts, found beside libpmix.
ompi_path() { ompi_info --path "$1" --parsable | sed -n "s/^path:$1://p"; }
rdma='lib(ibverbs|fabric|uc[pstm]|psm|psm2|psm_infinipath|rdmacm|efa|infinipath|oshmem)\.so'
for f in "$(ompi_path pkglibdir)"/mca_*.so; do
  if ! ldd "$f" | grep -qE "$rdma|libmca_common_(ucx|verbs|ofi)"; then cp "$f" "$stage/lib/openmpi/"; fi
done
cp -r "$(ompi_path pkgdatadir)" "$stage/share/openmpi"
cp "$(ompi_path sysconfdir)/openmpi-mca-params.conf" "$stage/etc/"
pmix_lib="$(dirname "$(readlink -f "$(ldd "$stage/lib/openmpi/mca_pmix_ext3x.so" | awk '$1 ~ /^libpmix/ {print $3}')")")"
[ -d "$pmix_lib/pmix" ] || die "no PMIx components beside $pmix_lib/libpmix.so"
cp "$pmix_lib"/pmix/*.so "$stage/lib/pmix/"
[ ! -d "$pmix_lib/../share/pmix" ] || cp -r "$pmix_lib/../share/pmix" "$stage/share/pmix"

# Libraries: the closure of what every program and component loads, but the C/C++ runtime (glibc's libraries,
# libgcc_s, libstdc++), which every Linux has and which must match its own loader, and CUDA's libraries.
elfs() { find "$stage/libexec" "$stage/tests" "$stage/bench" "$stage/lib" -type f | while read -r f; do is_elf "$f" && echo "$f"; done; }
runtime='/(ld-linux[^/]*|lib(c|m|dl|pthread|rt|util|resolv|anl|mvec|gcc_s|stdc\+\+)\.so[^/]*)$'
cuda='^lib(cuda|cudart|cublas|cublasLt|nccl|nvidia-ml|nvrtc)\.so'
: > "$scratch/cuda_needed"
for pass in 1 2 3 4 5 6; do
  elfs | while read -r f; do ldd "$f" | awk -v who="$(basename "$f")" '/=>/ {print who, $1, $3}'; done \
    | sort -u -k2,2 > "$scratch/deps"
  added=0
  while read -r who soname path; do
    if [[ "$soname" =~ $cuda ]] || [[ "$path" == /usr/local/cuda* ]]; then echo "$soname" >> "$scratch/cuda_needed"; continue; fi
    [ "$path" != "not" ] || die "$who needs $soname, which this machine lacks"
    [[ "$path" =~ $runtime ]] && continue
    [ -e "$stage/lib/$soname" ] && continue
    cp -L "$path" "$stage/lib/$soname"
    added=1
  done < "$scratch/deps"
  [ "$added" = 1 ] || break
done

# RUNPATH: programs look in ../lib, libraries beside themselves, components in their parent; CUDA's usual homes come
# last (LD_LIBRARY_PATH, set by env.sh, comes before RUNPATH).
for f in "$stage"/libexec/* "$stage"/tests/* "$stage"/bench/*; do
  is_elf "$f" && patchelf --set-rpath '$ORIGIN/../lib' "$f"
done
for f in "$stage"/lib/*.so*; do patchelf --set-rpath '$ORIGIN' "$f"; done
for f in "$stage"/lib/openmpi/*.so "$stage"/lib/pmix/*.so; do patchelf --set-rpath '$ORIGIN/..' "$f"; done

# The environment, the wrappers and the test runner.
cp "$root/launch/bundle/env.sh" "$root/launch/bundle/run-tests.sh" "$stage/"
cp "$root/launch/bundle/wrapper.sh" "$stage/bin/ringtrain"
cp "$root/launch/bundle/wrapper.sh" "$stage/bin/mpirun"
cp "$root/launch/bundle/wrapper.sh" "$stage/bin/orted"
ln -s mpirun "$stage/bin/mpiexec"
chmod 755 "$stage"/bin/* "$stage/run-tests.sh"
python3 "$root/launch/bundle/test_list.py" --build "$build" --source "$root" --stage "$stage" > "$stage/tests.list"

# What it holds and needs.
glibc="$(elfs | xargs objdump -T 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
glibcxx="$(elfs | xargs objdump -T 2>/dev/null | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)"
cuda_libs="$(sort -u "$scratch/cuda_needed" | tr '\n' ' ')"
{
  echo "$name, built $(date -u +%Y-%m-%dT%H:%MZ) on $(. /etc/os-release && echo "$PRETTY_NAME") from $build"
  echo "needs from the machine: Linux $(uname -m), glibc with $glibc, libstdc++ with $glibcxx, libgcc_s"
  echo "CUDA libraries taken from the machine (only for train.device=cuda and the CUDA tests): ${cuda_libs:-none}"
  echo "GPU architectures: $(grep -m1 '^CMAKE_CUDA_ARCHITECTURES:' "$build/CMakeCache.txt" 2>/dev/null | cut -d= -f2 || echo none)"
  echo "$(ompi_info --version 2>/dev/null | head -1), $(ls "$stage/lib/openmpi" | wc -l) components; tests: $(wc -l < "$stage/tests.list")"
  echo "sizes:"
  (cd "$stage" && du -sh bin libexec lib tests bench share | sed 's/^/  /')
} > "$stage/MANIFEST.txt"

tar -C "$scratch" -cf - "$name" | gzip -9 > "$out.part"
mv "$out.part" "$out"
size=$(stat -c %s "$out")
cat "$stage/MANIFEST.txt"
echo "bundle: $out, $(awk -v s="$size" 'BEGIN { printf "%.1f MiB", s / 1048576 }') compressed, $(du -sh "$stage" | cut -f1) unpacked"
limit=$((64 * 1048576))
[ "$size" -le "$limit" ] || { echo "bundle.sh: error: the archive is over 64 MiB; the largest files:" >&2; (cd "$stage" && find . -type f -printf '%s %p\n' | sort -rn | head -10) >&2; exit 1; }
