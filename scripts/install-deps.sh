#!/usr/bin/env bash
# Installs the Debian 12 packages Modulo needs to build, test and run. Idempotent and quick when
# everything is already there. Run as root (or with sudo available).
#
# Usage: scripts/install-deps.sh [--bench]   (--bench adds the load-testing tools)
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  # libraries (oneDNN's CMake package needs the OpenCL development files)
  libboost1.74-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libsqlite3-dev libdnnl-dev ocl-icd-opencl-dev libutf8proc-dev libssl-dev libcurl4-openssl-dev
  # keyword index: the Snowball stemmers (HNSW is vendored in third_party/hnswlib)
  libstemmer-dev
  # document parsers
  libpoppler-cpp-dev poppler-data libxml2-dev libzip-dev zlib1g-dev libpugixml-dev libuchardet-dev libmagic-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # python for the end-to-end tests and the model download
  python3 python3-venv python3-pip
)
if [[ "${1:-}" == "--bench" ]]; then
  PACKAGES+=(wrk hyperfine)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
