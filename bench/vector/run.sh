#!/usr/bin/env bash
# Builds and runs modulo_vector_bench (HnswVectorStore vs raw hnswlib, same run).
# Usage: bench/vector/run.sh [--n 100000] [--crossover] [other modulo_vector_bench flags]
# Default N is 1,000,000 (long: the two builds at efConstruction=256 take a while on 2 cores).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="${BUILD_DIR:-$ROOT/build-hnsw}"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMODULO_BUILD_BENCHMARKS=ON
fi
cmake --build "$BUILD" -j2 --target modulo_vector_bench
echo "lscpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(free -g | awk '/Mem:/{print $2}') GiB RAM"
exec "$BUILD/src/modulo/index/modulo_vector_bench" "$@"
