#!/usr/bin/env bash
# Prints the path of a `go` command of at least the pinned version, installing that toolchain
# when none is found. Debian 12 ships Go 1.19, too old for the Go tools the tests build
# (SeaweedFS needs 1.26); Go publishes every release as the module golang.org/toolchain on the
# Go module proxy (it is how the go command itself switches toolchains), so Debian's go can fetch
# it like any other module, with its checksum verified against the checksum database.
#
# Usage: scripts/go-toolchain.sh [MIN_VERSION]    (default: the pinned GO_TOOLCHAIN_VERSION)
#
# Order of preference:
#   1. $GO, if set (used as it is, whatever its version);
#   2. `go` on PATH or /usr/local/go/bin/go, when at least MIN_VERSION;
#   3. the pinned toolchain under ${MODULO_TOOLS_DIR:-~/.cache/modulo-tools}/go-VERSION, fetched
#      once per machine with any go command (Debian's golang-1.19-go is installed for that).
set -euo pipefail

PINNED="${GO_TOOLCHAIN_VERSION:-1.26.8}"
MIN="${1:-$PINNED}"
TOOLS="${MODULO_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/modulo-tools}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# at_least A B: version A (1.26.8, 1.26, go1.26rc1 → 1.26) is B or newer.
at_least() {
  local a="${1#go}" b="${2#go}"
  a="${a%%[a-z]*}"; b="${b%%[a-z]*}"
  [[ "$(printf '%s\n%s\n' "$b" "$a" | sort -V | head -n 1)" == "$b" ]]
}

version_of() { "$1" env GOVERSION 2>/dev/null || "$1" version 2>/dev/null | awk '{print $3}'; }

if [[ -n "${GO:-}" ]]; then
  command -v "$GO" || { echo "go-toolchain: GO=$GO is not an executable" >&2; exit 1; }
  exit 0
fi

for candidate in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
  [[ -n "$candidate" && -x "$candidate" ]] || continue
  if at_least "$(GOTOOLCHAIN=local version_of "$candidate")" "$MIN"; then
    echo "$candidate"
    exit 0
  fi
done

if ! at_least "$PINNED" "$MIN"; then
  echo "go-toolchain: Go $MIN is needed but the pinned toolchain is $PINNED; set GO_TOOLCHAIN_VERSION" >&2
  exit 1
fi

dest="$TOOLS/go-$PINNED"
if [[ -x "$dest/bin/go" ]] && at_least "$(GOTOOLCHAIN=local version_of "$dest/bin/go")" "$PINNED"; then
  echo "$dest/bin/go"
  exit 0
fi

# Any go command can download the toolchain module: on PATH, /usr/local/go, or Debian's 1.19.
boot=""
for candidate in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /usr/lib/go-1.19/bin/go; do
  if [[ -n "$candidate" && -x "$candidate" ]]; then boot="$candidate"; break; fi
done
if [[ -z "$boot" ]]; then
  "$ROOT/scripts/install-deps.sh" --go >&2
  boot=/usr/lib/go-1.19/bin/go
fi

mkdir -p "$TOOLS"
exec 9>"$TOOLS/.go-$PINNED.lock"
flock 9
if [[ -x "$dest/bin/go" ]]; then echo "$dest/bin/go"; exit 0; fi

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) echo "go-toolchain: no Go toolchain for $(uname -m)" >&2; exit 1 ;;
esac
module="golang.org/toolchain@v0.0.1-go$PINNED.linux-$arch"
echo "go-toolchain: fetching Go $PINNED ($module) with $boot into $dest" >&2
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
# A private module cache: the toolchain's files are copied out of it, then it is removed.
moddir="$(cd "$work" && GOTOOLCHAIN=local GOFLAGS=-modcacherw GOMODCACHE="$work/modcache" \
          "$boot" mod download -json "$module" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')"
if [[ -z "$moddir" || ! -d "$moddir" ]]; then
  echo "go-toolchain: could not download $module" >&2
  exit 1
fi
rm -rf "$dest.tmp"
cp -r "$moddir" "$dest.tmp"
chmod -R u+w "$dest.tmp"
# Module zips carry no file modes: the commands are made executable again (as the go command
# does when it switches toolchains itself).
chmod +x "$dest.tmp"/bin/* "$dest.tmp"/pkg/tool/*/*
"$dest.tmp/bin/go" version >&2
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "$dest/bin/go"
