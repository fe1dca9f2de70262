"""Drives the ingestion benchmark over the public HTTP API (see run.sh)."""
import pathlib
import re
import sys
import time

import requests

base, pdf, corpus_root = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])


def stage_seconds():
    text = requests.get(base + "/metrics").text
    out = {}
    for m in re.finditer(r'^modulo_ingest_stage_duration_seconds_sum\{stage="([^"]+)"\} (\S+)$', text, re.M):
        out[m.group(1)] = float(m.group(2))
    pages = re.search(r"^modulo_ingest_pages_total (\S+)$", text, re.M)
    chunks = re.search(r"^modulo_ingest_chunks_total (\S+)$", text, re.M)
    return out, float(pages.group(1)) if pages else 0, float(chunks.group(1)) if chunks else 0


def run(name, paths):
    c = requests.post(base + "/api/collections", json={"name": name}).json()
    before, p0, k0 = stage_seconds()
    t0 = time.perf_counter()
    for i in range(0, len(paths), 50):
        files = [("files", (p.name, p.read_bytes())) for p in paths[i:i + 50]]
        r = requests.post(f"{base}/api/collections/{c['id']}/documents", files=files, timeout=600)
        r.raise_for_status()
    while True:
        files = requests.get(f"{base}/api/collections/{c['id']}/files").json()
        if all(f["status"] in ("completed", "failed") for f in files):
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    after, p1, k1 = stage_seconds()
    stages = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    busy = sum(stages.values())
    failed = [f["filename"] for f in files if f["status"] == "failed"]
    print(f"{name}: {len(files)} files, {p1 - p0:.0f} pages, {k1 - k0:.0f} chunks in {wall:.2f} s wall "
          f"→ {(p1 - p0) / wall:.1f} pages/s, {(k1 - k0) / wall:.1f} chunks/s; failed: {len(failed)} {failed[:5]}")
    if busy > 0:
        parts = ", ".join(f"{k} {v:.2f} s ({100 * v / busy:.1f} %)" for k, v in sorted(stages.items()))
        non_embed = busy - stages.get("embed", 0)
        print(f"   stage time (summed over workers): {parts}; non-embedding {100 * non_embed / busy:.1f} %")


run("one-pdf", [pdf])
if len(sys.argv) > 4 and sys.argv[4] == "--pdf-only":
    sys.exit(0)
corpus = sorted(p for p in corpus_root.rglob("*") if p.suffix.lower() in (".pdf", ".html") and p.is_file())
run("r-docs", corpus)
