#!/usr/bin/env bash
# Installs the Debian 12 packages Modulo needs to build, test and run. Idempotent and quick when
# everything is already there. Run as root (or with sudo available).
#
# Usage: scripts/install-deps.sh [--test] [--bench]
#   --test   adds the services the integration tests start on their own ports (PostgreSQL, Redis,
#            nginx); their Debian system services are not started
#   --bench  adds the load-testing tools
#   --go     adds Debian's Go 1.19, which only serves to fetch a current Go toolchain
#            (scripts/go-toolchain.sh)
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  # libraries (oneDNN's CMake package needs the OpenCL development files)
  libboost1.74-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libsqlite3-dev libdnnl-dev ocl-icd-opencl-dev libutf8proc-dev libssl-dev libcurl4-openssl-dev
  # keyword index: the Snowball stemmers (HNSW is vendored in third_party/hnswlib)
  libstemmer-dev
  # scale-out engines' client libraries: PostgreSQL (libpq), Redis (hiredis)
  libpq-dev libhiredis-dev
  # document parsers
  libpoppler-cpp-dev poppler-data libxml2-dev libzip-dev zlib1g-dev libpugixml-dev libuchardet-dev libmagic-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # python for the end-to-end tests and the model download
  python3 python3-venv python3-pip
)
for arg in "$@"; do
  case $arg in
    --test) PACKAGES+=(postgresql redis-server nginx-light) ;;
    --bench) PACKAGES+=(wrk hyperfine) ;;
    --go) PACKAGES+=(golang-1.19-go) ;;
    *) echo "install-deps: unknown argument $arg" >&2; exit 2 ;;
  esac
done

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
# Packages that ship a system service (PostgreSQL, Redis, nginx) are installed without starting
# it: the tests start their own instances on free loopback ports.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created_policy=1
fi
trap 'if [[ $created_policy == 1 ]]; then $SUDO rm -f "$policy"; fi' EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
