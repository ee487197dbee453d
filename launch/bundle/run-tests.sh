#!/usr/bin/env bash
# Runs a bundle's test suites (launch/bundle.sh) without CMake or ctest: each test of tests.list, with the command and
# limits ctest gives it, from this directory's programs, in a scratch directory of its own.
#   run-tests.sh [-E EXCLUDE] [REGEX]   the tests whose names match REGEX (grep -E; default all), but not EXCLUDE
# Prints one line per test and a closing "N passed, N failed, N skipped"; exit 1 if any failed. A failed test's output
# is printed, and kept with the others under $RINGTRAIN_TEST_LOGS when that is set (N.log for line N of tests.list).
# The CUDA tests skip where no GPU is visible, and the tests that read files back with Python where there is no python3.
set -uo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd -P)"
RINGTRAIN_BUNDLE="$here"
. "$here/env.sh"
export RINGTRAIN_TEST_PROGRAM_PATH="$here/bin:$here/tests:$here/bench" RINGTRAIN_TEST_MPIEXEC="$here/bin/mpirun"
export RINGTRAIN_TEST_SOURCE_DIR="$here/share/ringtrain"
RINGTRAIN_TEST_PYTHON3="$(command -v python3 || echo /nonexistent/python3)"
export RINGTRAIN_TEST_PYTHON3

exclude="" pattern=""
while [ $# -gt 0 ]; do
  case "$1" in
    -E) [ $# -ge 2 ] || { echo "run-tests.sh: error: -E needs a pattern" >&2; exit 2; }; exclude="$2"; shift 2 ;;
    -h | --help) sed -n '2,7p' "$0"; exit 0 ;;
    -*) echo "run-tests.sh: error: unknown option '$1'; valid: -E EXCLUDE, then REGEX" >&2; exit 2 ;;
    *) [ -z "$pattern" ] || { echo "run-tests.sh: error: give one REGEX (got '$pattern' and '$1')" >&2; exit 2; }
       pattern="$1"; shift ;;
  esac
done

work="$(mktemp -d "${TMPDIR:-/tmp}/ringtrain-tests.XXXXXX")"
trap 'rm -rf "$work"' EXIT
logs="${RINGTRAIN_TEST_LOGS:-}"
[ -z "$logs" ] || mkdir -p "$logs"
passed=0 failed=0 skipped=0 index=0 failures=()
start=$SECONDS
while IFS=$'\t' read -r -a fields; do
  name="${fields[0]}" limit="${fields[1]}" envs="${fields[2]}" skip_code="${fields[3]}"
  index=$((index + 1))
  [ -z "$pattern" ] || [[ "$name" =~ $pattern ]] || continue
  [ -z "$exclude" ] || ! [[ "$name" =~ $exclude ]] || continue
  command=("${fields[@]:4}")
  command=("${command[@]//@B@/$here}")
  assignments=()
  [ "$envs" = "-" ] || IFS=',' read -r -a assignments <<<"$envs"
  dir="$work/$index"
  mkdir -p "$dir"
  t0=$SECONDS
  (cd "$dir" && exec env "${assignments[@]}" timeout -k 10 "$limit" "${command[@]}") < /dev/null > "$dir.log" 2>&1
  rc=$?
  took=$((SECONDS - t0))
  if [ "$rc" -eq 0 ] && grep -q '\[  SKIPPED \]' "$dir.log"; then
    result=skipped
  elif [ "$skip_code" != "-" ] && [ "$rc" -eq "$skip_code" ]; then
    result=skipped
  elif [ "$rc" -eq 0 ]; then
    result=passed
  else
    result=failed
  fi
  printf '%-8s %4d s  %s\n' "$result" "$took" "${name%%  #*}"  # without gtest's "  # GetParam() = ..."
  case "$result" in
    passed) passed=$((passed + 1)) ;;
    skipped) skipped=$((skipped + 1)) ;;
    failed) failed=$((failed + 1)); failures+=("${name%%  #*}")
            if [ "$rc" -eq 124 ]; then echo "    (timed out after $limit s)"; else echo "    (exit code $rc)"; fi
            tail -40 "$dir.log" | sed 's/^/    /' ;;
  esac
  [ -z "$logs" ] || cp "$dir.log" "$logs/$index.log"
  rm -rf "$dir" "$dir.log"
done < "$here/tests.list"

[ "${#failures[@]}" -eq 0 ] || printf 'failed: %s\n' "${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped ($((SECONDS - start)) s)"
[ "$failed" -eq 0 ] && [ $((passed + skipped)) -gt 0 ]
