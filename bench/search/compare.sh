#!/usr/bin/env bash
# Two builds of `modulo` on the same SciFact collection, one after the other in the same run, so
# their figures compare on a shared, noisy machine: hybrid search with distinct questions (16
# connections, caches off), the result cache warm (16 connections), and one question at a time
# (1 connection).
#
# Usage: bench/search/compare.sh BASELINE_BIN CANDIDATE_BIN [--precision P] [--duration S]
#   The collection must exist: run bench/search/run.sh once first (it ingests SciFact into
#   build-bench/bench-search-data and writes the request bodies).
set -euo pipefail
export MODULO_AUTH=none
cd "$(dirname "$0")/../.."
[[ $# -ge 2 ]] || { sed -n '2,10p' "$0"; exit 2; }
BASE=$1 CAND=$2
shift 2
PRECISION=fp32
DURATION=15
while [[ $# -gt 0 ]]; do
  case $1 in
    --precision) PRECISION=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
DATA=build-bench/bench-search-data
[[ -f "$DATA/bodies/hybrid.jsonl" ]] || { echo "no collection: run bench/search/run.sh first" >&2; exit 1; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; embeddings $PRECISION; ${DURATION}s per case"
printf "%-12s %-12s %10s %9s %9s\n" "build" "case" "req/s" "p50" "p99"
for BIN in "$BASE" "$CAND"; do
  PORT=$((20000 + RANDOM % 20000))
  "$BIN" serve --port "$PORT" --data-dir "$DATA" --embed-precision "$PRECISION" --log-level warn \
    --embedding-cache-size 0 >/dev/null 2>&1 &
  PID=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
  BODIES="$DATA/bodies/hybrid.jsonl" wrk -t1 -c4 -d3s -s bench/search/search.lua "http://127.0.0.1:$PORT" >/dev/null
  for c in "hybrid 16" "cached 16" "hybrid 1"; do
    set -- $c
    out=$(BODIES="$DATA/bodies/$1.jsonl" wrk -t$(( $2 > 1 ? 2 : 1 )) -c"$2" -d"${DURATION}s" --latency \
      -s bench/search/search.lua "http://127.0.0.1:$PORT" 2>&1)
    printf "%-12s %-12s %10s %9s %9s\n" "$(basename "$BIN")" "$1 -c$2" "$(sed -n 's/^Requests\/sec: *//p' <<<"$out")" \
      "$(awk '$1=="50%"{print $2}' <<<"$out")" "$(awk '$1=="99%"{print $2}' <<<"$out")"
  done
  kill "$PID"; wait "$PID" 2>/dev/null || true
done
