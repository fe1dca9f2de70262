"""Generated answers from a real language model: a local OpenAI-compatible server
(tests/services/llama.sh: llama-cpp-python's server with SmolLM2-135M-Instruct) behind
MODULO_LLM_PROVIDER=openai, where test_answers.py uses a protocol fake.

The long tier (`-m long`): `make llm-deps` builds the model server once per machine (minutes);
when it is missing or does not start, these tests fail, they never skip. The model is tiny, so
the tests hold the protocol and the accounting, not the quality of its answers: the answer is
non-empty, the token counts of a whole answer come from the server, citations (if the model
writes any) point at retrieved passages, streams are well formed, a client that goes away and a
model server that dies leave Modulo healthy.
"""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import ROOT, Server
from ingest_util import create_collection, upload, wait_files_done
from test_answers import ask as answers_ask, events  # noqa: F401  (events: SSE parsing)

pytestmark = pytest.mark.long

LLAMA_SH = ROOT / "tests" / "services" / "llama.sh"
MAX_NEW_TOKENS = 64

DOCS = {
    "lighthouse.md": b"# Kestrel Point lighthouse\n\nThe Kestrel Point lighthouse was painted teal in 1987 by its "
                     b"keeper, Ottilie Varga. Its lamp flashes three times every twenty seconds.\n",
    "orchard.md": b"# Marrowby orchard\n\nThe Marrowby orchard grows a pear called Silver Nutmeg. The pears are "
                  b"picked in the second week of October and stored in a cellar of granite.\n",
    "ferry.md": b"# Duskwater ferry\n\nThe Duskwater ferry crosses the lake in forty-two minutes. It carries "
                b"eleven cars and is named after a heron called Pim.\n",
}
QUESTION = "What colour was the Kestrel Point lighthouse painted, and by whom?"
LONG_QUESTION = ("Describe the Kestrel Point lighthouse, the Marrowby orchard and the Duskwater ferry in "
                 "detail, one paragraph each.")


class LlamaServer:
    """A model server started with tests/services/llama.sh in its own directory."""

    def __init__(self, directory: pathlib.Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            out = subprocess.run([str(LLAMA_SH), "start", str(self.dir)], capture_output=True, text=True,
                                 timeout=240)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail("tests/services/llama.sh start did not finish within 240 s", pytrace=False)
        if out.returncode != 0:
            pytest.fail("the model server did not start (build it with `make llm-deps` or "
                        f"`tests/services/llama.sh build`):\n{out.stderr}{out.stdout}", pytrace=False)
        self.url = out.stdout.strip().splitlines()[-1]
        self.env = dict(line.split("=", 1) for line in (self.dir / "llama.env").read_text().splitlines() if line)
        self.pgid = int((self.dir / "llama.pid").read_text())

    def signal(self, sig):
        os.killpg(self.pgid, sig)

    def dead(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
            return False
        except ProcessLookupError:
            return True

    def log(self) -> str:
        path = self.dir / "llama.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self):
        subprocess.run([str(LLAMA_SH), "stop", str(self.dir)], capture_output=True, timeout=60)


def modulo_env(llama: LlamaServer, **extra):
    env = dict(llama.env)  # MODULO_LLM_PROVIDER, _URL, _MODEL, _CONTEXT_TOKENS (the server's n_ctx)
    env.update({
        "MODULO_LLM_MAX_NEW_TOKENS": str(MAX_NEW_TOKENS),
        "MODULO_LLM_TIMEOUT_SECONDS": "120",
        "MODULO_LLM_MAX_RETRIES": "1",
    })
    env.update(extra)
    return env


def load(server):
    c = create_collection(server, "facts")
    r = upload(server, c["id"], list(DOCS.items()))
    assert r.status_code == 202, r.text
    files = wait_files_done(server, c["id"])
    assert all(f["status"] == "completed" for f in files), files
    return c["id"]


def ask(server, cid, question, stream=False, timeout=180, **top):
    return answers_ask(server, cid, question, stream=stream, timeout=timeout, **top)


def tokens_used(server, model) -> int:
    """The sum of llm_tokens_used_total over users for the model."""
    text = requests.get(server.url + "/metrics", timeout=10).text
    pattern = r'^llm_tokens_used_total\{[^}]*model="' + re.escape(model) + r'"[^}]*\} (\d+(?:\.\d+)?)$'
    return int(sum(float(v) for v in re.findall(pattern, text, re.M)))


def cancelled(server) -> int:
    text = requests.get(server.url + "/metrics", timeout=10).text
    m = re.search(r'^llm_requests_total\{provider="openai",outcome="cancelled"\} (\d+)$', text, re.M)
    return int(m.group(1)) if m else 0


def assert_citations_in_results(meta, query_results):
    """Citations are optional for a model this small; those it makes name retrieved passages."""
    chunks = {(q["chunk"]["document_id"], q["chunk"]["chunk_id"]) for q in query_results}
    for c in meta.get("citations", []):
        assert 1 <= c["n"] <= len(query_results), (c, len(query_results))
        assert (c["document_id"], c["chunk_id"]) in chunks, c


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    server = LlamaServer(tmp_path_factory.mktemp("llama"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def served(llama, tmp_path_factory):
    """A Modulo server answering with the model server, and a loaded collection."""
    server = Server(tmp_path_factory.mktemp("modulo") / "data", env=modulo_env(llama))
    try:
        yield server, load(server)
    finally:
        server.stop()


def test_generated_answer_with_the_servers_token_counts(served, llama):
    server, cid = served
    r = ask(server, cid, QUESTION, answer_mode="generated")
    assert r.status_code == 200, f"{r.status_code} {r.text}\nmodel server log:\n{llama.log()}"
    body = r.json()
    meta = body["metadata"]
    print("answer:", body["answer"], "usage:", meta["usage"], "llm:", meta["llm"])
    assert meta["answer_type"] == "generated", meta
    assert isinstance(body["answer"], str) and body["answer"].strip()
    assert body["query_results"] and body["query_results"][0]["chunk"]["metadata"]["source"] == "lighthouse.md"
    assert_citations_in_results(meta, body["query_results"])
    # The model server's own counts: not estimated, the prompt within its window, the answer
    # within max_tokens.
    usage = meta["usage"]
    assert "estimated" not in usage, usage
    assert 0 < usage["prompt_tokens"] <= int(llama.env["MODULO_LLM_CONTEXT_TOKENS"]), usage
    assert 0 < usage["completion_tokens"] <= MAX_NEW_TOKENS, usage
    assert meta["llm"]["provider"] == "openai" and meta["llm"]["model"], meta["llm"]
    assert meta["llm"]["finish_reason"] in ("stop", "length"), meta["llm"]
    assert "generation_error" not in meta
    stages = [s["stage"] for s in meta["stages"]]
    assert {"retrieval", "context", "generate"} <= set(stages), stages
    assert tokens_used(server, llama.env["MODULO_LLM_MODEL"]) >= usage["prompt_tokens"] + usage["completion_tokens"]


def test_streamed_answer_is_well_formed(served, llama):
    server, cid = served
    with ask(server, cid, QUESTION, stream=True, answer_mode="generated") as r:
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == "text/event-stream"
        evs = events(r)
    names = [n for n, _ in evs]
    assert set(names) <= {"stage", "token", "sources", "usage", "done"}, names
    assert names[-3:] == ["sources", "usage", "done"], names
    body = names[:-3]
    assert body and body[0] == "stage" and "token" in body, names
    assert names.count("sources") == names.count("usage") == names.count("done") == 1, names
    text = "".join(d["text"] for n, d in evs if n == "token")
    done = dict(evs)["done"]
    print("streamed answer:", text)
    assert text.strip() and text == done["answer"]
    assert done["metadata"]["answer_type"] == "generated", done["metadata"]
    sources = dict(evs)["sources"]
    assert sources["query_results"] and sources["query_results"][0]["chunk"]["metadata"]["source"] == "lighthouse.md"
    assert_citations_in_results(sources, sources["query_results"])
    # The model server sends no usage in streams (it ignores stream_options.include_usage): these
    # may be Modulo's estimates.
    usage = dict(evs)["usage"]
    print("streamed usage:", usage)
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0, usage
    assert done["metadata"]["usage"]["completion_tokens"] == usage["completion_tokens"]
    stages = [d["stage"] for n, d in evs if n == "stage"]
    assert {"retrieval", "context", "generate"} <= set(stages), stages


def test_a_client_that_disconnects_mid_stream(served, llama):
    server, cid = served
    model = llama.env["MODULO_LLM_MODEL"]
    before, cancelled_before = tokens_used(server, model), cancelled(server)
    body = json.dumps({"question": LONG_QUESTION, "collection_id": cid, "stream": True,
                       "answer_mode": "generated"}).encode()
    s = socket.create_connection(("127.0.0.1", server.port), timeout=120)
    s.sendall(b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
              + str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while b"event: token" not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    assert b"event: done" not in got
    s.close()
    # The model call is cancelled, and accounted for (the tokens so far).
    deadline = time.monotonic() + 60
    while tokens_used(server, model) <= before or cancelled(server) <= cancelled_before:
        assert time.monotonic() < deadline, (
            "the call was not cancelled and counted after the disconnect:\n"
            + "\n".join(line for line in requests.get(server.url + "/metrics", timeout=10).text.splitlines()
                        if line.startswith("llm_")))
        time.sleep(0.2)
    # Modulo and the model server both go on answering.
    assert requests.get(server.url + "/health", timeout=10).status_code == 200
    r = ask(server, cid, QUESTION, answer_mode="generated")
    assert r.status_code == 200, f"{r.status_code} {r.text}\nmodel server log:\n{llama.log()}"
    assert r.json()["metadata"]["answer_type"] == "generated"


def test_openai_sdk_and_a_conversation_with_the_real_model(served, llama):
    """The OpenAI-compatible RAG endpoint through the official SDK, and a two-turn conversation
    whose follow-up carries the first turn, both answered by the real model."""
    import openai

    server, cid = served
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=180)
    out = client.chat.completions.create(model="facts", max_tokens=MAX_NEW_TOKENS,
                                         messages=[{"role": "user", "content": QUESTION}])
    assert out.choices[0].message.content.strip(), out
    assert out.system_fingerprint == "modulo-rag"
    assert out.usage.completion_tokens > 0 and out.model_extra["sources"]
    chunks = list(client.chat.completions.create(model=cid, stream=True, max_tokens=MAX_NEW_TOKENS,
                                                 messages=[{"role": "user", "content": QUESTION}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    assert [c for c in chunks if c.choices and c.choices[0].finish_reason][0].model_extra["sources"]

    s = requests.post(server.url + "/api/conversations", timeout=30,
                      json={"collection_id": cid, "session_name": "real"}).json()
    first = requests.post(f"{server.url}/api/conversations/{s['id']}/messages", timeout=300,
                          json={"content": "What colour is the Kestrel Point lighthouse?"})
    assert first.status_code == 200, first.text
    second = requests.post(f"{server.url}/api/conversations/{s['id']}/messages", timeout=300,
                           json={"content": "Who painted it?"})
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["content"].strip() and body["metadata"]["conversation_aware"] is True
    assert body["metadata"]["answer_type"] in ("generated", "extractive")
    assert body["rewritten_query"]  # what was searched: by the model, or its rules fallback
    assert len(requests.get(f"{server.url}/api/conversations/{s['id']}/messages", timeout=30).json()) == 4


def test_a_model_server_killed_mid_call(start_server, tmp_path):
    llama = LlamaServer(tmp_path / "llama-killed")
    try:
        server = start_server(env=modulo_env(llama, MODULO_LLM_MAX_RETRIES="0"))
        cid = load(server)
        r = ask(server, cid, QUESTION, answer_mode="generated")
        assert r.status_code == 200 and r.json()["metadata"]["answer_type"] == "generated", r.text

        # Frozen, the model server holds the next call open; killed (SIGKILL) while it does.
        llama.signal(signal.SIGSTOP)
        result = {}
        asker = threading.Thread(target=lambda: result.update(r=ask(server, cid, QUESTION)))
        asker.start()
        time.sleep(1.5)
        llama.signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not llama.dead():
            assert time.monotonic() < deadline, "the model server did not die"
            time.sleep(0.05)
        asker.join(timeout=60)
        assert not asker.is_alive(), "the search did not return after the model server died"

        # answer_mode auto (the default) falls back to the extractive answer, with the reason.
        for r in (result["r"], ask(server, cid, QUESTION)):
            assert r.status_code == 200, r.text
            body = r.json()
            meta = body["metadata"]
            assert meta["answer_type"] == "extractive", meta
            assert meta["generation_error"]["code"] == "unavailable", meta["generation_error"]
            assert "teal" in body["answer"] and meta["citations"], body["answer"]
        with ask(server, cid, QUESTION, stream=True) as r:
            evs = events(r)
        assert [n for n, _ in evs][-3:] == ["sources", "usage", "done"], evs
        assert dict(evs)["done"]["metadata"]["answer_type"] == "extractive"
        # Asked for a generated answer explicitly: 503, not a 500 or a hang.
        r = ask(server, cid, QUESTION, answer_mode="generated")
        assert r.status_code == 503, r.text
        assert requests.get(server.url + "/health", timeout=10).status_code == 200
    finally:
        llama.stop()
