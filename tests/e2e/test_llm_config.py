"""Providers as data: each user's LLM providers (with models), parameter sets, prompt templates and
pipelines through /api/users/{id}/…, used by their searches; API keys sealed at rest and never
returned; isolation between users; validation of every kind."""
import pathlib
import uuid

import pytest
import requests

from ingest_util import create_collection, upload, wait_files_done
from test_answers import DOCS, fake_llm  # noqa: F401  (the fake LLM fixture)
from test_tenancy import authenticated


def api(server, method, path, **kw):
    kw.setdefault("timeout", 60)
    return requests.request(method, server.url + path, **kw)


def loaded(server):
    c = create_collection(server, "docs")
    assert upload(server, c["id"], list(DOCS.items())).status_code == 202
    assert all(f["status"] == "completed" for f in wait_files_done(server, c["id"]))
    return c["id"]


def provider(server, fake_url, key, **extra):
    body = {"name": "fake-" + uuid.uuid4().hex[:6], "type": "openai", "base_url": fake_url + "/v1",
            "api_key": key, **extra}
    r = api(server, "POST", "/api/users/me/llm-providers", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def model(server, pid, model_id="user-model", **extra):
    r = api(server, "POST", f"/api/users/me/llm-providers/{pid}/models",
            json={"model_id": model_id, "context_tokens": 2048, "timeout": 5, "max_retries": 0, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def ask(server, cid, question="How does a volcano erupt?", **top):
    return api(server, "POST", "/api/search", json={"question": question, "collection_id": cid, **top})


def test_a_users_provider_answers_their_searches_and_its_key_never_leaves(start_server, fake_llm, tmp_path):
    server = start_server()  # no server-wide language model
    cid = loaded(server)
    assert ask(server, cid).json()["metadata"]["answer_type"] == "extractive"

    key = "sk-test-" + uuid.uuid4().hex
    p = provider(server, fake_llm, key, is_default=True)
    assert p["has_api_key"] is True and p["is_default"] is True and "api_key" not in p
    m = model(server, p["id"], is_default=True)
    assert m["provider_id"] == p["id"] and m["model_id"] == "user-model"

    r = ask(server, cid, answer_mode="generated")
    assert r.status_code == 200, r.text
    meta = r.json()["metadata"]
    assert meta["answer_type"] == "generated"
    assert meta["llm"]["model"] == "user-model"
    assert meta["profile"]["source"] == "user" and meta["profile"]["provider_id"] == p["id"]
    assert r.json()["answer"].startswith("Echo:")

    # The key is in no response, and not in clear in the database files.
    for path in ("/api/users/me/llm-providers", f"/api/users/me/llm-providers/{p['id']}",
                 f"/api/users/me/llm-providers/{p['id']}/models"):
        text = api(server, "GET", path).text
        assert key not in text and '"api_key"' not in text
    data = pathlib.Path(server.data_dir)
    for f in data.glob("modulo.db*"):
        assert key.encode() not in f.read_bytes(), f
    assert (data / "secret.key").stat().st_mode & 0o777 == 0o600

    # A wrong key: the provider refuses, "auto" falls back to the extractive answer and says why.
    r = api(server, "PUT", f"/api/users/me/llm-providers/{p['id']}", json={"api_key": "sk-wrong"})
    assert r.status_code == 200 and r.json()["has_api_key"] is True
    out = ask(server, cid).json()
    assert out["metadata"]["answer_type"] == "extractive"
    assert out["metadata"]["generation_error"]["code"] == "unauthenticated"
    # Removing the key; an inactive provider is refused by name.
    assert api(server, "PUT", f"/api/users/me/llm-providers/{p['id']}", json={"api_key": None}).json()["has_api_key"] is False
    api(server, "PUT", f"/api/users/me/llm-providers/{p['id']}", json={"api_key": key, "is_active": False})
    r = ask(server, cid)
    assert r.status_code == 400 and "not active" in r.json()["detail"]

    # Another server key cannot open the sealed key: a clear error, not garbage sent upstream.
    api(server, "PUT", f"/api/users/me/llm-providers/{p['id']}", json={"is_active": True})
    server.stop()
    other = start_server(env={"MODULO_SECRET_KEY": "ab" * 32}, name=data.name)
    r = ask(other, cid, answer_mode="generated")
    assert r.status_code in (409, 500) or r.json().get("metadata", {}).get("generation_error"), r.text
    assert "server key" in r.text


def test_parameters_templates_and_pipelines_shape_the_answer(start_server, fake_llm):
    server = start_server()
    cid = loaded(server)
    p = provider(server, fake_llm, "sk-test", is_default=True)
    m1 = model(server, p["id"], "model-one", is_default=True)
    m2 = model(server, p["id"], "model-two")

    # Default parameters: a 3-token answer ends for length.
    r = api(server, "POST", "/api/users/me/llm-parameters",
            json={"name": "short", "max_new_tokens": 3, "temperature": 0.1, "is_default": True})
    assert r.status_code == 201, r.text
    params = r.json()
    out = ask(server, cid, answer_mode="generated").json()
    assert out["metadata"]["llm"]["finish_reason"] == "length"
    assert out["metadata"]["profile"]["parameters_id"] == params["id"]

    # A default RAG_QUERY template: the fake echoes the end of the last message.
    r = api(server, "POST", "/api/users/me/prompt-templates",
            json={"name": "mine", "template_type": "RAG_QUERY", "is_default": True,
                  "template_format": "Context:\n{context}\n\nQuestion: {question}\nAnswer like PINEAPPLE"})
    assert r.status_code == 201, r.text
    tmpl = r.json()
    assert tmpl["input_variables"] == {"context": "", "question": ""}
    api(server, "PUT", f"/api/users/me/llm-parameters/{params['id']}", json={"max_new_tokens": 64})
    out = ask(server, cid, answer_mode="generated").json()
    assert "PINEAPPLE" in out["answer"] and out["metadata"]["profile"]["template_id"] == tmpl["id"]
    listed = api(server, "GET", "/api/users/me/prompt-templates/type/RAG_QUERY").json()
    assert [t["id"] for t in listed] == [tmpl["id"]]
    assert api(server, "GET", "/api/users/me/prompt-templates/type/COT_REASONING").json() == []
    assert api(server, "GET", "/api/users/me/prompt-templates/type/NOPE").status_code == 400

    # A pipeline picks the other model, by id in the request or as the collection's pipeline.
    r = api(server, "POST", "/api/users/me/pipelines",
            json={"name": "two", "provider_id": p["id"], "model_id": m2["id"], "collection_id": cid})
    assert r.status_code == 201, r.text
    pipe = r.json()
    assert pipe["retriever"] == "hybrid" and pipe["collection_id"] == cid
    assert ask(server, cid).json()["metadata"]["llm"]["model"] == "model-two"  # the collection's pipeline
    r = ask(server, cid, config_metadata={"pipeline_id": pipe["id"]})
    assert r.json()["metadata"]["profile"]["pipeline_id"] == pipe["id"]
    assert ask(server, cid, pipeline_id=str(uuid.uuid4())).status_code == 404

    # References are checked; things in use cannot go.
    bad = api(server, "POST", "/api/users/me/pipelines", json={"name": "x", "provider_id": str(uuid.uuid4())})
    assert bad.status_code == 400 and "provider_id" in bad.json()["detail"]
    bad = api(server, "POST", "/api/users/me/pipelines",
              json={"name": "x", "provider_id": p["id"], "template_id": params["id"]})
    assert bad.status_code == 400 and "template_id" in bad.json()["detail"]
    r = api(server, "DELETE", f"/api/users/me/llm-providers/{p['id']}")
    assert r.status_code == 409 and "pipeline 'two'" in r.json()["detail"]
    assert api(server, "DELETE", f"/api/users/me/llm-providers/{p['id']}/models/{m2['id']}").status_code == 409
    assert api(server, "DELETE", f"/api/users/me/pipelines/{pipe['id']}").status_code == 204
    assert api(server, "DELETE", f"/api/users/me/llm-providers/{p['id']}").status_code == 204
    # The provider's models went with it; answers are extractive again.
    assert api(server, "GET", f"/api/users/me/llm-providers/{p['id']}/models").status_code == 404
    assert ask(server, cid).json()["metadata"]["answer_type"] == "extractive"
    assert m1["id"]


def test_defaults_are_one_per_scope_and_names_unique(start_server, fake_llm):
    server = start_server()
    a = api(server, "POST", "/api/users/me/llm-parameters", json={"name": "a", "is_default": True}).json()
    b = api(server, "POST", "/api/users/me/llm-parameters", json={"name": "b"}).json()
    assert a["max_new_tokens"] == 512 and a["top_k"] == 50 and a["repetition_penalty"] == 1.1
    assert api(server, "PUT", f"/api/users/me/llm-parameters/{b['id']}/default").json()["is_default"] is True
    listed = {x["name"]: x["is_default"] for x in api(server, "GET", "/api/users/me/llm-parameters").json()}
    assert listed == {"a": False, "b": True}
    dup = api(server, "POST", "/api/users/me/llm-parameters", json={"name": "a"})
    assert dup.status_code == 409
    # Template defaults are per type.
    for name, t in (("r", "RAG_QUERY"), ("c", "COT_REASONING")):
        r = api(server, "POST", "/api/users/me/prompt-templates",
                json={"name": name, "template_type": t, "is_default": True,
                      "template_format": "{context} {question}" if t == "RAG_QUERY" else "Think about {question}"})
        assert r.status_code == 201, r.text
    assert all(t["is_default"] for t in api(server, "GET", "/api/users/me/prompt-templates").json())


@pytest.mark.parametrize("path,body,field", [
    ("llm-providers", {"name": "p", "type": "mystery"}, "type"),
    ("llm-providers", {"name": "p", "base_url": "ftp://x"}, "base_url"),
    ("llm-providers", {"name": "p", "type": "watsonx", "base_url": "https://w.example"}, "project_id"),
    ("llm-providers", {"name": "p", "colour": "red"}, "colour"),
    ("llm-providers", {"type": "openai"}, "name"),
    ("llm-parameters", {"name": "x", "temperature": 3}, "temperature"),
    ("llm-parameters", {"name": "x", "max_new_tokens": "many"}, "max_new_tokens"),
    ("llm-parameters", {"name": "x", "stop_sequences": "STOP"}, "stop_sequences"),
    ("llm-parameters", {"name": "\u0001bad"}, "name"),
    ("prompt-templates", {"name": "t", "template_format": "no variables"}, "template_format"),
    ("prompt-templates", {"name": "t", "template_type": "RAG_QUERY", "template_format": "{question}"}, "template_format"),
    ("prompt-templates", {"name": "t", "template_format": "{a}", "input_variables": {"b": ""}}, "input_variables"),
    ("pipelines", {"name": "p"}, "provider_id"),
    ("pipelines", {"name": "p", "provider_id": "x", "retriever": "psychic"}, "retriever"),
])
def test_bad_input_is_a_400_naming_the_field(server, path, body, field):
    r = api(server, "POST", f"/api/users/me/{path}", json=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["detail"]
    assert api(server, "POST", f"/api/users/me/{path}", data=b"{not json",
               headers={"Content-Type": "application/json"}).status_code == 400


def test_users_see_and_use_only_their_own_configuration(start_server, fake_llm, tmp_path):
    # The fake provider listens on loopback, which users' provider URLs reach only when the
    # administrator allows it.
    server = authenticated(start_server, tmp_path, MODULO_EGRESS_ALLOW="127.0.0.1")
    admin = server.admin
    alice, bob = server.new_user("alice"), server.new_user("bob")
    r = alice.post("/api/users/me/llm-providers",
                   json={"name": "mine", "base_url": fake_llm + "/v1", "api_key": "sk-test", "is_default": True})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert alice.get(f"/api/users/{alice.id}/llm-providers").json()[0]["id"] == pid
    # Bob cannot list, read, change, delete or use it — by his own path or by Alice's.
    assert bob.get("/api/users/me/llm-providers").json() == []
    assert bob.get(f"/api/users/{alice.id}/llm-providers").status_code == 403
    assert bob.get(f"/api/users/me/llm-providers/{pid}").status_code == 404
    assert bob.put(f"/api/users/me/llm-providers/{pid}", json={"name": "taken"}).status_code == 404
    assert bob.delete(f"/api/users/me/llm-providers/{pid}").status_code == 404
    assert bob.post("/api/users/me/pipelines", json={"name": "x", "provider_id": pid}).status_code == 400
    # The admin may manage Alice's, and still never sees the key.
    r = admin.get(f"/api/users/{alice.id}/llm-providers/{pid}")
    assert r.status_code == 200 and "sk-test" not in r.text
