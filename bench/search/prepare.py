#!/usr/bin/env python3
"""Loads a BEIR corpus into a running Modulo (once) and writes request bodies for wrk.

    prepare.py --url URL --dataset ../shared/datasets/scifact --out DIR

Writes DIR/collection_id and, for each mode, DIR/<mode>.jsonl: one /api/search body per line,
every question of the dataset (train and test queries: 1,109 distinct questions for SciFact).
All retrieval-only (no answer composed). Modes: hybrid, vector, keyword (cache off: every request does the full work) and cached (cache
on, 50 questions, so after the first round every request is a cache hit).
"""
import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "eval"))
import beir_eval  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--dataset", required=True, type=pathlib.Path)
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--top-k", type=int, default=10)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    client = beir_eval.Client(args.url)
    marker = args.out / "collection_id"
    cid = marker.read_text().strip() if marker.exists() else ""
    if cid and client.http.get(f"{args.url}/api/collections/{cid}", timeout=30).status_code != 200:
        cid = ""
    if not cid:
        corpus, _, _ = beir_eval.load_dataset(args.dataset)
        cid, info, failed, seconds = beir_eval.ingest(client, corpus, f"bench-{args.dataset.name}")
        print(f"ingested {info['chunk_count']} chunks in {seconds:.0f} s", file=sys.stderr)
        marker.write_text(cid)
    questions = []
    with open(args.dataset / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            questions.append(json.loads(line)["text"])
    for mode in ("hybrid", "vector", "keyword", "cached"):
        retriever = "hybrid" if mode == "cached" else mode
        use = questions[:50] if mode == "cached" else questions
        with open(args.out / f"{mode}.jsonl", "w", encoding="utf-8") as f:
            for q in use:
                f.write(json.dumps({"question": q, "collection_id": cid, "config_metadata": {
                    "top_k": args.top_k, "retriever": retriever, "use_cache": mode == "cached",
                    "retrieval_only": True}}) + "\n")
    print(cid)


if __name__ == "__main__":
    main()
