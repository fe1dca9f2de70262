"""Conversations end to end: sessions over a collection, turns that carry their history (a
follow-up made standalone for retrieval), stored messages with their sources, rolling summaries,
export, statistics, archive/restore, suggestions and names, streaming turns, chat over /ws, a
collection's suggested questions, and isolation between users."""
import csv
import io
import json

import pytest
import requests
import websocket

from test_answers import DOCS, events, fake_llm, llm_env, loaded  # noqa: F401  (the fake LLM fixture)
from test_tenancy import authenticated


def api(server, method, path, **kw):
    kw.setdefault("timeout", 60)
    return requests.request(method, server.url + path, **kw)


def session(server, cid, **extra):
    r = api(server, "POST", "/api/conversations", json={"collection_id": cid, "session_name": "chat", **extra})
    assert r.status_code == 201, r.text
    return r.json()


def say(server, sid, content, **extra):
    r = api(server, "POST", f"/api/conversations/{sid}/messages", json={"content": content, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_follow_up_is_answered_in_context_and_everything_is_stored(server):
    cid, ids = loaded(server)
    s = session(server, cid)
    assert s["status"] == "active" and s["message_count"] == 0 and s["context_window_size"] == 4000
    first = say(server, s["id"], "Tell me about sourdough bread")
    assert first["role"] == "assistant" and first["message_type"] == "answer" and first["seq"] == 2
    assert first["sources"][0]["document_id"] == ids["bread.md"]
    # Without a language model the follow-up is completed by rules from the previous question.
    second = say(server, s["id"], "how long does it proof?")
    assert "sourdough" in second["rewritten_query"].lower()
    assert second["sources"][0]["document_id"] == ids["bread.md"]
    assert second["metadata"]["conversation_aware"] is True and second["metadata"]["history_tokens"] > 0

    msgs = api(server, "GET", f"/api/conversations/{s['id']}/messages").json()
    assert [(m["seq"], m["role"]) for m in msgs] == [(1, "user"), (2, "assistant"), (3, "user"), (4, "assistant")]
    assert msgs[2]["content"] == "how long does it proof?"
    assert api(server, "GET", f"/api/conversations/{s['id']}/messages?after_seq=2&limit=1").json()[0]["seq"] == 3
    assert api(server, "GET", f"/api/conversations/{s['id']}").json()["message_count"] == 4
    stats = api(server, "GET", f"/api/conversations/{s['id']}/statistics").json()
    assert stats["user_messages"] == 2 and stats["assistant_messages"] == 2 and stats["context_enhancement_count"] == 1

    # Exports in every format carry every message.
    exported = api(server, "GET", f"/api/conversations/{s['id']}/export").json()
    assert exported["total_messages"] == 4 and exported["session_data"]["id"] == s["id"]
    r = api(server, "GET", f"/api/conversations/{s['id']}/export?format=csv")
    assert r.headers["Content-Type"].startswith("text/csv") and "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert len(rows) == 5 and rows[3][4] == "how long does it proof?"
    md = api(server, "GET", f"/api/conversations/{s['id']}/export?format=markdown").text
    assert md.startswith("# chat") and "**User**" in md and "Sources:" in md
    assert "how long does it proof?" in api(server, "GET", f"/api/conversations/{s['id']}/export?format=txt").text
    assert api(server, "GET", f"/api/conversations/{s['id']}/export?format=pdf").status_code == 400

    # Names, suggestions, archive and restore.
    named = api(server, "POST", f"/api/conversations/{s['id']}/generate-name").json()
    assert named["session_name"] == "Tell me about sourdough bread" and named["name_method"] == "rules"
    sugg = api(server, "GET", f"/api/conversations/{s['id']}/suggestions?max_suggestions=2").json()
    assert 1 <= len(sugg["suggestions"]) <= 2
    assert api(server, "POST", f"/api/conversations/{s['id']}/archive").json()["is_archived"] is True
    assert api(server, "GET", "/api/conversations").json() == []
    assert len(api(server, "GET", "/api/conversations?include_archived=true").json()) == 1
    r = api(server, "POST", f"/api/conversations/{s['id']}/messages", json={"content": "more?"})
    assert r.status_code == 409
    assert api(server, "POST", f"/api/conversations/{s['id']}/restore").json()["status"] == "active"
    assert api(server, "DELETE", f"/api/conversations/{s['id']}").status_code == 204
    assert api(server, "GET", f"/api/conversations/{s['id']}").status_code == 404


def test_older_turns_are_summarised_when_the_window_fills(server):
    cid, _ = loaded(server)
    s = session(server, cid, context_window_size=1000, max_messages=10)
    filler = " ".join(["Volcanoes erupt when magma rises, and bread dough proofs overnight."] * 12)
    for i in range(6):
        say(server, s["id"], f"Question {i}: {filler}")
    summaries = api(server, "GET", f"/api/conversations/{s['id']}/summaries").json()
    assert summaries, "turns beyond the window were not summarised"
    assert summaries[-1]["summary_text"] and summaries[-1]["up_to_seq"] >= 2
    last = api(server, "GET", f"/api/conversations/{s['id']}/messages").json()[-1]
    assert last["metadata"]["summary_used"] is True
    assert last["metadata"]["history_tokens"] <= 1000
    full = api(server, "POST", f"/api/conversations/{s['id']}/summaries", json={"strategy": "full_conversation"})
    assert full.status_code == 200 and full.json()["summary_strategy"] == "full_conversation"


def test_a_streamed_turn_and_a_generated_one(start_server, fake_llm):
    server = start_server(env=llm_env(fake_llm))
    cid, _ = loaded(server)
    s = session(server, cid)
    r = api(server, "POST", f"/api/conversations/{s['id']}/messages", stream=True,
            json={"content": "How does a volcano erupt?", "stream": True})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    evs = events(r)
    names = [e for e, _ in evs]
    assert names[-4:] == ["sources", "usage", "message", "done"] and "token" in names
    text = "".join(d["text"] for e, d in evs if e == "token")
    message = dict(evs)["message"]
    assert message["content"] == text and text.startswith("Echo:")
    assert message["metadata"]["answer_type"] == "generated"
    assert message["token_analysis"]["completion_tokens"] > 0
    # The follow-up carries the first turn as history; the turn is stored even so.
    second = say(server, s["id"], "and what about pumice?")
    assert second["metadata"]["conversation_aware"] is True
    assert len(api(server, "GET", f"/api/conversations/{s['id']}/messages").json()) == 4
    # Every model call counts against the user's tokens, names and suggestions included.
    def used():
        return api(server, "GET", "/api/users/me/usage").json()["llm_tokens_today"]["usage"]
    before = used()
    named = api(server, "POST", f"/api/conversations/{s['id']}/generate-name").json()
    assert named["name_method"] == "llm" and named["session_name"].startswith("Echo")
    after_name = used()
    assert after_name > before
    assert api(server, "GET", f"/api/conversations/{s['id']}/suggestions").status_code == 200
    assert used() > after_name
    # A model failure is stored as an error message when the answer cannot fall back.
    r = api(server, "POST", f"/api/conversations/{s['id']}/messages",
            json={"content": "volcano [[ratelimit_always:conv]]", "answer_mode": "generated"})
    assert r.status_code == 429
    last = api(server, "GET", f"/api/conversations/{s['id']}/messages").json()[-1]
    assert last["message_type"] == "error"


def test_chat_over_the_websocket(server):
    cid, ids = loaded(server)
    s = session(server, cid)
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws", timeout=30)
    try:
        assert json.loads(ws.recv())["type"] == "connection_established"

        def chat(request_id, **data):
            ws.send(json.dumps({"type": "chat_message", "request_id": request_id, "data": data}))
            got = []
            while True:
                m = json.loads(ws.recv())
                if m.get("request_id") != request_id:
                    continue
                got.append(m)
                if m["type"] in ("ai_response", "error"):
                    return got

        one_off = chat("a", collection_id=cid, content="How does a volcano erupt?")
        kinds = [m["type"] for m in one_off]
        assert kinds[0] == "processing" and kinds[-2:] == ["sources", "ai_response"] and "token" in kinds
        assert "magma" in one_off[-1]["data"]["answer"]
        assert one_off[-1]["data"]["sources"][0]["chunk"]["document_id"] == ids["volcano.md"]

        turn = chat("b", session_id=s["id"], message="Tell me about orbits")
        assert turn[-1]["data"]["message"]["role"] == "assistant"
        assert api(server, "GET", f"/api/conversations/{s['id']}").json()["message_count"] == 2

        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv())["type"] == "pong"
        bad = chat("c", content="no collection")
        assert bad[-1]["type"] == "error" and "collection_id" in bad[-1]["message"]
        missing = chat("d", session_id="00000000-0000-4000-8000-000000000000", content="x")
        assert missing[-1]["type"] == "error" and missing[-1]["code"] == "not_found"
    finally:
        ws.close()


def test_collections_get_suggested_questions(server):
    cid, _ = loaded(server)
    r = api(server, "GET", f"/api/collections/{cid}/questions")
    assert r.status_code == 200
    questions = [q["question"] for q in r.json()]
    assert questions and all(q.endswith("?") for q in questions)
    r = api(server, "POST", f"/api/collections/{cid}/questions")
    assert r.status_code == 201 and r.json()
    assert api(server, "DELETE", f"/api/collections/{cid}/questions").status_code == 204


@pytest.mark.parametrize("body,field", [
    ({"session_name": "x"}, "collection_id"),
    ({"collection_id": "c", "context_window_size": 10}, "context_window_size"),
    ({"collection_id": "c", "max_messages": 5000}, "max_messages"),
    ({"collection_id": "c", "colour": "red"}, "colour"),
    ({"collection_id": "c", "session_name": "   "}, "session_name"),
])
def test_bad_sessions_are_refused(server, body, field):
    r = api(server, "POST", "/api/conversations", json=body)
    assert r.status_code == 400 and field in r.json()["detail"], r.text


def test_bad_messages_are_refused(server):
    cid, _ = loaded(server)
    s = session(server, cid)
    for body, field in (({}, "content"), ({"content": 5}, "content"), ({"content": "x", "role": "assistant"}, "role"),
                        ({"content": "x" * 100001}, "content"), ({"content": "   "}, "question")):
        r = api(server, "POST", f"/api/conversations/{s['id']}/messages", json=body)
        assert r.status_code == 400 and field in r.json()["detail"], (body, r.text)
    assert api(server, "POST", "/api/conversations", json={"collection_id": "nope"}).status_code == 404


def test_conversations_are_private(start_server, tmp_path):
    server = authenticated(start_server, tmp_path)
    admin = server.admin
    alice, bob = server.new_user("alice"), server.new_user("bob")
    cid = alice.post("/api/collections", json={"name": "mine"}).json()["id"]
    r = alice.post("/api/conversations", json={"collection_id": cid, "session_name": "a"})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert bob.post("/api/conversations", json={"collection_id": cid}).status_code == 404
    for method, path in (("get", f"/api/conversations/{sid}"), ("get", f"/api/conversations/{sid}/messages"),
                         ("delete", f"/api/conversations/{sid}"), ("get", f"/api/conversations/{sid}/export")):
        assert getattr(bob, method)(path).status_code == 404
    assert bob.post(f"/api/conversations/{sid}/messages", json={"content": "hi"}).status_code == 404
    assert bob.get("/api/conversations").json() == []
    assert admin.get(f"/api/conversations/{sid}").status_code == 200
