"""Answers in POST /api/search: generated answers with [n] citations from a language model (the
local protocol fake of tests/e2e/fakes/llm_providers.py, OpenAI flavour), the extractive fallback
when the model fails, Server-Sent Events ("stream": true) with and without a model, mid-stream
failures, client disconnects, and token accounting in /metrics.

The server is configured with MODULO_LLM_PROVIDER, MODULO_LLM_URL, MODULO_LLM_MODEL,
MODULO_LLM_API_KEY, MODULO_LLM_CONTEXT_TOKENS, MODULO_LLM_MAX_NEW_TOKENS,
MODULO_LLM_TIMEOUT_SECONDS and MODULO_LLM_MAX_RETRIES."""
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

import pytest
import requests

from ingest_util import create_collection, upload, wait_files_done

FAKE = pathlib.Path(__file__).resolve().parent / "fakes" / "llm_providers.py"

DOCS = {
    "volcano.md": b"# Volcanoes\n\nA volcano erupts when magma rises through the crust. Basaltic lava flows "
                  b"are runny; andesitic eruptions are explosive and throw out pumice and ash.\n",
    "bread.md": b"# Sourdough bread\n\nSourdough is leavened by a starter of wild yeast and lactobacilli. "
                b"Knead the dough, let it proof overnight, and bake it in a hot Dutch oven.\n",
    "orbit.md": b"# Orbital mechanics\n\nA satellite in low Earth orbit circles the planet every ninety minutes. "
                b"A Hohmann transfer moves a spacecraft between two circular orbits with two engine burns.\n",
}


@pytest.fixture(scope="module")
def fake_llm():
    proc = subprocess.Popen([sys.executable, str(FAKE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    if not line.startswith("PORT "):
        proc.kill()
        pytest.fail(f"the fake LLM server did not start: {line!r}")
    url = f"http://127.0.0.1:{int(line.split()[1])}"
    yield url
    proc.stdin.close()
    proc.terminate()
    proc.wait(timeout=10)


def llm_env(fake_url, **extra):
    env = {
        "MODULO_LLM_PROVIDER": "openai",
        "MODULO_LLM_URL": fake_url + "/v1",
        "MODULO_LLM_MODEL": "e2e-model",
        "MODULO_LLM_API_KEY": "sk-test",
        "MODULO_LLM_CONTEXT_TOKENS": "2048",
        "MODULO_LLM_MAX_NEW_TOKENS": "128",
        "MODULO_LLM_TIMEOUT_SECONDS": "2",
        "MODULO_LLM_MAX_RETRIES": "0",
    }
    env.update(extra)
    return env


def loaded(server):
    c = create_collection(server, "docs")
    r = upload(server, c["id"], list(DOCS.items()))
    assert r.status_code == 202, r.text
    files = wait_files_done(server, c["id"])
    assert all(f["status"] == "completed" for f in files), files
    return c["id"], {f["filename"]: f["id"] for f in files}


def ask(server, cid, question, stream=False, timeout=30, **top):
    body = {"question": question, "collection_id": cid, **top}
    if stream:
        body["stream"] = True
    return requests.post(server.url + "/api/search", json=body, timeout=timeout, stream=stream)


def events(resp):
    """Parses an SSE response into [(event, data as JSON)]."""
    out, name, data = [], None, []
    for raw in resp.iter_lines(decode_unicode=True):
        if raw == "":
            if name is not None:
                out.append((name, json.loads("\n".join(data))))
            name, data = None, []
        elif raw.startswith("event: "):
            name = raw[7:]
        elif raw.startswith("data: "):
            data.append(raw[6:])
    return out


@pytest.fixture
def llm_server(start_server, fake_llm):
    server = start_server(env=llm_env(fake_llm))
    cid, ids = loaded(server)
    # Fails loudly (never skips) when the binary does not read the MODULO_LLM_* settings.
    probe = ask(server, cid, "probe", answer_mode="generated")
    if probe.status_code == 501:
        pytest.fail("the server ignored MODULO_LLM_PROVIDER: the AnswerService is not wired into apps/modulo/main.cpp")
    assert probe.status_code == 200, probe.text
    return server, cid, ids


def test_generated_answer_cites_query_results(llm_server):
    server, cid, ids = llm_server
    # The fake answers "Echo: <last 8 words of the prompt>", so the question's markers come back.
    r = ask(server, cid, "how does a spacecraft change orbits? [1] [9]")
    assert r.status_code == 200, r.text
    body = r.json()
    meta = body["metadata"]
    assert meta["answer_type"] == "generated", meta
    assert body["answer"].startswith("Echo:") and "[1]" in body["answer"] and "[9]" not in body["answer"]
    assert meta["citations"][0]["n"] == 1
    assert meta["citations"][0]["document_id"] == body["query_results"][0]["chunk"]["document_id"] == ids["orbit.md"]
    assert meta["citations"][0]["chunk_id"] == body["query_results"][0]["chunk"]["chunk_id"]
    assert meta["invalid_citations"] == [9]
    assert meta["usage"]["prompt_tokens"] > 0 and meta["usage"]["completion_tokens"] > 0
    assert meta["llm"] == {"provider": "openai", "model": "e2e-model", "finish_reason": "stop"}
    stages = [s["stage"] for s in meta["stages"]]
    assert {"keyword", "retrieval", "context", "generate"} <= set(stages) and stages[-1] == "total"
    metrics = requests.get(server.url + "/metrics", timeout=10).text
    assert re.search(r'llm_tokens_used_total\{provider="openai",model="e2e-model",user_id="[^"]*"\} [1-9]', metrics)


def test_explicit_extractive_and_retrieval_only_do_not_call_the_model(llm_server):
    server, cid, _ = llm_server
    r = ask(server, cid, "how does a spacecraft change orbits?", answer_mode="extractive")
    assert r.status_code == 200 and r.json()["metadata"]["answer_type"] == "extractive"
    r = ask(server, cid, "how does a spacecraft change orbits?", config_metadata={"retrieval_only": True})
    assert r.status_code == 200 and r.json()["answer"] is None


def test_provider_failures_fall_back_to_the_extractive_answer(llm_server):
    server, cid, ids = llm_server
    for tag, code in (("ratelimit_always", "rate_limited"), ("slow", "deadline_exceeded"),
                      ("error500_once", "unavailable")):
        r = ask(server, cid, f"how does a spacecraft change orbits? [[{tag}:fb-{tag}]]")
        assert r.status_code == 200, r.text
        meta = r.json()["metadata"]
        assert meta["answer_type"] == "extractive", meta
        assert meta["generation_error"]["code"] == code
        assert "Hohmann" in r.json()["answer"] and meta["citations"][0]["document_id"] == ids["orbit.md"]
    # Asked for a generated answer explicitly: the failure is the response, never a 500.
    r = ask(server, cid, "orbits? [[ratelimit_always:strict-rl]]", answer_mode="generated")
    assert r.status_code == 429 and "rate limited" in r.json()["detail"]
    r = ask(server, cid, "orbits? [[context_length:strict-cl]]", answer_mode="generated")
    assert r.status_code == 503 and "context length" in r.json()["detail"]
    r = ask(server, cid, "orbits? [[slow:strict-slow]]", answer_mode="generated")
    assert r.status_code == 504


def test_stream_sends_stages_tokens_sources_usage_done(llm_server):
    server, cid, ids = llm_server
    with ask(server, cid, "how does a spacecraft change orbits? [1]", stream=True) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "text/event-stream"
        evs = events(r)
    names = [n for n, _ in evs]
    assert names[-3:] == ["sources", "usage", "done"], names
    assert "token" in names and names.index("stage") < names.index("token")
    stages = [d["stage"] for n, d in evs if n == "stage"]
    assert stages == ["retrieval", "context", "generate"]
    text = "".join(d["text"] for n, d in evs if n == "token")
    done = dict(evs)["done"]
    assert text == done["answer"] and text.startswith("Echo:")
    sources = dict(evs)["sources"]
    assert sources["citations"][0]["document_id"] == ids["orbit.md"]
    assert sources["query_results"][0]["chunk"]["document_id"] == ids["orbit.md"]
    assert dict(evs)["usage"]["prompt_tokens"] > 0
    assert done["metadata"]["answer_type"] == "generated"


def test_a_stream_that_breaks_mid_answer_ends_with_an_error_event(llm_server):
    server, cid, _ = llm_server
    started = time.monotonic()
    with ask(server, cid, "orbits? [[truncate:mid-tr]]", stream=True) as r:
        evs = events(r)
    assert time.monotonic() - started < 10
    names = [n for n, _ in evs]
    assert "token" in names and names[-1] == "error", names
    assert "stopped" in evs[-1][1]["detail"]
    # A stall longer than the timeout: the same, not a hang.
    with ask(server, cid, "orbits? [[stall:mid-stall]]", stream=True) as r:
        evs = events(r)
    assert evs[-1][0] == "error", evs


def test_a_client_that_disconnects_cancels_the_model_call(llm_server):
    server, cid, _ = llm_server
    body = json.dumps({"question": "orbits? [[drip:gone]]", "collection_id": cid, "stream": True}).encode()
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
              + str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while got.count(b"event: token") < 3:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    s.close()
    # The drip would last 10 s; the cancelled call is counted (and its tokens) well before that.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        metrics = requests.get(server.url + "/metrics", timeout=10).text
        if 'llm_requests_total{provider="openai",outcome="cancelled"} 1' in metrics:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the model call was not cancelled: " + metrics[-2000:])


def test_bad_answer_fields_are_400(llm_server):
    server, cid, _ = llm_server
    r = requests.post(server.url + "/api/search", json={"question": "q", "collection_id": cid, "stream": "yes"},
                      timeout=10)
    assert r.status_code == 400 and "stream" in r.json()["detail"]
    r = ask(server, cid, "q", answer_mode="poetry")
    assert r.status_code == 400 and "answer_mode" in r.json()["detail"]


def test_streaming_without_a_model_sends_the_extractive_answer(server):
    cid, ids = loaded(server)
    with ask(server, cid, "how does a spacecraft change orbits?", stream=True) as r:
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream"
        evs = events(r)
    names = [n for n, _ in evs]
    assert names[-3:] == ["sources", "usage", "done"] and names.count("token") == 1, names
    assert "stage" in names
    token = dict(evs)["token"]["text"]
    assert "Hohmann" in token and "[1]" in token
    assert dict(evs)["done"]["metadata"]["answer_type"] == "extractive"
    assert dict(evs)["sources"]["citations"][0]["document_id"] == ids["orbit.md"]
    # Explicitly generated without a model: 501, a clear message.
    r = ask(server, cid, "orbits?", answer_mode="generated")
    assert r.status_code in (400, 501), r.text
    # Errors before the stream starts are plain responses.
    r = ask(server, "no-such-collection", "orbits?", stream=True)
    assert r.status_code in (200, 404)
    if r.status_code == 200:
        assert events(r)[-1][0] == "error"


def test_chain_of_thought_answers_in_steps(llm_server):
    server, cid, ids = llm_server
    r = ask(server, cid, "Compare volcano eruptions and sourdough proofing", config_metadata={"cot_enabled": True})
    assert r.status_code == 200, r.text
    body = r.json()
    cot = body["cot_output"]
    assert cot["original_question"] == "Compare volcano eruptions and sourdough proofing"
    assert len(cot["reasoning_steps"]) >= 2 and cot["final_answer"] == body["answer"]
    for step in cot["reasoning_steps"]:
        assert step["question"] and step["intermediate_answer"] and "execution_time" in step
    sources = {a["document_id"] for s in cot["reasoning_steps"] for a in s["source_attributions"]}
    assert {ids["volcano.md"], ids["bread.md"]} <= sources  # each step searched for itself
    assert body["metadata"]["mode"] == "chain_of_thought" and body["metadata"]["usage"]["prompt_tokens"] > 0
    # Every [n] of the answer names a merged query_results entry.
    for c in body["metadata"]["citations"]:
        assert body["query_results"][c["n"] - 1]["chunk"]["chunk_id"] == c["chunk_id"]
    # Explicitly off: a comparison is answered in one pass.
    r = ask(server, cid, "Compare volcano eruptions and sourdough proofing", config_metadata={"cot_disabled": True})
    assert r.json().get("cot_output") is None
    # Steps hidden on request.
    r = ask(server, cid, "What is a volcano? What is sourdough?",
            config_metadata={"show_cot_steps": False, "cot_enabled": True})
    assert "reasoning_steps" not in r.json()["cot_output"]


def test_reranking_reorders_and_cuts_the_passages(llm_server):
    server, cid, _ = llm_server
    r = ask(server, cid, "how does a spacecraft change orbits?", config_metadata={"top_k_rerank": 2, "top_k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["query_results"]) == 2 and all("rerank_score" in q for q in body["query_results"])
    assert body["metadata"]["rerank"]["top_k"] == 2
    assert "rerank" in [s["stage"] for s in body["metadata"]["stages"]]
    r = ask(server, cid, "how does a spacecraft change orbits?",
            config_metadata={"top_k_rerank": 2, "disable_rerank": True, "top_k": 3})
    assert len(r.json()["query_results"]) == 3


def test_a_chain_of_thought_never_starves_the_searches_it_waits_for(start_server, fake_llm):
    # With one blocking thread a chain of thought (which holds one while its steps search) could
    # never finish: the question is answered in one pass instead, and says so.
    server = start_server(env=llm_env(fake_llm, MODULO_BLOCKING_THREADS="1"))
    cid, _ = loaded(server)
    r = ask(server, cid, "Compare volcano eruptions and sourdough proofing", config_metadata={"cot_enabled": True})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["answer_type"] == "generated" and "busy" in r.json()["metadata"]["cot_skipped"]
