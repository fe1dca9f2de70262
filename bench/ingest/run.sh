#!/usr/bin/env bash
# Ingestion benchmark: real documents from Debian's R documentation packages (a ~100-page PDF,
# then the whole PDF and HTML manual set) uploaded to `modulo serve` through the public API,
# timed end to end, with the per-stage breakdown from /metrics.
#
# Usage: bench/ingest/run.sh [BUILD_DIR] [--pdf-only]   (default build-bench; needs the model: make model)
set -euo pipefail
export MODULO_AUTH=none  # one local user: measure the work, not authentication
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$ROOT/build-bench}"
CACHE="${BENCH_CACHE:-$ROOT/.cache/bench-docs}"
MODEL="${MODULO_MODEL_DIR:-$ROOT/models/all-MiniLM-L6-v2}"
PY="$ROOT/.venv/bin/python"
[[ -x "$BUILD/modulo" ]] || { echo "build $BUILD/modulo first (make bench builds it)" >&2; exit 1; }
[[ -x "$PY" ]] || "$ROOT/scripts/setup-venv.sh"

mkdir -p "$CACHE"
if [[ ! -d "$CACHE/x/usr/share/R/doc" && ! -d "$CACHE/x/usr/share/doc/r-doc-pdf" ]]; then
  (cd "$CACHE" && apt-get download r-doc-pdf r-doc-html >/dev/null && for d in *.deb; do dpkg -x "$d" x; done)
fi
PDF="$(find "$CACHE/x" -name 'R-intro.pdf' | head -n1)"
[[ -f "$PDF" ]] || { echo "R-intro.pdf not found in r-doc-pdf" >&2; exit 1; }

DATA="$(mktemp -d)"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BUILD/modulo" serve --port "$PORT" --data-dir "$DATA" --model-dir "$MODEL" --access-log false \
  --worker-concurrency 2 >/dev/null 2>"$DATA/modulo.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.05; done

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$PY" "$ROOT/bench/ingest/drive.py" "http://127.0.0.1:$PORT" "$PDF" "$CACHE/x" "${2:-}"
