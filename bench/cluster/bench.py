#!/usr/bin/env python3
"""Retrieval-only search on the scale-out stack (nginx, 3 x `modulo serve`, 2 x `modulo worker`,
PostgreSQL, Redis, Milvus: tests/e2e/cluster.py) against the embedded stack (one `modulo serve`
with its defaults), the same SciFact documents in each, measured in the same run with wrk.

    bench.py --dataset DIR [--docs N] [--connections C] [--duration S] [--out FILE]

For each stack: p50/p99 latency and req/s from wrk (hybrid retrieval, distinct questions, result
cache off), and the CPU seconds per request of each tier (utime + stime from /proc/<pid>/stat,
before and after the wrk run). Prints a Markdown table and writes the figures as JSON to --out
(default: results.json in the run's temporary directory, with the logs).
"""
import argparse
import json
import os
import pathlib
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "bench" / "eval"))
import beir_eval  # noqa: E402
import cluster  # noqa: E402

import requests  # noqa: E402


def cpu(pids):
    total = 0.0
    for pid in pids:
        try:
            total += cluster.process_cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            pass  # a short-lived child that ended meanwhile
    return total


def wrk(url, bodies, connections, duration):
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s",
                          str(ROOT / "bench" / "search" / "search.lua"), url],
                         env={**os.environ, "BODIES": str(bodies)}, capture_output=True, text=True, check=True).stdout

    def ms(label):
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": requests_done, "rps": float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1)),
            "p50_ms": ms("50"), "p99_ms": ms("99"), "non_2xx": int(errors.group(1)) if errors else 0}


def measure(name, url, cid, questions, tiers, args, workdir):
    bodies = workdir / f"{name}.jsonl"
    with open(bodies, "w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps({"question": q, "collection_id": cid, "config_metadata": {
                "top_k": 10, "retriever": "hybrid", "use_cache": False, "retrieval_only": True}}) + "\n")
    wrk(url, bodies, 4, 5)  # warm up: indexes loaded, code paths hot
    before = {t: cpu(p()) for t, p in tiers.items()}
    result = wrk(url, bodies, args.connections, args.duration)
    after = {t: cpu(p()) for t, p in tiers.items()}
    result["cpu_ms_per_request"] = {t: round(1000 * (after[t] - before[t]) / max(1, result["requests"]), 3)
                                    for t in tiers}
    result["cpu_ms_per_request"]["total"] = round(sum(result["cpu_ms_per_request"].values()), 3)
    return result


def ingest(url, corpus, name):
    client = beir_eval.Client(url)
    cid, info, failed, seconds = beir_eval.ingest(client, corpus, name)
    if failed:
        raise SystemExit(f"{name}: {failed} documents failed to ingest")
    print(f"{name}: {info['chunk_count']} chunks from {len(corpus)} documents in {seconds:.0f} s", file=sys.stderr)
    return cid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", required=True, type=pathlib.Path)
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--out", type=pathlib.Path)
    args = ap.parse_args()

    corpus_all, _, _ = beir_eval.load_dataset(args.dataset)
    ids = sorted(corpus_all)
    random.Random(7).shuffle(ids)
    corpus = {d: corpus_all[d] for d in ids[:args.docs]}
    questions = []
    with open(args.dataset / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            questions.append(json.loads(line)["text"])
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="modulo-bench-cluster-"))
    results = {}

    # The embedded stack: one `modulo serve` with its defaults (SQLite, in-process HNSW and BM25,
    # in-process workers).
    proc_log = open(workdir / "embedded.log", "ab")
    port = cluster.free_port()
    eproc = subprocess.Popen([cluster.modulo_bin(), "serve", "--port", str(port), "--data-dir",
                              str(workdir / "embedded-data")], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=proc_log,
                             env={**os.environ, "MODULO_AUTH": "none", "MODULO_LOG_LEVEL": "warn",
                                  "MODULO_EMBEDDING_CACHE_SIZE": "0"})
    eurl = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if requests.get(eurl + "/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if eproc.poll() is not None:
                raise SystemExit(f"embedded modulo exited: see {workdir / 'embedded.log'}")
            time.sleep(0.1)
        ecid = ingest(eurl, corpus, "bench-embedded")
        results["embedded"] = measure("embedded", eurl, ecid, questions, {"server": lambda: [eproc.pid]}, args,
                                      workdir)
    finally:
        eproc.terminate()
        eproc.wait(timeout=60)

    # The scale-out stack. No read replica: searches read the collection state from the primary
    # anyway, and the stack stays within the machine's memory.
    stack = cluster.Cluster(workdir / "cluster", replica=False,
                            extra_env={"MODULO_LOG_LEVEL": "warn", "MODULO_ACCESS_LOG": "false",
                                       "MODULO_EMBEDDING_CACHE_SIZE": "0"})
    try:
        stack.start()
        ccid = ingest(stack.url, corpus, "bench-cluster")
        tiers = {t: (lambda t=t: stack.tier_pids()[t]) for t in ("nginx", "servers", "workers", "postgres", "redis",
                                                                 "milvus")}
        results["cluster"] = measure("cluster", stack.url, ccid, questions, tiers, args, workdir)
    finally:
        stack.stop()

    e, c = results["embedded"], results["cluster"]
    results["ratio_cluster_over_embedded"] = {"p50": round(c["p50_ms"] / e["p50_ms"], 3),
                                              "p99": round(c["p99_ms"] / e["p99_ms"], 3),
                                              "rps": round(c["rps"] / e["rps"], 4)}
    results["setup"] = {"documents": len(corpus), "connections": args.connections, "duration_s": args.duration,
                        "cores": os.cpu_count()}
    out = args.out or workdir / "results.json"
    out.write_text(json.dumps(results, indent=1))
    for d in ("embedded-data", "cluster"):  # keep the logs and the figures, not the data
        shutil.rmtree(workdir / d / "data" if d == "cluster" else workdir / d, ignore_errors=True)
    shutil.rmtree(workdir / "cluster" / "milvus", ignore_errors=True)
    print(f"figures: {out}", file=sys.stderr)
    print(f"| stack | req/s | p50 ms | p99 ms | non-2xx | CPU ms per request by tier |")
    print("|---|---|---|---|---|---|")
    for name, r in (("embedded (1 x serve)", e), ("scale-out via nginx", c)):
        tiers = ", ".join(f"{t} {v}" for t, v in r["cpu_ms_per_request"].items())
        print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['non_2xx']} | {tiers} |")
    ratio = results["ratio_cluster_over_embedded"]
    print(f"| scale-out / embedded | {ratio['rps']} | {ratio['p50']} | {ratio['p99']} | | |")


if __name__ == "__main__":
    main()
