#!/usr/bin/env bash
# Parse throughput on real documents from Debian's documentation packages (fetched with
# `apt-get download`, unpacked with `dpkg -x`, never installed):
#   - a real 113-page PDF: R-intro.pdf from r-doc-pdf (plus the other R manuals, ~3,700 pages)
#   - a set of real HTML pages: the Python 3.11 documentation (530 Sphinx pages, python3.11-doc)
#     and the R manuals in HTML (r-doc-html)
# Prints the machine, then pages/s and MB/s per format, single-threaded and on every core.
#
# Environment: BUILD_DIR (default build/) holds a configured build of the project;
# MODULO_BENCH_DATA (default build/bench-data/parse) caches the unpacked packages.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
DATA="${MODULO_BENCH_DATA:-$ROOT/build/bench-data/parse}"
THREADS="${THREADS:-$(nproc)}"

fetch() {  # fetch PACKAGE: download and unpack into $DATA/PACKAGE unless already there
  local pkg="$1"
  if [[ ! -d "$DATA/$pkg" ]]; then
    mkdir -p "$DATA/tmp"
    (cd "$DATA/tmp" && apt-get download "$pkg" >/dev/null)
    dpkg -x "$DATA"/tmp/"$pkg"_*.deb "$DATA/$pkg"
    rm -rf "$DATA/tmp"
  fi
}
fetch r-doc-pdf
fetch r-doc-html
fetch python3.11-doc

cmake --build "$BUILD_DIR" --target modulo_parse_bench -j2 >/dev/null
BENCH="$(find "$BUILD_DIR" -type f -name modulo_parse_bench -perm -u+x | head -n1)"

echo "machine: $(uname -srm), $(nproc) hardware threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
PDF_ONE="$(find -L "$DATA/r-doc-pdf" -name R-intro.pdf -type f | head -n1)"
# Packages hold symlinks to their own files: count every real file once.
mapfile -t PDFS < <(find -L "$DATA/r-doc-pdf" -name '*.pdf' -type f -exec realpath {} + | sort -u)
mapfile -t HTMLS < <(find -L "$DATA/python3.11-doc" "$DATA/r-doc-html" -name '*.html' -type f -exec realpath {} + | sort -u)

echo
echo "== one real PDF ($(basename "$PDF_ONE")), 5 runs, 1 thread"
"$BENCH" --threads 1 --repeat 5 "$PDF_ONE" || echo "(some files failed; see above)"
echo
echo "== the same PDF without font-size heading detection (PdfOptions::detect_headings = false)"
"$BENCH" --threads 1 --repeat 5 --pdf-no-headings "$PDF_ONE" || echo "(some files failed; see above)"
echo
echo "== all R manuals (${#PDFS[@]} PDFs), $THREADS threads"
"$BENCH" --threads "$THREADS" "${PDFS[@]}" || echo "(some files failed; see above)"
echo
echo "== ${#HTMLS[@]} HTML pages, 1 thread"
"$BENCH" --threads 1 "${HTMLS[@]}" || echo "(some files failed; see above)"
echo
echo "== ${#HTMLS[@]} HTML pages, $THREADS threads"
"$BENCH" --threads "$THREADS" "${HTMLS[@]}" || echo "(some files failed; see above)"
