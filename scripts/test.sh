#!/usr/bin/env bash
# The README's test command (`make test`): installs what is missing, builds, and runs every test
# tier: the GoogleTest suites (ctest), the end-to-end tests, then the long tier.
#
# On a fresh machine most of the time goes to three builds (Modulo, the S3 server SeaweedFS, the
# long tier's llama.cpp) and to tests that spend much of theirs waiting on servers. The tools are
# therefore built in the background at low priority while Modulo compiles and the tests run, each
# finished before the first test that needs it: SeaweedFS before ctest (the S3 suites), the
# llama.cpp wheel before the long tier. Their output goes to $BUILD_DIR/tools/*.log and is shown
# when a build fails.
#
# Environment (from the Makefile): BUILD_DIR, BUILD_TYPE, JOBS, CMAKE_FLAGS, MODEL_DIR, and
# PYTEST_ARGS, which narrows the end-to-end run to one pytest invocation with those arguments
# (the long tier's model server is then built only if they can select long tests).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build}"
BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"
JOBS="${JOBS:-$(nproc)}"
CMAKE_FLAGS="${CMAKE_FLAGS:-}"
MODEL_DIR="${MODEL_DIR:-models/all-MiniLM-L6-v2}"
PYTEST_ARGS="${PYTEST_ARGS:-}"

step() { printf '\n== %s (%s)\n' "$*" "$(date +%H:%M:%S)"; }

# Packages first: every later step needs them, and apt takes one caller at a time.
step "packages"
scripts/install-deps.sh --test

mkdir -p "$BUILD_DIR/tools"
declare -A pid log
background() {  # background NAME NICENESS COMMAND...: start a tool build
  local name="$1" niceness="$2"
  shift 2
  log[$name]="$BUILD_DIR/tools/$name.log"
  nice -n "$niceness" "$@" >"${log[$name]}" 2>&1 &
  pid[$name]=$!
}
finish() {  # finish NAME: wait for a tool build; its log on failure
  local name="$1"
  [[ -n "${pid[$name]:-}" ]] || return 0
  step "waiting for the $name build"
  if ! wait "${pid[$name]}"; then
    echo "test: the $name build failed; the end of ${log[$name]}:" >&2
    tail -n 40 "${log[$name]}" >&2
    exit 1
  fi
  pid[$name]=""
}
trap 'for p in "${pid[@]}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null; done' EXIT

want_long=1
if [[ -n "$PYTEST_ARGS" && "$PYTEST_ARGS" == *"not long"* ]]; then want_long=0; fi

step "Python environment"
scripts/setup-venv.sh
background s3 5 tests/services/s3.sh build
if [[ $want_long == 1 ]]; then background llama 19 tests/services/llama.sh wheel; fi

step "building Modulo"
[[ -f "$BUILD_DIR/build.ninja" ]] || cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" $CMAKE_FLAGS
cmake --build "$BUILD_DIR" -j "$JOBS"
scripts/fetch-model.sh "$MODEL_DIR"
finish s3

E2E=(env MODULO_BIN="$ROOT/$BUILD_DIR/modulo" MODULO_MODEL_DIR="$ROOT/$MODEL_DIR" .venv/bin/python -m pytest -q)

step "unit, contract and integration suites (ctest)"
(cd "$BUILD_DIR" && ctest --output-on-failure -j "$JOBS")

if [[ -n "$PYTEST_ARGS" ]]; then
  if [[ $want_long == 1 ]]; then finish llama; tests/services/llama.sh build; fi
  step "end-to-end tests ($PYTEST_ARGS)"
  eval "${E2E[*]@Q} $PYTEST_ARGS tests/e2e"
  exit 0
fi

# Everything but the answers of the real local model first (the long tier's dataset checks
# included), while llama.cpp compiles; then those.
step "end-to-end tests, the long tier's dataset checks included"
"${E2E[@]}" --ignore=tests/e2e/test_real_llm.py tests/e2e

finish llama
tests/services/llama.sh build  # installs the wheel into .venv and fetches the model: quick
step "long tier: answers from a real local language model"
"${E2E[@]}" tests/e2e/test_real_llm.py
