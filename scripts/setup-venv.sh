#!/usr/bin/env bash
# Creates the project's Python virtual environment (.venv) for the end-to-end tests and
# benchmark scripts. Idempotent: reinstalls only when the requirements file changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# The end-to-end tests' packages and the services the integration tests start (embedded Milvus).
REQS=("$ROOT/tests/e2e/requirements.txt" "$ROOT/tests/services/requirements.txt")
PYTHON="${PYTHON:-python3}"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
want="$(cat "${REQS[@]}" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${REQS[@]/#/-r}"
  echo "$want" > "$stamp"
fi
