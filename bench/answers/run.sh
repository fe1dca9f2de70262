#!/usr/bin/env bash
# Answers benchmark: Modulo's own time around the language model (p50 of metadata.stages total −
# generate, against a zero-delay fake model) and how long the first token takes from the model's
# first delta to the client. Needs the AnswerService wired in the binary (MODULO_LLM_* settings).
#
# Usage: bench/answers/run.sh [MODULO_BIN] [--requests N]   (default: build/modulo)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-build/modulo}
[[ $# -gt 0 ]] && shift
[[ -x "$BIN" ]] || { echo "no modulo binary at $BIN: build it with 'make build' or pass its path" >&2; exit 1; }
PY=.venv/bin/python
[[ -x "$PY" ]] || PY=python3
exec "$PY" bench/answers/drive.py "$BIN" "$@"
