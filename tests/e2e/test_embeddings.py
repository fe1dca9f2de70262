"""POST /v1/embeddings: the OpenAI format, driven by raw HTTP and by the official openai SDK."""
import base64
import concurrent.futures
import math
import pathlib
import struct

import openai
import pytest
import requests


def embed(server, **body):
    return requests.post(server.url + "/v1/embeddings", json=body, timeout=60)


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b))


def test_single_and_batch_inputs_agree_and_are_unit_length(server):
    one = embed(server, input="The cat sat on the mat.", model="all-MiniLM-L6-v2")
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["object"] == "list" and body["model"] == "all-MiniLM-L6-v2"
    v = body["data"][0]["embedding"]
    assert len(v) == 384 and abs(norm(v) - 1) < 1e-4
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 2
    many = embed(server, input=["The cat sat on the mat.", "Stock markets fell sharply today."]).json()
    assert [d["index"] for d in many["data"]] == [0, 1]
    assert cosine(many["data"][0]["embedding"], v) > 0.9999
    assert cosine(many["data"][0]["embedding"], many["data"][1]["embedding"]) < 0.5


def test_semantics_similar_sentences_are_closer(server):
    d = embed(server, input=["How do I bake bread?", "What is a recipe for baking a loaf?",
                             "The GPU drivers crashed again."]).json()["data"]
    bread, loaf, gpu = (x["embedding"] for x in d)
    assert cosine(bread, loaf) > cosine(bread, gpu) + 0.3


def test_base64_encoding_matches_float(server):
    f = embed(server, input="base64 please").json()["data"][0]["embedding"]
    b = embed(server, input="base64 please", encoding_format="base64").json()["data"][0]["embedding"]
    decoded = struct.unpack("<384f", base64.b64decode(b))
    assert max(abs(x - y) for x, y in zip(f, decoded)) < 1e-6


def test_official_openai_sdk_as_client(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    r = client.embeddings.create(model="all-MiniLM-L6-v2", input=["first text", "second text"])
    assert len(r.data) == 2 and len(r.data[0].embedding) == 384
    assert r.usage.prompt_tokens > 0
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="all-MiniLM-L6-v2", input="")
    assert "empty" in str(e.value)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-model", input="x")


def test_bad_inputs_get_openai_errors(server):
    cases = [
        ({"input": ""}, "empty"),
        ({"input": []}, "empty array"),
        ({"input": ["ok", ""]}, "input[1]"),
        ({"input": [1, 2, 3]}, "token-id"),
        ({"input": 42}, "string or an array"),
        ({}, "'input' is required"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "dimensions": 12}, "dimensions"),
    ]
    for body, needle in cases:
        r = embed(server, **body)
        assert r.status_code == 400, (body, r.text)
        err = r.json()["error"]
        assert needle in err["message"], (body, err)
        assert err["type"] == "invalid_request_error"
    r = requests.post(server.url + "/v1/embeddings", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "invalid JSON at byte" in r.json()["error"]["message"]
    r = requests.post(server.url + "/v1/embeddings", data="input=x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


def test_invalid_utf8_is_replaced_not_crashed(server):
    raw = b'{"input": "caf\xc3\xa9 \xff\xfe broken"}'
    r = requests.post(server.url + "/v1/embeddings", data=raw, headers={"Content-Type": "application/json"})
    # JSON with invalid UTF-8 is rejected by the JSON parser with a clear message; the server stays up.
    assert r.status_code == 400
    assert requests.get(server.url + "/health").status_code == 200


def test_one_megabyte_text_is_truncated_and_answered(server):
    r = embed(server, input="word " * 200_000)
    assert r.status_code == 200
    assert r.json()["usage"]["prompt_tokens"] <= 256


def test_large_batch_is_answered(server):
    texts = [f"sentence number {i} about topic {i % 17}" for i in range(2000)]
    r = embed(server, input=texts)
    assert r.status_code == 200
    assert len(r.json()["data"]) == 2000


def test_concurrent_single_queries_are_micro_batched(server):
    texts = [f"concurrent query {i}" for i in range(64)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda t: embed(server, input=t), texts))
    assert all(r.status_code == 200 for r in results)
    metrics = requests.get(server.url + "/metrics").text
    batches = float(metrics.split("\nmodulo_embedding_query_batches_total ")[1].split()[0])
    batched = float(metrics.split("\nmodulo_embedding_query_batched_requests_total ")[1].split()[0])
    assert batched >= 64 and batches < batched, "concurrent queries should share batches"


def test_cache_serves_repeated_texts(server):
    embed(server, input="cache me")
    embed(server, input="cache me")
    metrics = requests.get(server.url + "/metrics").text
    assert float(metrics.split("\nmodulo_embedding_cache_hits_total ")[1].split()[0]) >= 1


def test_missing_model_stops_start_up_with_instructions(tmp_path):
    import subprocess

    from conftest import modulo_bin

    r = subprocess.run([modulo_bin(), "serve", "--port", "0", "--data-dir", str(tmp_path / "d"),
                        "--model-dir", str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "fetch-model.sh" in r.stderr


def test_embedder_none_serves_without_a_model(start_server):
    s = start_server("--embedder", "none")
    assert requests.post(s.url + "/v1/embeddings", json={"input": "x"}).status_code == 404
    assert "embedding" not in requests.get(s.url + "/api/health").json()["components"]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_resident_memory_stays_under_150_mb_with_the_model_loaded(start_server, precision):
    # The whole server, at its peak since start-up (VmHWM): loading and checking the model,
    # lone and concurrent questions, and batches of long passages as ingestion sends them.
    s = start_server("--embed-precision", precision, name=f"rss-{precision}")
    for i in range(20):
        assert embed(s, input=f"question {i} about vitamin D and bone density").status_code == 200
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert all(r.status_code == 200 for r in pool.map(lambda i: embed(s, input=f"concurrent {i}"), range(64)))
        passages = [[f"passage {i}.{j} " + "word " * 200 for j in range(32)] for i in range(8)]
        assert all(r.status_code == 200 for r in pool.map(lambda p: embed(s, input=p), passages))
    status = pathlib.Path(f"/proc/{s.proc.pid}/status").read_text()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    assert peak_kb <= 150 * 1024, f"peak resident set {peak_kb / 1024:.1f} MB with {precision} embeddings"
