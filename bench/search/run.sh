#!/usr/bin/env bash
# Search throughput and latency under load: /api/search on a SciFact collection with distinct
# questions for each retriever, with the result cache off and the query-embedding cache off (so
# every request embeds its question), then with the result cache warm, and /health as the
# same-run baseline of the HTTP layer alone.
#
# Usage: bench/search/run.sh [BUILD_DIR] [--connections N] [--duration S] [--precision P]
#   BUILD_DIR defaults to build-bench (configured Release). The SciFact collection is kept in
#   BUILD_DIR/bench-search-data, so only the first run ingests (a few minutes).
set -euo pipefail
export MODULO_AUTH=none  # one local user: measure the work, not authentication
cd "$(dirname "$0")/../.."
BUILD=${1:-build-bench}
shift || true
CONNS=16
DURATION=20
PRECISION=fp32
while [[ $# -gt 0 ]]; do
  case $1 in
    --connections) CONNS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --precision) PRECISION=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk is missing: scripts/install-deps.sh --bench" >&2; exit 1; }
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMODULO_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 --target modulo >/dev/null
DATA="$BUILD/bench-search-data"
PORT=$((20000 + RANDOM % 20000))
"$BUILD/modulo" serve --port "$PORT" --data-dir "$DATA" --embed-precision "$PRECISION" --log-level warn \
  --embedding-cache-size 0 \
  >/dev/null 2>"$BUILD/bench-search.log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
.venv/bin/python bench/search/prepare.py --url "http://127.0.0.1:$PORT" --dataset ../shared/datasets/scifact \
  --out "$DATA/bodies" >/dev/null

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; wrk -t2 -c$CONNS -d${DURATION}s; embeddings $PRECISION, embedding cache off"
echo "collection: $(curl -s "http://127.0.0.1:$PORT/api/collections/$(cat "$DATA/bodies/collection_id")" | \
  .venv/bin/python -c 'import json,sys; c=json.load(sys.stdin); print(c["chunk_count"], "chunks,", c["file_count"], "documents")')"
# Warm up: every question once per mode, so indexes are loaded and code paths are hot.
BODIES="$DATA/bodies/hybrid.jsonl" wrk -t1 -c4 -d5s -s bench/search/search.lua "http://127.0.0.1:$PORT" >/dev/null
printf "%-22s %10s %9s %9s %9s\n" "case" "req/s" "p50 ms" "p99 ms" "errors"
run() {
  local name=$1; shift
  local out
  out=$("$@" 2>&1)
  local rps p50 p99 errs
  rps=$(sed -n 's/^Requests\/sec: *//p' <<<"$out")
  p50=$(awk '$1=="50%"{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  errs=$(grep -Eo "Non-2xx or 3xx responses: [0-9]+" <<<"$out" | grep -Eo "[0-9]+$" || echo 0)
  printf "%-22s %10s %9s %9s %9s\n" "$name" "$rps" "$p50" "$p99" "$errs"
}
for mode in hybrid vector keyword cached; do
  run "search $mode" env BODIES="$DATA/bodies/$mode.jsonl" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency \
    -s bench/search/search.lua "http://127.0.0.1:$PORT"
done
run "/health (baseline)" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/health"
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^rag_search_latency_seconds_(sum|count)' | sort
