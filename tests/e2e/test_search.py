"""POST /api/search end to end: hybrid retrieval, its shape, filters, the result cache, bad input,
and indexes that follow the store (deletes, reindex, a separate worker process, restarts)."""
import subprocess
import time

import requests

from conftest import modulo_bin
from ingest_util import create_collection, files_of, upload, wait_files_done

DOCS = {
    "volcano.md": b"# Volcanoes\n\nA volcano erupts when magma rises through the crust. Basaltic lava flows "
                  b"are runny; andesitic eruptions are explosive and throw out pumice and ash.\n",
    "bread.md": b"# Sourdough bread\n\nSourdough is leavened by a starter of wild yeast and lactobacilli. "
                b"Knead the dough, let it proof overnight, and bake it in a hot Dutch oven.\n",
    "orbit.md": b"# Orbital mechanics\n\nA satellite in low Earth orbit circles the planet every ninety minutes. "
                b"A Hohmann transfer moves a spacecraft between two circular orbits with two engine burns.\n",
}


def search(server, cid, question, **config):
    body = {"question": question, "collection_id": cid}
    if config:
        body["config_metadata"] = config
    return requests.post(server.url + "/api/search", json=body, timeout=60)


def loaded(server, name="docs", docs=DOCS, **extra):
    c = create_collection(server, name, **extra)
    r = upload(server, c["id"], list(docs.items()))
    assert r.status_code == 202, r.text
    files = wait_files_done(server, c["id"])
    assert all(f["status"] == "completed" for f in files), files
    return c["id"], {f["filename"]: f["id"] for f in files}


def sources(resp):
    return [r["chunk"]["metadata"]["source"] for r in resp.json()["query_results"]]


def test_hybrid_search_finds_the_right_document_with_rag_modulo_shape(server):
    cid, ids = loaded(server)
    r = search(server, cid, "  how does a   spacecraft change orbits? ")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metadata"]["answer_type"] == "extractive"
    assert "Hohmann transfer" in body["answer"] and "[1]" in body["answer"]
    assert body["metadata"]["citations"][0]["document_id"] == ids["orbit.md"]
    assert body["rewritten_query"] == "how does a spacecraft change orbits?"
    assert body["status"] == "completed"
    assert sources(r)[0] == "orbit.md"
    top = body["query_results"][0]
    assert top["chunk"]["document_id"] == ids["orbit.md"]
    assert top["chunk"]["chunk_id"].isdigit()
    meta = top["chunk"]["metadata"]
    assert {"source", "page_number", "chunk_number"} <= set(meta)
    assert "Hohmann" in top["chunk"]["text"]
    assert top["score"] > 0 and "vector" in top["scores"] and "keyword" in top["scores"]
    assert body["documents"][0] == {"document_id": ids["orbit.md"], "document_name": "orbit.md"}
    stages = {s["stage"] for s in body["metadata"]["stages"]}
    assert {"prepare", "sync", "keyword", "embed", "vector", "fusion", "hydrate", "answer", "total"} <= stages
    only = search(server, cid, "how does a spacecraft change orbits?", retrieval_only=True).json()
    assert only["answer"] is None and only["metadata"]["mode"] == "retrieval"
    assert only["query_results"] == body["query_results"]
    assert 0 < body["execution_time"] < 5
    scores = [q["score"] for q in body["query_results"]]
    assert scores == sorted(scores, reverse=True)


def test_each_retriever_mode(server):
    cid, _ = loaded(server)
    # Keyword: exact terms; nothing for words that appear nowhere.
    r = search(server, cid, "lactobacilli starter", retriever="keyword")
    assert r.status_code == 200 and sources(r)[0] == "bread.md"
    assert set(r.json()["query_results"][0]["scores"]) == {"keyword"}
    assert search(server, cid, "zyxwvut qqqq", retriever="keyword").json()["query_results"] == []
    # Vector: meaning without shared words.
    r = search(server, cid, "molten rock bursting out of a mountain", retriever="vector")
    assert sources(r)[0] == "volcano.md"
    assert set(r.json()["query_results"][0]["scores"]) == {"vector"}
    # Weighted fusion and top_k.
    r = search(server, cid, "baking", fusion="weighted", vector_weight=0.7, top_k=2)
    assert len(r.json()["query_results"]) == 2
    assert r.json()["metadata"]["retrieval"]["fusion"] == "weighted"


def test_filters_restrict_results(server):
    cid, ids = loaded(server)
    r = search(server, cid, "orbit", filters={"document_id": [ids["bread.md"]]})
    assert r.status_code == 200
    assert set(sources(r)) == {"bread.md"}
    r = search(server, cid, "orbit", filters={"source": "volcano.md"})
    assert set(sources(r)) == {"volcano.md"}
    r = search(server, cid, "orbit", filters={"file_type": ["markdown", "md"]})
    assert len(sources(r)) == 3
    r = search(server, cid, "orbit", filters={"document_id": "no-such-doc"})
    assert r.status_code == 200 and r.json()["query_results"] == []
    r = search(server, cid, "orbit", filters={"page_number": {"gte": 2}})
    assert r.json()["query_results"] == []  # Markdown has no pages beyond the first
    r = search(server, cid, "orbit", filters={"author": "x"})
    assert r.status_code == 400 and "'author'" in r.json()["detail"]


def test_bad_input_gets_clear_errors(server):
    cid, _ = loaded(server)
    cases = [
        ({"question": "", "collection_id": cid}, 400, "empty"),
        ({"question": " \n\t ", "collection_id": cid}, 400, "empty"),
        ({"collection_id": cid}, 400, "question"),
        ({"question": "x"}, 400, "collection_id"),
        ({"question": "x", "collection_id": cid, "config_metadata": {"top_k": 0}}, 400, "top_k"),
        ({"question": "x", "collection_id": cid, "config_metadata": {"top_k": 10000}}, 400, "MAX_TOP_K"),
        ({"question": "x", "collection_id": cid, "config_metadata": {"retriever": "magic"}}, 400, "retriever"),
        ({"question": "x", "collection_id": "00000000-0000-0000-0000-000000000000"}, 404, "not found"),
    ]
    for body, status, words in cases:
        r = requests.post(server.url + "/api/search", json=body, timeout=30)
        assert r.status_code == status, (body, r.text)
        assert words in r.json()["detail"], (body, r.text)
    r = requests.post(server.url + "/api/search", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    # A 100 KB question is cut to what the model reads and answered.
    r = search(server, cid, "volcano magma " * 8000)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["question_truncated"] is True
    assert sources(r)[0] == "volcano.md"


def test_results_are_cached_until_the_collection_changes(server):
    cid, ids = loaded(server)
    first = search(server, cid, "sourdough starter")
    assert first.json()["metadata"]["cache_hit"] is False
    second = search(server, cid, "sourdough   starter")  # the same question once normalised
    assert second.json()["metadata"]["cache_hit"] is True
    assert second.json()["query_results"] == first.json()["query_results"]
    assert second.json()["answer"] == first.json()["answer"]
    # A hit carries its own time and stages (cache lookup, total), not the first search's.
    hit = second.json()
    assert isinstance(hit["execution_time"], float) and 0 < hit["execution_time"] < first.json()["execution_time"] + 1
    stages = [s["stage"] for s in hit["metadata"]["stages"]]
    assert "cache" in stages and stages[-1] == "total" and "embed" not in stages
    assert "\\u0001" not in second.text and "\x01" not in second.text
    assert search(server, cid, "sourdough starter", use_cache=False).json()["metadata"]["cache_hit"] is False
    # A write bumps the collection version: nothing stale is served.
    r = upload(server, cid, [("rye.md", b"# Rye\n\nA rye sourdough starter needs a warm kitchen.\n")])
    assert r.status_code == 202
    wait_files_done(server, cid)
    third = search(server, cid, "sourdough starter")
    assert third.json()["metadata"]["cache_hit"] is False
    assert "rye.md" in sources(third)
    metrics = requests.get(server.url + "/metrics", timeout=10).text
    assert 'rag_search_cache_requests_total{result="hit"}' in metrics
    assert 'rag_search_latency_seconds_count{stage="total"}' in metrics
    assert 'vector_search_duration_seconds_count{backend="' in metrics


def test_deleted_documents_leave_search_at_once(server):
    cid, ids = loaded(server)
    assert "volcano.md" in sources(search(server, cid, "magma lava eruption"))
    r = requests.delete(f"{server.url}/api/collections/{cid}/documents/{ids['volcano.md']}", timeout=30)
    assert r.status_code == 204
    for retriever in ("vector", "keyword", "hybrid"):
        assert "volcano.md" not in sources(search(server, cid, "magma lava eruption", retriever=retriever))
    r = requests.delete(f"{server.url}/api/collections/{cid}", timeout=30)
    assert r.status_code == 204
    assert search(server, cid, "magma").status_code == 404


def test_empty_and_processing_collections(start_server):
    server = start_server("--worker-concurrency", "0")
    c = create_collection(server, "empty")
    r = search(server, c["id"], "anything at all")
    assert r.status_code == 200 and r.json()["query_results"] == []
    upload(server, c["id"], [("orbit.md", DOCS["orbit.md"])])
    r = search(server, c["id"], "orbit")
    assert r.status_code == 200
    assert r.json()["query_results"] == [] and r.json()["status"] == "processing"


def test_a_search_during_a_reindex_reads_the_old_generation(start_server, tmp_path):
    server = start_server()
    cid, _ = loaded(server)
    server.stop()
    # Without workers the reindex task waits, so the collection stays mid-reindex.
    server = start_server("--worker-concurrency", "0", name="data")
    r = requests.post(f"{server.url}/api/collections/{cid}/reindex", json={"chunking": {"chunk_tokens": 64}})
    assert r.status_code == 202, r.text
    got = requests.get(f"{server.url}/api/collections/{cid}", timeout=30).json()
    assert got["reindexing"] is True
    r = search(server, cid, "Hohmann transfer")
    assert r.status_code == 200 and sources(r)[0] == "orbit.md"
    assert r.json()["metadata"]["generation"] == 1


def test_indexes_follow_a_separate_worker_and_survive_restarts(start_server):
    server = start_server("--worker-concurrency", "0")
    c = create_collection(server)
    search(server, c["id"], "warm the index while empty")
    upload(server, c["id"], list(DOCS.items()))
    worker = subprocess.Popen([modulo_bin(), "worker", "--concurrency", "2", "--data-dir", str(server.data_dir)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        files = wait_files_done(server, c["id"], timeout=120)
        assert all(f["status"] == "completed" for f in files)
    finally:
        worker.terminate()
        worker.communicate(timeout=30)
    # The server never saw the worker's writes: the next search replays them from the store.
    assert sources(search(server, c["id"], "Hohmann transfer orbit"))[0] == "orbit.md"
    server.stop()
    server = start_server(name="data")
    assert sources(search(server, c["id"], "sourdough starter"))[0] == "bread.md"


def test_collections_keep_their_own_retrieval_settings(server):
    cid, _ = loaded(server, retrieval={"retriever": "keyword", "top_k": 2, "hnsw": {"m": 8, "ef_search": 32}})
    got = requests.get(f"{server.url}/api/collections/{cid}", timeout=30).json()
    assert got["retrieval"]["retriever"] == "keyword" and got["retrieval"]["hnsw"] == {"m": 8, "ef_search": 32}
    r = search(server, cid, "sourdough orbit volcano")
    assert r.json()["metadata"]["retrieval"]["retriever"] == "keyword"
    assert len(r.json()["query_results"]) == 2
    r = search(server, cid, "molten rock", retriever="vector")  # a request overrides its collection
    assert r.json()["metadata"]["retrieval"]["retriever"] == "vector" and sources(r)[0] == "volcano.md"
    bad = requests.post(server.url + "/api/collections", json={"name": "x", "retrieval": {"hnsw": {"m": 1000}}})
    assert bad.status_code == 400 and "retrieval.hnsw.m" in bad.json()["detail"]
    bad = requests.post(server.url + "/api/collections", json={"name": "x", "retrieval": {"fusion": "max"}})
    assert bad.status_code == 400 and "fusion" in bad.json()["detail"]


def test_hierarchical_collections_return_each_hit_with_its_parent(server):
    long_doc = ("# Rivers\n\n" + " ".join(
        f"Sentence {i} describes how the river delta number {i} deposits silt and sand near the coast."
        for i in range(60))).encode()
    c = create_collection(server, "tree", chunking={"strategy": "hierarchical", "chunk_tokens": 64,
                                                    "parent_tokens": 256})
    assert upload(server, c["id"], [("rivers.md", long_doc)]).status_code == 202
    assert wait_files_done(server, c["id"])[0]["status"] == "completed"
    r = search(server, c["id"], "delta number 17 deposits silt")
    assert r.status_code == 200, r.text
    top = r.json()["query_results"][0]["chunk"]
    assert "parent" in top, top
    assert top["text"] in top["parent"]["text"] or len(top["parent"]["text"]) > len(top["text"])
    plain = search(server, c["id"], "delta number 17 deposits silt", expand_parents=False).json()
    assert "parent" not in plain["query_results"][0]["chunk"]
