"""The OpenAI-compatible RAG endpoint, driven by the official openai Python SDK: /v1/models lists
the caller's collections, /v1/chat/completions answers the last user message from the collection
named by "model" (whole or streamed), with the passages in "sources"; OpenAI-shaped errors."""
import json

import openai
import pytest
import requests

from test_answers import fake_llm, llm_env, loaded  # noqa: F401  (the fake LLM fixture)


@pytest.fixture
def llm_server(start_server, fake_llm):
    server = start_server(env=llm_env(fake_llm))
    cid, _ = loaded(server)
    server.cid = cid
    return server


def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused-without-auth", max_retries=0, timeout=60)


def test_models_are_the_callers_collections(llm_server):
    c = client(llm_server)
    models = c.models.list()
    assert [m.id for m in models.data] == [llm_server.cid]
    assert models.data[0].object == "model" and models.data[0].name == "docs"
    assert c.models.retrieve(llm_server.cid).id == llm_server.cid
    assert c.models.retrieve("docs").id == llm_server.cid  # by name too
    with pytest.raises(openai.NotFoundError) as e:
        c.models.retrieve("no-such-collection")
    assert e.value.body["param"] == "model"


def test_a_completion_answers_from_the_collection_with_sources(llm_server):
    c = client(llm_server)
    out = c.chat.completions.create(model="docs", messages=[{"role": "user", "content": "How does a volcano erupt?"}])
    assert out.object == "chat.completion" and out.model == "docs"
    choice = out.choices[0]
    assert choice.message.role == "assistant" and choice.message.content.startswith("Echo:")
    assert choice.finish_reason == "stop"
    assert out.usage.prompt_tokens > 0 and out.usage.completion_tokens > 0
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    sources = out.model_extra["sources"]
    assert sources and sources[0]["n"] == 1 and "volcano" in sources[0]["chunk"]["text"].lower()
    assert out.system_fingerprint == "modulo-rag"


def test_conversation_history_and_client_parameters_reach_the_model(llm_server):
    c = client(llm_server)
    out = c.chat.completions.create(
        model=llm_server.cid, max_tokens=3, temperature=0,
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Tell me about sourdough."},
                  {"role": "assistant", "content": "It uses a starter."},
                  {"role": "user", "content": [{"type": "text", "text": "How long does it proof?"}]}])
    assert out.choices[0].finish_reason == "length"
    assert len(out.choices[0].message.content.split()) <= 3


def test_streaming_with_the_sdk(llm_server):
    c = client(llm_server)
    stream = c.chat.completions.create(model="docs", stream=True, stream_options={"include_usage": True},
                                       messages=[{"role": "user", "content": "What is a Hohmann transfer?"}])
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text.startswith("Echo:")
    finals = [ch for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "stop"
    assert finals[0].model_extra["sources"]
    usage = [ch for ch in chunks if not ch.choices]
    assert len(usage) == 1 and usage[0].usage.completion_tokens > 0
    assert all(ch.id == chunks[0].id for ch in chunks)


def test_without_a_language_model_the_answer_is_extractive(start_server):
    server = start_server()
    cid, _ = loaded(server)
    c = client(server)
    out = c.chat.completions.create(model=cid, messages=[{"role": "user", "content": "How does a volcano erupt?"}])
    assert out.system_fingerprint == "modulo-extractive"
    assert "magma" in out.choices[0].message.content
    chunks = list(c.chat.completions.create(model=cid, stream=True,
                                            messages=[{"role": "user", "content": "How does a volcano erupt?"}]))
    assert "magma" in "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)


def test_a_stream_that_breaks_ends_with_an_error_chunk(llm_server):
    r = requests.post(llm_server.url + "/v1/chat/completions", stream=True, timeout=30,
                      json={"model": "docs", "stream": True, "config_metadata": {"answer_mode": "generated"},
                            "messages": [{"role": "user", "content": "volcano [[truncate]]"}]})
    assert r.status_code == 200
    data = [line[6:] for line in r.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    assert data[-1] != "[DONE]"
    assert "error" in json.loads(data[-1])


@pytest.mark.parametrize("body,status,text", [
    ({"messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    ({"model": "docs", "messages": []}, 400, "messages"),
    ({"model": "docs", "messages": [{"role": "assistant", "content": "x"}]}, 400, "user message"),
    ({"model": "docs", "messages": [{"role": "wizard", "content": "x"}]}, 400, "role"),
    ({"model": "docs", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, 400,
     "text parts"),
    ({"model": "docs", "messages": [{"role": "user", "content": "x"}], "temperature": 9}, 400, "temperature"),
    ({"model": "docs", "messages": [{"role": "user", "content": "x"}], "n": 2}, 400, "'n'"),
    ({"model": "docs", "messages": [{"role": "user", "content": "x"}], "bogus": 1}, 400, "bogus"),
    ({"model": "docs", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, 400, "tools"),
    ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404, "nope"),
    ({"model": "docs", "messages": [{"role": "user", "content": "   "}]}, 400, "empty"),
])
def test_bad_requests_get_openai_shaped_errors(llm_server, body, status, text):
    r = requests.post(llm_server.url + "/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert text in err["message"] and err["type"]
