"""Retrieval quality regression check on SciFact (BEIR test split), through the public API.

The long tier of the suite (`-m long`; a few minutes: the whole corpus is embedded). It ingests
the 5,183 abstracts into a fresh server with the default model and settings, runs the 300 test
queries per retriever and holds the bars of bench/eval/README.md, so retrieval quality cannot
silently drop.
"""
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "eval"))
import beir_eval  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "scifact"
BARS = {"hybrid": 0.70, "keyword": 0.66, "vector": 0.63}


@pytest.mark.long
def test_scifact_ndcg_at_10_holds_the_bars(server):
    if not (DATASET / "corpus.jsonl").exists():
        pytest.fail(f"SciFact is missing at {DATASET}")
    corpus, queries, qrels = beir_eval.load_dataset(DATASET)
    client = beir_eval.Client(server.url)
    cid, info, failed, _ = beir_eval.ingest(client, corpus, "scifact")
    assert not failed, failed[:3]
    results = beir_eval.evaluate(client, cid, queries, qrels)
    print(results)
    for retriever, bar in BARS.items():
        assert results[retriever]["ndcg@10"] >= bar, (retriever, results)
        assert results[retriever]["queries"] == 300
