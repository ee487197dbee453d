#!/bin/sh
# A bundle's bin/ringtrain, bin/mpirun and bin/orted (launch/bundle.sh): sets the bundle's environment (env.sh), then
# runs the program of that name in libexec/ (mpirun is Open MPI's orterun, told where the bundle is on other nodes).
here="$(dirname "$(readlink -f "$0")")"
RINGTRAIN_BUNDLE="$(cd "$here/.." && pwd -P)"
. "$RINGTRAIN_BUNDLE/env.sh"
case "$(basename "$0")" in
  ringtrain) exec "$RINGTRAIN_BUNDLE/libexec/ringtrain" "$@" ;;
  mpirun | mpiexec) exec "$RINGTRAIN_BUNDLE/libexec/orterun" --prefix "$RINGTRAIN_BUNDLE" "$@" ;;
  orted) exec "$RINGTRAIN_BUNDLE/libexec/orted" "$@" ;;
  *) echo "$0: error: this wrapper runs ringtrain, mpirun, mpiexec or orted, not '$(basename "$0")'" >&2; exit 2 ;;
esac
