#!/usr/bin/env bash
# Library choice for HnswVectorStore: the same synthetic set (N x 384, clustered) through
# Debian hnswlib 0.6.2, vendored hnswlib 0.8.0 and Debian FAISS 1.7.3 (if installed).
# Usage: bench/vector/compare_libs.sh [N] [candidates]   (default 100000 "h062 h080 faiss")
# Needs the comparison libraries: apt-get install libhnswlib-dev libfaiss-dev
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
N="${1:-100000}"
WHICH="${2:-h062 h080 faiss}"
OUT="$(mktemp -d)"
CXX="${CXX:-g++}"
FLAGS=(-std=c++2b -O3 -DNDEBUG -pthread -I"$ROOT/bench/vector" -I"$ROOT/src")
SRC=("$ROOT/bench/vector/library_compare.cpp" "$ROOT/src/modulo/index/hnsw/simd_distance.cpp")
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
if [[ " $WHICH " == *" h062 "* ]]; then
  "$CXX" "${FLAGS[@]}" -DCAND_HNSWLIB -DCAND_NAME='"0.6.2 (Debian)"' -DCAND_FILTER=0 "${SRC[@]}" -o "$OUT/h062"
  "$OUT/h062" "$N"
fi
if [[ " $WHICH " == *" h080 "* ]]; then
  "$CXX" "${FLAGS[@]}" -isystem "$ROOT/third_party/hnswlib" -DCAND_HNSWLIB -DCAND_NAME='"0.8.0 (vendored)"' -DCAND_FILTER=1 "${SRC[@]}" -o "$OUT/h080"
  "$OUT/h080" "$N"
fi
if [[ " $WHICH " == *" faiss "* ]] && [ -f /usr/include/faiss/IndexHNSW.h ]; then
  "$CXX" "${FLAGS[@]}" -isystem "$ROOT/third_party/hnswlib" -fopenmp -DCAND_FAISS "${SRC[@]}" -o "$OUT/faiss" -lfaiss
  "$OUT/faiss" "$N"
fi
rm -rf "$OUT"
