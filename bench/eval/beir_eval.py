#!/usr/bin/env python3
"""Retrieval quality on a BEIR-format dataset, through Modulo's public HTTP API only.

Loads corpus.jsonl, queries.jsonl and qrels/test.tsv; uploads every corpus document into a fresh
collection (one Markdown file per document: "# title" then the text, named <doc id>.md); waits
until every file is processed; runs every test query with retriever vector, keyword and hybrid
(top_k 100, cache off); and prints nDCG@10 and Recall@100 per retriever, at document level: a
chunk hit counts for its document, each document once, best rank first.

    bench/eval/beir_eval.py --dataset ../shared/datasets/scifact --url http://127.0.0.1:8000
    bench/eval/beir_eval.py --dataset ../shared/datasets/scifact --binary build/modulo   # starts a server

Writes the figures as JSON with --out.
"""
import argparse
import concurrent.futures
import json
import math
import os
import pathlib
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import requests

RETRIEVERS = ("vector", "keyword", "hybrid")


def load_dataset(folder: pathlib.Path, split: str = "test"):
    corpus = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            corpus[str(d["_id"])] = (d.get("title") or "", d.get("text") or "")
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            queries[str(q["_id"])] = q["text"]
    qrels = {}
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        for i, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if i == 0 and not parts[-1].lstrip("-").isdigit():
                continue  # header
            qid, did, score = parts[0], parts[1], int(parts[2])
            qrels.setdefault(qid, {})[did] = score
    queries = {qid: queries[qid] for qid in qrels if qid in queries}
    return corpus, queries, qrels


def ndcg_at(ranked, rels, k=10):
    dcg = sum((2 ** rels.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rels.values(), reverse=True)[:k]
    idcg = sum((2 ** r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked, rels, k=100):
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def documents_of(response):
    """Document ids in rank order, each once (the file name without its extension)."""
    seen, ranked = set(), []
    for r in response["query_results"]:
        source = r["chunk"]["metadata"]["source"]
        doc = source.rsplit(".", 1)[0]
        if doc not in seen:
            seen.add(doc)
            ranked.append(doc)
    return ranked


class Client:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.http = requests.Session()

    def create_collection(self, name, chunking=None):
        body = {"name": name}
        if chunking:
            body["chunking"] = chunking
        r = self.http.post(self.url + "/api/collections", json=body, timeout=30)
        r.raise_for_status()
        return r.json()["id"]

    def upload(self, cid, files):
        r = self.http.post(self.url + f"/api/collections/{cid}/documents",
                           files=[("files", (name, data, "text/markdown")) for name, data in files], timeout=600)
        r.raise_for_status()
        return r.json()

    def wait_processed(self, cid, expected, timeout_s, progress=True):
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            c = self.http.get(self.url + f"/api/collections/{cid}", timeout=60).json()
            done = sum(1 for f in c["files"] if f["status"] in ("completed", "failed"))
            failed = [f for f in c["files"] if f["status"] == "failed"]
            if progress and done != last:
                print(f"  processed {done}/{expected} files, {c['chunk_count']} chunks", file=sys.stderr)
                last = done
            if done >= expected:
                return c, failed
            time.sleep(2)
        raise TimeoutError(f"collection {cid} not processed within {timeout_s} s")

    def search(self, cid, question, retriever, top_k=100):
        r = self.http.post(self.url + "/api/search", json={
            "question": question, "collection_id": cid,
            "config_metadata": {"top_k": top_k, "retriever": retriever, "use_cache": False}}, timeout=60)
        r.raise_for_status()
        return r.json()


def ingest(client, corpus, name, batch=200, chunking=None):
    cid = client.create_collection(name, chunking)
    ids = sorted(corpus)
    started = time.monotonic()
    for i in range(0, len(ids), batch):
        files = []
        for did in ids[i:i + batch]:
            title, text = corpus[did]
            body = (f"# {title}\n\n{text}\n" if title else f"{text}\n").encode("utf-8")
            files.append((f"{did}.md", body))
        client.upload(cid, files)
    info, failed = client.wait_processed(cid, len(ids), timeout_s=7200)
    return cid, info, failed, time.monotonic() - started


def evaluate(client, cid, queries, qrels, retrievers=RETRIEVERS, threads=4):
    results = {}
    for retriever in retrievers:
        def run(item):
            qid, text = item
            t = time.monotonic()
            resp = client_for_thread().search(cid, text, retriever)
            return qid, documents_of(resp), time.monotonic() - t

        local = {}

        def client_for_thread():
            import threading
            tid = threading.get_ident()
            if tid not in local:
                local[tid] = Client(client.url)
            return local[tid]

        ndcgs, recalls, latencies = [], [], []
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for qid, ranked, seconds in pool.map(run, sorted(queries.items())):
                ndcgs.append(ndcg_at(ranked, qrels[qid], 10))
                recalls.append(recall_at(ranked, qrels[qid], 100))
                latencies.append(seconds)
        latencies.sort()
        results[retriever] = {
            "ndcg@10": round(sum(ndcgs) / len(ndcgs), 4),
            "recall@100": round(sum(recalls) / len(recalls), 4),
            "queries": len(ndcgs),
            "latency_p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        }
    return results


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, data_dir, extra_args=()):
    port = free_port()
    log = open(pathlib.Path(data_dir).parent / "modulo-eval.log", "wb")
    env = dict(os.environ, MODULO_AUTH="none")  # one local user on loopback
    proc = subprocess.Popen([binary, "serve", "--port", str(port), "--data-dir", str(data_dir), *extra_args],
                            stdout=subprocess.DEVNULL, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"modulo exited with {proc.returncode}")
        try:
            if requests.get(url + "/ready", timeout=1).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("modulo did not become ready")


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, type=pathlib.Path)
    ap.add_argument("--url", help="a running Modulo server")
    ap.add_argument("--binary", help="start this modulo binary on a fresh data directory instead")
    ap.add_argument("--server-arg", action="append", default=[], help="extra `modulo serve` argument (repeatable)")
    ap.add_argument("--retrievers", default=",".join(RETRIEVERS))
    ap.add_argument("--out", type=pathlib.Path, help="write the figures here as JSON")
    ap.add_argument("--threads", type=int, default=4, help="concurrent queries")
    args = ap.parse_args()
    if bool(args.url) == bool(args.binary):
        ap.error("give exactly one of --url and --binary")

    corpus, queries, qrels = load_dataset(args.dataset)
    print(f"{args.dataset.name}: {len(corpus)} documents, {len(queries)} test queries", file=sys.stderr)
    proc = tmp = None
    try:
        if args.binary:
            tmp = tempfile.mkdtemp(prefix="modulo-eval-")
            proc, url = start_server(args.binary, pathlib.Path(tmp) / "data", args.server_arg)
        else:
            url = args.url
        client = Client(url)
        cid, info, failed, seconds = ingest(client, corpus, f"{args.dataset.name}-{int(time.time())}")
        print(f"ingested {len(corpus)} documents into {info['chunk_count']} chunks in {seconds:.0f} s "
              f"({len(failed)} failed)", file=sys.stderr)
        results = evaluate(client, cid, queries, qrels, args.retrievers.split(","), args.threads)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    report = {"dataset": args.dataset.name, "documents": len(corpus), "chunks": info["chunk_count"],
              "failed_files": len(failed), "ingest_seconds": round(seconds, 1), "machine": machine(),
              "results": results}
    print(f"\n{args.dataset.name} ({len(queries)} test queries, {info['chunk_count']} chunks; {report['machine']})")
    print(f"{'retriever':<10} {'nDCG@10':>8} {'Recall@100':>11} {'p50 ms':>8}")
    for name, r in results.items():
        print(f"{name:<10} {r['ndcg@10']:>8.4f} {r['recall@100']:>11.4f} {r['latency_p50_ms']:>8.2f}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
