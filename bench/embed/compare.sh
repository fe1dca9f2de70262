#!/usr/bin/env bash
# Builds the embedding benchmark tool and compares Modulo's embedding engine with
# sentence-transformers on the same texts, model and thread count (see compare.py).
# Usage: bench/embed/compare.sh [--threads 2] [--chunks 256] [--rounds 2]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${MODULO_EMBED_BUILD_DIR:-$ROOT/build-embed}"
PY="${PYTHON:-$ROOT/.venv-golden/bin/python}"
"$ROOT/scripts/fetch-model.sh" >/dev/null
if [[ ! -x "$PY" ]]; then
  echo "compare: reference stack missing; create it with:" >&2
  echo "  python3 -m venv $ROOT/.venv-golden && $ROOT/.venv-golden/bin/pip install -r $ROOT/tools/golden/requirements.txt" >&2
  exit 1
fi
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" --target modulo_embed_bench -j2 >/dev/null
BIN="$(find "$BUILD" -name modulo_embed_bench -type f -perm -u+x | head -n 1)"
exec "$PY" "$ROOT/bench/embed/compare.py" --binary "$BIN" "$@"
