#!/usr/bin/env bash
# Create <repo>/.venv-bench with a CPU-usable PyTorch 2.x from PyPI, for the peer
# benchmarks under bench/peer and shared/bench. PyTorch is a benchmark peer only,
# never a dependency of ringtrain itself.
#
# Idempotent: if the venv already imports torch and runs scaled_dot_product_attention
# on the CPU, the script does nothing.
#
# Lean install: PyPI's Linux x86_64 torch wheel declares several GB of nvidia-* / triton
# dependencies. None of them is used on the CPU, but libtorch_cuda.so is linked against
# some CUDA libraries, so `import torch` needs their .so files to resolve. The script
#   1. installs torch with --no-deps, plus its pure-Python requirements;
#   2. asks the dynamic loader (ldd -r on torch/_C*.so, and the import error) which
#      shared libraries or symbols are still missing, and installs only the nvidia
#      wheels that provide those (pinned to the versions torch declares); libraries
#      already on the system (e.g. a CUDA toolkit in ld.so.conf) are used as they are;
#   3. falls back to the full `pip install torch==<ver>` if that does not converge.
#
# Environment overrides:
#   TORCH_SPEC   pip requirement for torch (default: torch==2.15.0, the tested version)
#   PYTHON       interpreter used to create the venv (default: python3)
#   VENV_DIR     venv location (default: <repo>/.venv-bench)
# To change the torch version of an existing venv, delete the venv first.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
VENV_DIR="${VENV_DIR:-$REPO_ROOT/.venv-bench}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.15.0}"
VPY="$VENV_DIR/bin/python"
T0=$SECONDS

log() { echo "[setup_venv] $*"; }
die() { echo "[setup_venv] ERROR: $*" >&2; exit 1; }

# Smoke test: torch 2.x imports, SDPA forward+backward works on the CPU.
VERIFY_PY='
import sys
import numpy, torch, torch.nn.functional as F
assert int(torch.__version__.split(".")[0]) == 2, torch.__version__
q = torch.randn(1, 2, 64, 32, requires_grad=True)
F.scaled_dot_product_attention(q, q, q, is_causal=True).sum().backward()
assert q.grad is not None and torch.isfinite(q.grad).all()
print(torch.__version__)
'

verify() { [ -x "$VPY" ] && "$VPY" -c "$VERIFY_PY" >/dev/null 2>&1; }

pip_install() {
    log "pip install $*"
    "$VPY" -m pip install --disable-pip-version-check -q "$@"
}

summary() {
    log "torch $("$VPY" -c "$VERIFY_PY" 2>/dev/null) works on the CPU in $VENV_DIR"
    log "venv size: $(du -sh "$VENV_DIR" | cut -f1)"
    local nv
    nv="$("$VPY" -m pip list --disable-pip-version-check 2>/dev/null \
        | awk '/^(nvidia-|cuda-|triton)/ {printf "%s%s==%s", sep, $1, $2; sep=" "}')"
    log "CUDA-side wheels installed: ${nv:-none}"
    log "use: $VPY <script.py>"
}

log "repo root: $REPO_ROOT"
log "venv: $VENV_DIR"

if verify; then
    log "already set up, nothing to do"
    summary
    exit 0
fi

# 1. The venv itself.
if [ ! -x "$VPY" ] || ! "$VPY" -m pip --version >/dev/null 2>&1; then
    command -v "$PYTHON" >/dev/null || die "no $PYTHON on PATH (set PYTHON=...)"
    log "creating venv with $("$PYTHON" --version 2>&1) ($(command -v "$PYTHON"))"
    rm -rf "$VENV_DIR"
    if ! "$PYTHON" -m venv "$VENV_DIR"; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            log "python venv module unusable; installing python3-venv via apt"
            rm -rf "$VENV_DIR"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
            "$PYTHON" -m venv "$VENV_DIR" || die "cannot create venv"
        else
            die "cannot create venv (install python3-venv)"
        fi
    fi
else
    log "venv exists but fails the smoke test; completing the install"
fi

# 2. torch without its CUDA dependency tree, then its pure-Python requirements.
if ! "$VPY" -c 'import importlib.metadata as m; m.version("torch")' >/dev/null 2>&1; then
    pip_install --no-deps "$TORCH_SPEC"
fi
TORCH_VER="$("$VPY" -c 'import importlib.metadata as m; print(m.version("torch"))')"
log "torch wheel $TORCH_VER installed (no deps)"

mapfile -t PURE < <("$VPY" - <<'PY'
import re
from importlib.metadata import requires
for r in requires("torch") or []:
    name = re.match(r"\s*([A-Za-z0-9._-]+)", r).group(1).lower()
    if "extra ==" in r or re.match(r"(nvidia-|cuda-|triton|pytorch-triton)", name):
        continue
    print(r)
PY
)
# numpy is not a torch requirement, but without it torch warns at import, and parity
# scripts exchange arrays through it.
PURE+=("numpy")
log "(pip's 'dependency conflicts' about nvidia-*/cuda-*/triton below are expected: left out on purpose)"
pip_install "${PURE[@]}"

# 3. Add only the CUDA-side wheels the loader still needs.
# Prints lines "NODEPS <req>", "DEPS <req>" or "UNMAPPED <what>".
MISSING_PY='
import glob, os, re, subprocess, sys
from importlib.metadata import requires
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
import importlib.util
tdir = os.path.dirname(importlib.util.find_spec("torch").origin)
libs, syms = set(), set()
for so in glob.glob(os.path.join(tdir, "_C*.so")):
    out = subprocess.run(["ldd", "-r", so], capture_output=True, text=True).stdout
    libs |= set(re.findall(r"^\s*(\S+) => not found", out, re.M))
    syms |= set(re.findall(r"undefined symbol: (\S+)", out))
err = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True).stderr
libs |= set(re.findall(r"(lib[\w.+-]+\.so[\w.]*): cannot open shared object", err))
syms |= set(re.findall(r"undefined symbol: (\w+)", err))
syms = {s for s in syms if not re.match(r"_?_?Py", s)}  # resolved by the interpreter
# longest prefixes first
LIB = [("libcusparseLt", "cusparselt"), ("libcusparse", "cusparse"), ("libcublasLt", "cublas"),
       ("libcublas", "cublas"),
       ("libcudart", "cudart"), ("libcudnn", "cudnn"), ("libcufft", "cufft"), ("libcufile", "cufile"),
       ("libcusolver", "cusolver"), ("libcurand", "curand"), ("libnvrtc", "nvrtc"),
       ("libnvJitLink", "nvjitlink"), ("libcupti", "cupti"), ("libnccl", "nccl"),
       ("libnvshmem", "nvshmem"), ("libnvToolsExt", "nvtx")]
SYM = [("cusparseLt", "cusparselt"), ("cusparse", "cusparse"), ("cublas", "cublas"),
       ("cudnn", "cudnn"), ("cufft", "cufft"), ("cuFile", "cufile"), ("cusolver", "cusolver"),
       ("curand", "curand"), ("nvrtc", "nvrtc"), ("nvJitLink", "nvjitlink"), ("cupti", "cupti"),
       ("nccl", "nccl"), ("nvshmem", "nvshmem"), ("nvtx", "nvtx"), ("cuda", "cudart"), ("__cuda", "cudart")]
comps, unmapped = set(), set()
for l in libs:
    if l.startswith("libcuda.so"):  # the driver: not needed to import, never on PyPI
        continue
    c = next((c for p, c in LIB if l.startswith(p + ".") or l.startswith(p + "_") or l == p), None)
    comps.add(c) if c else unmapped.add(l)
for s in syms:
    c = next((c for p, c in SYM if s.startswith(p)), None)
    comps.add(c) if c else unmapped.add(s)
ALIAS = {"cudart": "cuda-runtime", "nvrtc": "cuda-nvrtc", "cupti": "cuda-cupti"}
reqs = [Requirement(r) for r in requires("torch") or []]
def norm(n):
    n = n.lower().replace("_", "-")
    n = re.sub(r"^nvidia-", "", n)
    return re.sub(r"-cu\d+$", "", n)
for c in sorted(comps):
    want = ALIAS.get(c, c)
    r = next((r for r in reqs if norm(r.name) in (want, c)), None)
    if r is not None:
        print("NODEPS", r.name + str(r.specifier)); continue
    tk = next((r for r in reqs if r.name.lower() == "cuda-toolkit"), None)
    if tk is not None:
        print("DEPS", "cuda-toolkit[%s]%s" % (c, tk.specifier)); continue
    unmapped.add(c)
for u in sorted(unmapped):
    print("UNMAPPED", u)
'

lean_ok=0
for round in 1 2 3 4 5; do
    if verify; then lean_ok=1; break; fi
    mapfile -t LINES < <("$VPY" -c "$MISSING_PY")
    nodeps=(); deps=(); unmapped=()
    for l in "${LINES[@]}"; do
        case "$l" in
            NODEPS\ *) nodeps+=("${l#NODEPS }") ;;
            DEPS\ *) deps+=("${l#DEPS }") ;;
            UNMAPPED\ *) unmapped+=("${l#UNMAPPED }") ;;
        esac
    done
    if [ "${#unmapped[@]}" -gt 0 ]; then
        log "cannot map missing pieces to wheels: ${unmapped[*]}"; break
    fi
    if [ "${#nodeps[@]}" -eq 0 ] && [ "${#deps[@]}" -eq 0 ]; then
        log "import still fails but no missing library was identified"; break
    fi
    log "round $round: loader still needs: ${nodeps[*]} ${deps[*]}"
    if [ "${#nodeps[@]}" -gt 0 ]; then pip_install --no-deps "${nodeps[@]}"; fi
    if [ "${#deps[@]}" -gt 0 ]; then pip_install "${deps[@]}"; fi
done

if [ "$lean_ok" = 1 ]; then
    log "lean install works"
else
    log "lean install did not converge; falling back to the full torch==$TORCH_VER install (several GB)"
    pip_install "torch==$TORCH_VER"
    if ! verify; then
        "$VPY" -c "$VERIFY_PY" || true
        die "torch still does not work"
    fi
fi

summary
log "done in $((SECONDS - T0)) s"
