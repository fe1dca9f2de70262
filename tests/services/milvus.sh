#!/usr/bin/env bash
# Starts and stops an embedded Milvus 2.3 standalone server (PyPI package `milvus`, command
# milvus-server) for the integration tests and for local runs.
#
#   tests/services/milvus.sh start DIR [PORT]  start it in the background with everything under
#                                             DIR, wait until its REST API answers, print its URL
#   tests/services/milvus.sh stop DIR          stop the server started with DIR
#   tests/services/milvus.sh status DIR        print the URL and exit 0 if it answers, else exit 1
#
# start and stop are idempotent: start with a running server prints its URL, stop with none does
# nothing. PORT is the proxy port, which serves gRPC and the REST API alike (default: a free
# port); Milvus's other ports are chosen free by milvus-server. Files under DIR: milvus.pid (the
# process group), milvus.url, milvus.log, data/.
#
# Environment:
#   MILVUS_SERVER         the milvus-server command (default: the project's .venv, else PATH)
#   MILVUS_START_TIMEOUT  seconds to wait for the REST API (default 180)
#   MILVUS_EXTRA_CONFIG   space-separated key=value Milvus settings, e.g. "common.gracefulTime=1000"
#
# One embedded Milvus per machine: its embedded etcd's peer port (2380) cannot be moved.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
usage() { echo "usage: $0 start DIR [PORT] | stop DIR | status DIR" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
cmd="$1"
dir="$2"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
pidfile="$dir/milvus.pid"
urlfile="$dir/milvus.url"
logfile="$dir/milvus.log"

answers() {  # answers URL: the REST API lists collections
  curl -s -m 3 "$1/v1/vector/collections" 2>/dev/null | grep -q '"code":200'
}

# shellcheck source=tests/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # alive, stop_group, running_url

has_milvus() {  # has_milvus: the group holds the milvus binary itself (milvus-server's child)
  ps -o args= -g "$(cat "$pidfile")" 2>/dev/null | grep -q "milvus run standalone"
}

find_server() {
  if [[ -n "${MILVUS_SERVER:-}" ]]; then
    command -v "$MILVUS_SERVER" || true
  elif [[ -x "$ROOT/.venv/bin/milvus-server" ]]; then
    echo "$ROOT/.venv/bin/milvus-server"
  else
    command -v milvus-server || true
  fi
}

stop_server() {
  stop_group 50
}

case "$cmd" in
  start)
    running_url && exit 0
    stop_server  # a dead or half-started one
    server="$(find_server)"
    if [[ -z "$server" ]]; then
      cat >&2 <<MSG
milvus.sh: milvus-server not found. Install the embedded Milvus into the project's virtual
environment:  $ROOT/.venv/bin/pip install -r $ROOT/tests/services/requirements.txt
(or set MILVUS_SERVER to a milvus-server command).
MSG
      exit 1
    fi
    port="${3:-}"
    if [[ -z "$port" ]]; then
      port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    fi
    url="http://127.0.0.1:$port"
    if answers "$url"; then
      echo "milvus.sh: something already answers on port $port; choose another" >&2
      exit 1
    fi
    args=(--data "$dir/data" --proxy-port "$port")
    for kv in ${MILVUS_EXTRA_CONFIG:-}; do args+=(--extra-config "$kv"); done
    # A new session: the server and its milvus child form one process group that stop can end.
    setsid "$server" "${args[@]}" >"$logfile" 2>&1 </dev/null &
    echo $! > "$pidfile"
    started=$(date +%s)
    deadline=$(( started + ${MILVUS_START_TIMEOUT:-180} ))
    until answers "$url"; do
      # milvus-server unpacks the binary first (a few seconds), then runs it as its child; it
      # does not exit when that child dies, so the child is what tells whether it still starts.
      if ! alive || { (( $(date +%s) > started + 30 )) && ! has_milvus; }; then
        if grep -qs "2380: bind: address already in use" "$dir"/data/logs/*.log; then
          echo "milvus.sh: another embedded Milvus runs on this machine (its etcd peer port 2380 is fixed);" \
               "stop it, or point the tests at it with MODULO_TEST_MILVUS=http://127.0.0.1:<port>" >&2
          stop_server
          exit 1
        fi
        echo "milvus.sh: Milvus exited while starting; the end of $logfile:" >&2
        tail -n 30 "$logfile" >&2 || true
        for f in "$dir"/data/logs/*.log; do [[ -f "$f" ]] && tail -n 20 "$f" >&2; done
        stop_server
        exit 1
      fi
      if (( $(date +%s) > deadline )); then
        echo "milvus.sh: Milvus did not answer on $url within ${MILVUS_START_TIMEOUT:-180} s; see $logfile" >&2
        stop_server
        exit 1
      fi
      sleep 1
    done
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
