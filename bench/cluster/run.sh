#!/usr/bin/env bash
# Retrieval-only search through nginx on the scale-out stack against the embedded stack, the
# same SciFact documents in each, in one run (bench/cluster/README.md).
#
# Usage: bench/cluster/run.sh [--docs N] [--connections C] [--duration S]
#   defaults: 300 documents, 16 connections, 20 s per stack. Needs build/modulo (or MODULO_BIN),
#   wrk, nginx, PostgreSQL, Redis and the embedded Milvus (tests/services/requirements.txt).
#   Takes 3-6 minutes. The figures also go to a JSON file (its path is printed at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "wrk is missing: scripts/install-deps.sh --bench" >&2; exit 1; }
DATASET=${MODULO_SCIFACT:-../shared/datasets/scifact}
[[ -f "$DATASET/corpus.jsonl" ]] || { echo "SciFact not found in $DATASET (set MODULO_SCIFACT)" >&2; exit 1; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(git rev-parse --short HEAD 2>/dev/null || true)"
exec .venv/bin/python bench/cluster/bench.py --dataset "$DATASET" "$@"
