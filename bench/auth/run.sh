#!/usr/bin/env bash
# What authentication and authorization cost per request: wrk on the same route (GET /api/teams:
# one store query either way) of one server, once with a trivial principal (a second server on
# the same data with MODULO_AUTH=none), once with an API key, once with an HS256 JWT. Rounds
# alternate so the noisy 2-core machine treats each case alike; medians are printed. One
# connection, so latency is the request's own time and not queueing behind others: the overhead
# is the p50 difference against the trivial principal. (With 8 connections on these 2 cores the
# same difference reads about 2.5x larger: it is multiplied by the queue.)
#
# Usage: bench/auth/run.sh [BUILD_DIR] [--rounds N] [--duration S]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-bench}
shift || true
ROUNDS=3
DURATION=8
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk is missing: scripts/install-deps.sh --bench" >&2; exit 1; }
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMODULO_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 --target modulo >/dev/null
DATA=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$DATA"' EXIT
KEY=$("$BUILD/modulo" admin create-user --name bench --data-dir "$DATA" 2>/dev/null | sed -n 's/^api_key: //p')
SECRET="a benchmark secret that is long enough for HS256"
PA=$((20000 + RANDOM % 10000)); PB=$((PA + 1))
MODULO_JWT_SECRET="$SECRET" "$BUILD/modulo" serve --port "$PA" --data-dir "$DATA" --embedder none --access-log false \
  --auth required --rate-limit-search 0 --jwt-auto-provision true --log-level warn >/dev/null 2>&1 &
"$BUILD/modulo" serve --port "$PB" --data-dir "$DATA/none" --embedder none --access-log false --auth none \
  --log-level warn >/dev/null 2>&1 &
for p in $PA $PB; do for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/ready" >/dev/null && break; sleep 0.05; done; done
JWT=$(.venv/bin/python - "$SECRET" <<'PY'
import base64, hashlib, hmac, json, sys, time
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
h = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
p = b(json.dumps({"sub": "bench", "iss": "bench", "exp": int(time.time()) + 3600}).encode())
s = b(hmac.new(sys.argv[1].encode(), f"{h}.{p}".encode(), hashlib.sha256).digest())
print(f"{h}.{p}.{s}")
PY
)
curl -sf "http://127.0.0.1:$PA/api/teams" -H "Authorization: Bearer $KEY" >/dev/null
curl -sf "http://127.0.0.1:$PA/api/teams" -H "Authorization: Bearer $JWT" >/dev/null

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; wrk -t1 -c1 -d${DURATION}s, $ROUNDS rounds, GET /api/teams"
declare -A P50 RPS
one() {  # name url [header]
  local out
  if [[ -n "${3:-}" ]]; then out=$(wrk -t1 -c1 -d"${DURATION}s" --latency -H "$3" "$2"); else out=$(wrk -t1 -c1 -d"${DURATION}s" --latency "$2"); fi
  P50[$1]+="$(awk '$1=="50%"{print $2}' <<<"$out") "
  RPS[$1]+="$(sed -n 's/^Requests\/sec: *//p' <<<"$out") "
}
for _ in $(seq "$ROUNDS"); do
  one none "http://127.0.0.1:$PB/api/teams"
  one api_key "http://127.0.0.1:$PA/api/teams" "Authorization: Bearer $KEY"
  one jwt_hs256 "http://127.0.0.1:$PA/api/teams" "Authorization: Bearer $JWT"
done
.venv/bin/python - "${P50[none]}" "${P50[api_key]}" "${P50[jwt_hs256]}" "${RPS[none]}" "${RPS[api_key]}" "${RPS[jwt_hs256]}" <<'PY'
import statistics, sys
def us(v):
    v = v.strip()
    return float(v[:-2]) * 1000 if v.endswith("ms") else float(v[:-2]) if v.endswith("us") else float(v[:-1]) * 1e6
names = ["none (trivial principal)", "API key", "JWT HS256"]
p50 = [statistics.median(us(x) for x in a.split()) for a in sys.argv[1:4]]
rps = [statistics.median(float(x) for x in a.split()) for a in sys.argv[4:7]]
print(f"{'case':<26}{'req/s':>10}{'p50 us':>10}{'overhead us':>13}")
for n, r, p in zip(names, rps, p50):
    print(f"{n:<26}{r:>10.0f}{p:>10.1f}{p - p50[0]:>13.1f}")
PY
