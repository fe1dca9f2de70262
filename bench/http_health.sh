#!/usr/bin/env bash
# HTTP server benchmark: wrk on /health of `modulo serve` against a bare Beast server with the
# same threading model, measured in the same run, plus idle memory and start-to-ready time.
#
# Usage: bench/http_health.sh [BUILD_DIR]   (a build with -DMODULO_BUILD_BENCHMARKS=ON)
# Env:   ROUNDS (default 3), DURATION (default 10s), CONNECTIONS (default 64)
set -euo pipefail
export MODULO_AUTH=none  # one local user: measure the work, not authentication
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build-bench}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10s}"
CONNS="${CONNECTIONS:-64}"
MODULO="$BUILD/modulo"
ECHO="$BUILD/beast_echo"
for b in "$MODULO" "$ECHO"; do [[ -x "$b" ]] || { echo "missing $b: build with -DMODULO_BUILD_BENCHMARKS=ON" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }

DATA="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 1 500); do curl -sf "http://127.0.0.1:$1$2" >/dev/null && return 0; sleep 0.01; done; return 1; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "== wrk -t1 -c$CONNS -d$DURATION on /health, $ROUNDS alternating rounds each"

MPORT=$(free_port); EPORT=$(free_port)
"$MODULO" serve --port "$MPORT" --data-dir "$DATA/m" --embedder none >/dev/null 2>"$DATA/modulo.log" & PIDS+=($!)
MPID=$!
"$ECHO" "$EPORT" "$(nproc)" >/dev/null & PIDS+=($!)
wait_ready "$MPORT" /ready; wait_ready "$EPORT" /

run_wrk() {  # prints "rps p50_ms p99_ms"
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$1/health" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    END {printf "%s %.3f %.3f\n", rps, ms(p50), ms(p99)}'
}

declare -a M_RPS E_RPS M_P99 E_P99 M_P50 E_P50
for r in $(seq 1 "$ROUNDS"); do
  read -r rps p50 p99 < <(run_wrk "$EPORT"); E_RPS+=("$rps"); E_P50+=("$p50"); E_P99+=("$p99")
  echo "round $r beast_echo: $rps req/s  p50 ${p50} ms  p99 ${p99} ms"
  read -r rps p50 p99 < <(run_wrk "$MPORT"); M_RPS+=("$rps"); M_P50+=("$p50"); M_P99+=("$p99")
  echo "round $r modulo    : $rps req/s  p50 ${p50} ms  p99 ${p99} ms"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
MR=$(median "${M_RPS[@]}"); ER=$(median "${E_RPS[@]}")
echo "== median: modulo $MR req/s (p50 $(median "${M_P50[@]}") ms, p99 $(median "${M_P99[@]}") ms);" \
     "beast_echo $ER req/s (p50 $(median "${E_P50[@]}") ms, p99 $(median "${E_P99[@]}") ms);" \
     "ratio modulo/echo $(awk -v a="$MR" -v b="$ER" 'BEGIN{printf "%.2f", a/b}')"
kill "$MPID"; wait "$MPID" 2>/dev/null || true

echo "== idle resident memory and start-to-ready of modulo serve, median of 10 starts each"
python3 - "$MODULO" "$DATA" "${MODULO_MODEL_DIR:-$ROOT/models/all-MiniLM-L6-v2}" <<'PY'
import os, socket, statistics, subprocess, sys, time, urllib.request
binary, data, model = sys.argv[1], sys.argv[2], sys.argv[3]
def measure(label, extra):
  ready, rss = [], []
  for i in range(10):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "serve", "--port", str(port), "--data-dir", f"{data}/{label}{i}", *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.001)
    ready.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.5)
    with open(f"/proc/{p.pid}/status") as f:
        rss.append(next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024)
    p.terminate(); p.wait()
  print(f"{label}: start-to-ready median {statistics.median(ready):.1f} ms (min {min(ready):.1f}, max {max(ready):.1f});"
        f" idle RSS median {statistics.median(rss):.1f} MB (max {max(rss):.1f})")
measure("without a model (--embedder none)", ["--embedder", "none"])
if os.path.isdir(model):
  measure("with all-MiniLM-L6-v2 loaded", ["--model-dir", model])
PY
