#!/usr/bin/env bash
# Starts and stops a SeaweedFS server with its S3 gateway (signature checking on) for the
# integration tests and for local runs.
#
#   tests/services/s3.sh start DIR   start it in the background with everything under DIR, wait
#                                    until it stores objects, print its S3 endpoint URL
#   tests/services/s3.sh stop DIR    stop the server started with DIR
#   tests/services/s3.sh status DIR  print the URL and exit 0 if it answers, else exit 1
#   tests/services/s3.sh build       build the weed binary if it is missing (see below)
#
# start and stop are idempotent: start with a running server prints its URL, stop with none does
# nothing. A start that launches a server begins with an empty data directory. Ports are chosen
# free (S3, master, volume, filer; each gRPC port is its port + 10000).
# Files under DIR: s3.pid (the process group), s3.url, s3.env, s3.json (identities), s3.log, logs/,
# data/.
#
# s3.env holds S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY of an identity
# with every right, and S3_READONLY_ACCESS_KEY_ID / S3_READONLY_SECRET_ACCESS_KEY of one that may
# only read and list. The keys are random for each start; the file is readable by its owner only.
#
# The weed binary: $WEED if set; else ${MODULO_TOOLS_DIR:-~/.cache/modulo-tools}/bin/weed, built there
# from the SeaweedFS Go module (version $SEAWEEDFS_VERSION) when missing — several minutes, once per
# machine. The Go toolchain is the one scripts/go-toolchain.sh finds or fetches (Go 1.26 through
# the Go module proxy on a machine whose only Go is Debian's 1.19).
#
# Environment:
#   WEED               the weed binary to use (no build)
#   MODULO_TOOLS_DIR   where built tools are kept (default: ~/.cache/modulo-tools, so every checkout
#                      on a machine shares one build)
#   GO                 the go command (default: scripts/go-toolchain.sh's choice)
#   SEAWEEDFS_VERSION  the SeaweedFS module version to build
#   S3_START_TIMEOUT   seconds to wait for the server (default 90)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SEAWEEDFS_VERSION="${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"
# The Go version that module's go.mod requires.
SEAWEEDFS_GO="${SEAWEEDFS_GO:-1.26.6}"
TOOLS="${MODULO_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/modulo-tools}"
usage() { echo "usage: $0 start DIR | stop DIR | status DIR | build" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
cmd="$1"

# Prints the weed binary to use, building it when needed; exits 1 with the install hint.
weed_binary() {
  if [[ -n "${WEED:-}" ]]; then
    command -v "$WEED" || { echo "s3.sh: WEED=$WEED is not an executable" >&2; exit 1; }
    return
  fi
  local bin="$TOOLS/bin/weed" stamp="$TOOLS/bin/weed.version"
  if [[ -x "$bin" && "$(cat "$stamp" 2>/dev/null)" == "$SEAWEEDFS_VERSION" ]]; then
    echo "$bin"
    return
  fi
  local go
  # A Go toolchain new enough for SeaweedFS's go.mod: on PATH, or fetched once through the Go
  # module proxy (scripts/go-toolchain.sh).
  go="$("$ROOT/scripts/go-toolchain.sh" "$SEAWEEDFS_GO")" || {
    echo "s3.sh: no Go $SEAWEEDFS_GO toolchain to build SeaweedFS; set GO, or WEED to a weed binary" >&2
    exit 1
  }
  mkdir -p "$TOOLS/bin" "$TOOLS/src"
  # One build at a time on this machine; a second caller waits and then finds the binary.
  exec 9>"$TOOLS/bin/.weed.lock"
  flock 9
  if [[ -x "$bin" && "$(cat "$stamp" 2>/dev/null)" == "$SEAWEEDFS_VERSION" ]]; then
    echo "$bin"
    return
  fi
  echo "s3.sh: building SeaweedFS $SEAWEEDFS_VERSION into $bin (several minutes, once)" >&2
  local moddir src
  # The module's go.mod has replace directives, which `go install pkg@version` refuses: build
  # inside a copy of the module instead, where they apply.
  moddir="$("$go" mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" |
            sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
  if [[ -z "$moddir" || ! -d "$moddir" ]]; then
    echo "s3.sh: could not download the SeaweedFS module $SEAWEEDFS_VERSION with $go" >&2
    exit 1
  fi
  src="$TOOLS/src/seaweedfs-$SEAWEEDFS_VERSION"
  rm -rf "$src"
  cp -r "$moddir" "$src"
  chmod -R u+w "$src"
  if ! (cd "$src" && nice -n 10 "$go" build -trimpath -ldflags "-s -w" -o "$bin.tmp" ./weed) >&2; then
    echo "s3.sh: building SeaweedFS failed (see the output above)" >&2
    rm -f "$bin.tmp"
    exit 1
  fi
  mv "$bin.tmp" "$bin"
  echo "$SEAWEEDFS_VERSION" > "$stamp"
  rm -rf "$src"
  echo "$bin"
}

if [[ "$cmd" == build ]]; then
  weed_binary
  exit 0
fi

[[ $# -ge 2 ]] || usage
dir="$2"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
pidfile="$dir/s3.pid"
urlfile="$dir/s3.url"
envfile="$dir/s3.env"
logfile="$dir/s3.log"

answers() {  # answers URL: the S3 gateway answers (403 without credentials, as signatures are checked)
  local code
  code="$(curl -s -o /dev/null -m 3 -w '%{http_code}' "$1/" 2>/dev/null || true)"
  [[ "$code" == 403 || "$code" == 200 ]]
}

# shellcheck source=tests/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # alive, stop_group, running_url

stop_server() {
  stop_group 25
  # SeaweedFS keeps its gRPC sockets in /tmp, and leaves them when it is killed.
  if [[ -f "$dir/s3.ports" ]]; then
    for p in $(cat "$dir/s3.ports"); do rm -f /tmp/seaweedfs-*-"$p".sock; done
  fi
  rm -f "$dir/s3.ports"
}

# Prints N free TCP ports on 127.0.0.1 whose port + 10000 is free too (SeaweedFS's gRPC ports).
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
def free(p):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
out = []
while len(out) < int(sys.argv[1]):
    p = random.randint(20000, 45000)
    if p not in out and p + 10000 not in out and free(p) and free(p + 10000):
        out.append(p)
print(" ".join(map(str, out)))
PY
}

case "$cmd" in
  start)
    running_url && exit 0
    stop_server  # a dead or half-started one
    weed="$(weed_binary)"
    read -r s3_port master_port volume_port filer_port < <(free_ports 4)
    url="http://127.0.0.1:$s3_port"
    access="modulo$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    secret="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    ro_access="reader$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    ro_secret="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
    umask 077
    cat > "$dir/s3.json" <<JSON
{
  "identities": [
    {"name": "modulo", "credentials": [{"accessKey": "$access", "secretKey": "$secret"}],
     "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
    {"name": "reader", "credentials": [{"accessKey": "$ro_access", "secretKey": "$ro_secret"}],
     "actions": ["Read", "List"]}
  ]
}
JSON
    cat > "$envfile" <<ENV
S3_ENDPOINT=$url
S3_REGION=us-east-1
S3_ACCESS_KEY_ID=$access
S3_SECRET_ACCESS_KEY=$secret
S3_READONLY_ACCESS_KEY_ID=$ro_access
S3_READONLY_SECRET_ACCESS_KEY=$ro_secret
ENV
    # Every start begins empty: the tests' buckets do not outlive their server.
    rm -rf "$dir/data"
    mkdir -p "$dir/data/master"
    mkdir -p "$dir/logs"
    echo "$s3_port $master_port $volume_port $filer_port $((s3_port + 10000)) $((master_port + 10000))" \
         "$((volume_port + 10000)) $((filer_port + 10000))" > "$dir/s3.ports"
    # A new session: weed and its children form one process group that stop can end.
    setsid "$weed" -logdir="$dir/logs" server -dir="$dir/data" -master.dir="$dir/data/master" \
      -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock" \
      -master.port="$master_port" -volume.port="$volume_port" \
      -filer -filer.port="$filer_port" \
      -s3 -s3.port="$s3_port" -s3.config="$dir/s3.json" \
      -s3.port.iceberg=0 -s3.port.lance=0 -s3.autoCreateBucket=false -s3.domainName=localhost \
      -master.port.grpc=$((master_port + 10000)) -volume.port.grpc=$((volume_port + 10000)) \
      -filer.port.grpc=$((filer_port + 10000)) -s3.port.grpc=$((s3_port + 10000)) \
      -master.volumeSizeLimitMB=32 -volume.max=2000 \
      >"$logfile" 2>&1 </dev/null &
    echo $! > "$pidfile"
    deadline=$(( $(date +%s) + ${S3_START_TIMEOUT:-90} ))
    # Ready when the gateway answers and the filer can store a file (a volume server joined).
    until answers "$url" &&
          curl -s -f -o /dev/null -m 5 -X PUT --data-binary ready "http://127.0.0.1:$filer_port/.modulo-probe/ready"; do
      if ! alive; then
        echo "s3.sh: SeaweedFS exited while starting; the end of $logfile:" >&2
        tail -n 30 "$logfile" >&2 || true
        stop_server
        exit 1
      fi
      if (( $(date +%s) > deadline )); then
        echo "s3.sh: SeaweedFS did not get ready on $url within ${S3_START_TIMEOUT:-90} s; the end of $logfile:" >&2
        tail -n 30 "$logfile" >&2 || true
        stop_server
        exit 1
      fi
      sleep 0.5
    done
    curl -s -o /dev/null -m 5 -X DELETE "http://127.0.0.1:$filer_port/.modulo-probe?recursive=true" || true
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
