#!/usr/bin/env bash
# Search latency (p50/p99) and recall of the Milvus VectorStore against the embedded HNSW store,
# same data, same run. Starts an embedded Milvus (tests/services/milvus.sh) unless
# MODULO_TEST_MILVUS names a running one, and stops it at the end.
# Usage: bench/vector/milvus_bench.sh [--n 100000] [--dim 384] [--queries 300] [--k 10] [--batch 1000]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${BUILD_DIR:-$ROOT/build-milvus}"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$BUILD" -j2 --target modulo_milvus_bench
url="${MODULO_TEST_MILVUS:-}"
dir=""
if [ -z "$url" ]; then
  dir="$(mktemp -d /tmp/modulo-milvus-bench-XXXXXX)"
  trap '"$ROOT/tests/services/milvus.sh" stop "$dir"; rm -rf "$dir"' EXIT
  url="$("$ROOT/tests/services/milvus.sh" start "$dir")"
fi
echo "lscpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(free -g | awk '/Mem:/{print $2}') GiB RAM"
"$BUILD/src/modulo/index/modulo_milvus_bench" --url "$url" "$@"
