# The environment the bundle's programs need (launch/bundle.sh), sourced by bin/* and run-tests.sh, or by you in bash
# to put the bundle's ringtrain and mpirun first on PATH: `. /path/to/bundle/env.sh`.
#   Open MPI and PMIx: their install paths, moved to the bundle (OPAL_* and PMIX_* name each one).
#   CUDA's libraries (not bundled): from $CUDA_HOME, /usr/local/cuda, or PyTorch's nvidia-* packages, put on
#   LD_LIBRARY_PATH; set RINGTRAIN_CUDA_LIBS=DIR[:DIR] to choose them yourself.
#   Launching: with neither ssh nor rsh here and outside Slurm, Open MPI starts ranks on this node only (plm isolated).
if [ -z "${RINGTRAIN_BUNDLE:-}" ]; then
  RINGTRAIN_BUNDLE="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd -P)"
fi
export RINGTRAIN_BUNDLE
export OPAL_PREFIX="$RINGTRAIN_BUNDLE" OPAL_EXEC_PREFIX="$RINGTRAIN_BUNDLE" OPAL_BINDIR="$RINGTRAIN_BUNDLE/bin" \
  OPAL_LIBDIR="$RINGTRAIN_BUNDLE/lib" OPAL_PKGLIBDIR="$RINGTRAIN_BUNDLE/lib/openmpi" \
  OPAL_DATAROOTDIR="$RINGTRAIN_BUNDLE/share" OPAL_DATADIR="$RINGTRAIN_BUNDLE/share" \
  OPAL_PKGDATADIR="$RINGTRAIN_BUNDLE/share/openmpi" OPAL_SYSCONFDIR="$RINGTRAIN_BUNDLE/etc"
export PMIX_PREFIX="$RINGTRAIN_BUNDLE" PMIX_LIBDIR="$RINGTRAIN_BUNDLE/lib" PMIX_PKGLIBDIR="$RINGTRAIN_BUNDLE/lib/pmix" \
  PMIX_DATADIR="$RINGTRAIN_BUNDLE/share" PMIX_PKGDATADIR="$RINGTRAIN_BUNDLE/share/pmix"
case ":$PATH:" in *":$RINGTRAIN_BUNDLE/bin:"*) ;; *) PATH="$RINGTRAIN_BUNDLE/bin:$PATH" ;; esac
export PATH
if [ -z "${OMPI_MCA_plm:-}" ] && [ -z "${SLURM_JOB_ID:-}" ] && ! command -v ssh >/dev/null 2>&1 &&
  ! command -v rsh >/dev/null 2>&1; then
  export OMPI_MCA_plm=isolated
fi

if [ -z "${RINGTRAIN_CUDA_LIBS:-}" ]; then
  for d in ${CUDA_HOME:+"$CUDA_HOME/lib64" "$CUDA_HOME/lib"} /usr/local/cuda/lib64 /usr/local/cuda/lib \
    /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && RINGTRAIN_CUDA_LIBS="${RINGTRAIN_CUDA_LIBS:+$RINGTRAIN_CUDA_LIBS:}$d"
  done
  # NCCL and cuBLAS as PyTorch's wheels ship them, where the toolkit lacks them.
  if command -v python3 >/dev/null 2>&1; then
    for d in $(python3 -c 'import glob, os, nvidia; print(" ".join(sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], "*", "lib")))))' 2>/dev/null); do
      RINGTRAIN_CUDA_LIBS="${RINGTRAIN_CUDA_LIBS:+$RINGTRAIN_CUDA_LIBS:}$d"
    done
  fi
fi
if [ -n "${RINGTRAIN_CUDA_LIBS:-}" ]; then
  export LD_LIBRARY_PATH="$RINGTRAIN_CUDA_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
