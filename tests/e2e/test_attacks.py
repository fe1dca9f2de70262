"""A hostile tenant against the real binary: each test is one attack from the hardening work, and
after each the server is alive and serving another tenant.

Covered here: deeply nested JSON (HTTP bodies, provider configurations, /ws messages), a prompt
template that used to overflow the regex engine, provider URLs aimed at internal addresses (SSRF)
and upstream bodies echoed back, CR/LF in a provider key (header injection), the XLSX
shared-string bomb, multipart fields without a total bound, chunk overlaps that multiply the
work, DNS rebinding and cross-site requests against `--auth none`, and the data directory's
permissions."""
import http.server
import io
import json
import os
import pathlib
import random
import socket
import stat
import threading
import zipfile

import pytest
import requests

from ingest_util import create_collection, upload, wait_files_done
from test_tenancy import authenticated


def api(server, method, path, **kw):
    kw.setdefault("timeout", 60)
    return requests.request(method, server.url + path, **kw)


def alive(server):
    """The server answers and another tenant's work still goes through."""
    assert server.proc.poll() is None, server.log()[-3000:]
    assert api(server, "GET", "/health").status_code == 200


def peak_rss_mb(server) -> float:
    for line in pathlib.Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- 1. JSON nested 100,000 deep ------------------------------------------------------------

def test_deeply_nested_json_is_refused_everywhere(server):
    c = create_collection(server, "deep")
    body = '{"question": "q", "collection_id": "%s", "config_metadata": {"filters": %s}}' % (c["id"], nested(100000))
    assert len(body) > 200_000
    r = api(server, "POST", "/api/search", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "nested deeper than 64 levels" in r.json()["detail"]
    alive(server)

    # A configuration's object field (its size was measured by printing it first).
    r = api(server, "POST", "/api/users/me/prompt-templates",
            data='{"name": "p", "template_type": "RAG_QUERY", "template_format": "{question} {context}", '
                 '"example_inputs": {"a": %s}}' % nested(100000), headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    alive(server)

    # A /ws ping whose timestamp is echoed back.
    import websocket
    ws = websocket.create_connection(server.url.replace("http", "ws") + "/ws", timeout=10)
    try:
        assert json.loads(ws.recv())["type"] == "connection_established"
        ws.send('{"type": "ping", "timestamp": %s}' % nested(100000))
        reply = json.loads(ws.recv())
        assert reply["type"] == "error", reply
        ws.send('{"type": "ping", "timestamp": 7}')
        assert json.loads(ws.recv()) == {"type": "pong", "timestamp": 7}
    finally:
        ws.close()
    alive(server)

    # Within the limit, nesting is only a matter of the search's own rules.
    ok = '{"question": "q", "collection_id": "%s", "config_metadata": {"filters": {"a": %s}}}' % (c["id"], nested(40))
    assert api(server, "POST", "/api/search", data=ok, headers={"Content-Type": "application/json"}).status_code == 400
    alive(server)


# --- 2. A prompt template that overflowed std::regex ----------------------------------------

def test_a_huge_template_variable_is_parsed_linearly(server):
    fmt = "{" + "a" * 40000 + "}"
    r = api(server, "POST", "/api/users/me/prompt-templates",
            json={"name": "t", "template_type": "RAG_QUERY", "template_format": fmt})
    assert r.status_code == 400, r.text  # a RAG_QUERY template needs {question} and {context}
    alive(server)
    r = api(server, "POST", "/api/users/me/prompt-templates",
            json={"name": "t2", "template_type": "RAG_QUERY",
                  "template_format": "{" * 20000 + "Q: {question} C: {context}"})
    assert r.status_code == 201, r.text
    assert set(r.json()["input_variables"]) == {"question", "context"}
    alive(server)


# --- 3. SSRF through a user's provider URL --------------------------------------------------

class _Internal(http.server.BaseHTTPRequestHandler):
    """An internal service: answers every request with a page that must never leave the server."""
    hits = 0

    def do_POST(self):  # noqa: N802
        type(self).hits += 1
        body = b"SECRET-INTERNAL-PAGE " * 20
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def internal_service():
    _Internal.hits = 0
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Internal)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def loaded(client, name="docs"):
    r = client.post("/api/collections", json={"name": name})
    assert r.status_code in (200, 201), r.text
    cid = r.json()["id"]
    r = client.post(f"/api/collections/{cid}/documents",
             files=[("files", ("a.md", b"The Aldermoor bridge spans the river Ettle with three iron arches.",
                               "text/markdown"))])
    assert r.status_code == 202, r.text
    return cid


def user_provider(client, base_url, **extra):
    r = client.post("/api/users/me/llm-providers",
                    json={"name": "mine", "type": "openai", "base_url": base_url, "api_key": "sk-x",
                          "is_default": True, **extra})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    r = client.post(f"/api/users/me/llm-providers/{pid}/models",
                    json={"model_id": "m", "is_default": True, "timeout": 5, "max_retries": 0})
    assert r.status_code == 201, r.text
    return pid


def wait_done(client, cid):
    import time
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        files = client.get(f"/api/collections/{cid}/files").json()
        if files and all(f["status"] in ("completed", "failed") for f in files):
            return files
        time.sleep(0.1)
    raise AssertionError("files not done")


# Loopback forms only: a server that failed to refuse must not send traffic anywhere but this
# machine. Private, link-local and metadata addresses are covered without any connection by
# net/egress_test.cpp (the policy decides on the resolved address before connecting).
@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/v1", "http://localhost:{port}/v1",
                                    "http://[::ffff:127.0.0.1]:{port}/v1", "http://2130706433:{port}/v1",
                                    "http://127.1:{port}/v1", "http://0x7f000001:{port}/v1"])
def test_a_users_provider_cannot_reach_internal_addresses(start_server, tmp_path, internal_service, target):
    server = authenticated(start_server, tmp_path)
    alice = server.new_user("alice")
    cid = loaded(alice)
    wait_done(alice, cid)
    port = internal_service.rsplit(":", 1)[1]
    user_provider(alice, target.format(port=port))
    r = alice.post("/api/search", json={"question": "What does the bridge span?", "collection_id": cid,
                                        "answer_mode": "generated"})
    assert r.status_code in (403, 502, 503), r.text
    assert "internal address" in r.text and "MODULO_EGRESS_ALLOW" in r.text, r.text
    assert _Internal.hits == 0
    # "auto" falls back to the extractive answer and says why.
    r = alice.post("/api/search", json={"question": "What does the bridge span?", "collection_id": cid})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["answer_type"] == "extractive"
    assert r.json()["metadata"]["generation_error"]["code"] == "permission_denied"
    assert _Internal.hits == 0
    alive(server)


def test_upstream_bodies_are_logged_not_returned(start_server, tmp_path, internal_service):
    # Allowed by the administrator: the service is reached, but its page stays in the log.
    server = authenticated(start_server, tmp_path, MODULO_EGRESS_ALLOW="127.0.0.1/32")
    alice = server.new_user("alice")
    cid = loaded(alice)
    wait_done(alice, cid)
    user_provider(alice, internal_service + "/v1")
    r = alice.post("/api/search", json={"question": "What does the bridge span?", "collection_id": cid,
                                        "answer_mode": "generated"})
    assert _Internal.hits >= 1
    assert "SECRET-INTERNAL-PAGE" not in r.text, r.text
    assert "HTTP 404" in r.text
    assert "SECRET-INTERNAL-PAGE" in server.log()
    alive(server)


# --- 4. CR/LF in a provider key --------------------------------------------------------------

@pytest.mark.parametrize("key", ["sk-1\r\nX-Injected: yes", "sk-1\nHost: evil", "sk\x00nul"])
def test_control_characters_in_a_provider_key_are_refused(server, key):
    r = api(server, "POST", "/api/users/me/llm-providers",
            json={"name": "p", "type": "openai", "base_url": "https://api.example.com/v1", "api_key": key})
    assert r.status_code == 400, r.text
    assert "api_key" in r.json()["detail"] and "control characters" in r.json()["detail"]
    alive(server)


# --- 9. /ws: chat messages spend the search budget; streams per user are capped -----------------

def ws_connect(server, key):
    import websocket
    ws = websocket.create_connection(server.url.replace("http", "ws") + "/ws", timeout=10,
                                     header=[f"Authorization: Bearer {key}"])
    return ws, json.loads(ws.recv())


def test_ws_chat_messages_are_rate_limited_like_searches(start_server, tmp_path):
    server = authenticated(start_server, tmp_path, MODULO_RATE_LIMIT_SEARCH="1")
    alice = server.new_user("alice")
    cid = loaded(alice)
    wait_done(alice, cid)
    ws, hello = ws_connect(server, alice.http.headers["Authorization"].split()[1])
    try:
        assert hello["type"] == "connection_established"
        limited = 0
        for i in range(6):  # one after the other, as fast as answers come
            ws.send(json.dumps({"type": "chat_message", "request_id": f"r{i}",
                                "data": {"content": "Which river?", "collection_id": cid}}))
            while True:
                m = json.loads(ws.recv())
                if m.get("request_id") != f"r{i}":
                    continue
                if m["type"] == "error":
                    assert m.get("code") == "rate_limited", m
                    limited += 1
                    break
                if m["type"] == "ai_response":
                    break
        assert limited >= 3, limited  # a burst of 2 at 1 per second
    finally:
        ws.close()
    alive(server)


def test_open_streams_per_user_are_capped(start_server, tmp_path):
    server = authenticated(start_server, tmp_path, MODULO_MAX_STREAMS_PER_USER="2")
    alice = server.new_user("alice")
    key = alice.http.headers["Authorization"].split()[1]
    first, hello1 = ws_connect(server, key)
    second, hello2 = ws_connect(server, key)
    assert hello1["type"] == hello2["type"] == "connection_established"
    third, refused = ws_connect(server, key)
    assert refused["type"] == "error" and refused["code"] == "rate_limited", refused
    mine = alice.post("/api/collections", json={"name": "mine"}).json()["id"]
    r = alice.get("/api/events", params={"topic": f"collection:{mine}"}, stream=True, timeout=10)
    assert r.status_code == 429, r.text
    # Another user is not affected, and a closed stream frees its slot.
    bob = server.new_user("bob")
    ws_b, hello_b = ws_connect(server, bob.http.headers["Authorization"].split()[1])
    assert hello_b["type"] == "connection_established"
    first.close()
    import time
    deadline = time.monotonic() + 10
    while True:
        again, hello3 = ws_connect(server, key)
        if hello3["type"] == "connection_established" or time.monotonic() > deadline:
            break
        again.close()
        time.sleep(0.1)
    assert hello3["type"] == "connection_established", hello3
    for w in (second, third, ws_b, again):
        w.close()
    alive(server)


# --- 19. Streams end when access goes ---------------------------------------------------------

def test_a_revoked_share_or_a_disabled_user_ends_the_event_stream(start_server, tmp_path):
    import time
    server = authenticated(start_server, tmp_path)
    alice, bob = server.new_user("alice"), server.new_user("bob")
    cid = loaded(alice)
    wait_done(alice, cid)
    assert alice.post(f"/api/collections/{cid}/users", json={"user_id": bob.id, "level": "read"}).status_code in (200, 201)

    def follow(client):
        r = client.get("/api/events", params={"topic": f"collection:{cid}"}, stream=True, timeout=30)
        assert r.status_code == 200, r.text
        return r

    def upload_note(name):
        r = alice.post(f"/api/collections/{cid}/documents",
                       files=[("files", (name, f"A note about the Ettle: {name}.".encode(), "text/markdown"))])
        assert r.status_code == 202, r.text

    def events_until_end(stream, limit_s=20):
        got = []
        deadline = time.monotonic() + limit_s
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("event:"):
                got.append(line.split(":", 1)[1].strip())
                if got[-1] == "error":
                    break
            if time.monotonic() > deadline:
                break
        return got

    stream = follow(bob)
    upload_note("one.md")
    time.sleep(1.5)  # past the once-a-second re-check of the first delivery
    assert alice.delete(f"/api/collections/{cid}/users/{bob.id}").status_code == 204
    upload_note("two.md")
    got = events_until_end(stream)
    assert got and got[-1] == "error", got

    # A disabled user's stream ends too.
    assert alice.post(f"/api/collections/{cid}/users", json={"user_id": bob.id, "level": "read"}).status_code in (200, 201)
    stream = follow(bob)
    upload_note("three.md")
    time.sleep(1.5)
    assert server.admin.put(f"/api/users/{bob.id}", json={"disabled": True}).status_code == 200
    upload_note("four.md")
    got = events_until_end(stream)
    assert got and got[-1] == "error", got
    alive(server)


# --- 7. Teams as fresh quota budgets ---------------------------------------------------------

def test_a_user_cannot_multiply_their_quota_with_teams(start_server, tmp_path):
    server = authenticated(start_server, tmp_path, MODULO_QUOTA_TEAMS="3")
    alice = server.new_user("alice")
    codes = [alice.post("/api/teams", json={"name": f"t{i}"}).status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429], codes
    r = alice.post("/api/teams", json={"name": "more"})
    assert "limit is 3" in r.json()["detail"]
    # Leaving no room is per user: another user still creates theirs; admins have no limit.
    assert server.new_user("bob").post("/api/teams", json={"name": "bobs"}).status_code == 200
    assert all(server.admin.post("/api/teams", json={"name": f"a{i}"}).status_code == 200 for i in range(5))


# --- 10. A sealed key follows its provider to a new host ------------------------------------

def test_moving_a_provider_needs_its_key_again(server):
    r = api(server, "POST", "/api/users/me/llm-providers",
            json={"name": "p", "type": "openai", "base_url": "https://api.example.com/v1", "api_key": "sk-secret"})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    for change in ({"base_url": "https://collector.example/v1"}, {"type": "anthropic"},
                   {"iam_url": "https://iam.example"}):
        r = api(server, "PUT", f"/api/users/me/llm-providers/{pid}", json=change)
        assert r.status_code == 400, (change, r.text)
        assert "api_key" in r.json()["detail"]
    # With the key given again (or dropped), the move is the owner's decision.
    r = api(server, "PUT", f"/api/users/me/llm-providers/{pid}",
            json={"base_url": "https://collector.example/v1", "api_key": "sk-other"})
    assert r.status_code == 200, r.text
    r = api(server, "PUT", f"/api/users/me/llm-providers/{pid}", json={"base_url": "https://x.example/v1",
                                                                      "api_key": None})
    assert r.status_code == 200 and r.json()["has_api_key"] is False, r.text
    # Other changes keep the key.
    api(server, "PUT", f"/api/users/me/llm-providers/{pid}", json={"api_key": "sk-3"})
    r = api(server, "PUT", f"/api/users/me/llm-providers/{pid}", json={"timeout_seconds": 30})
    assert r.status_code == 200 and r.json()["has_api_key"] is True, r.text


# --- 6. The XLSX shared-string bomb ----------------------------------------------------------

def xlsx_bomb(cells: int, string_bytes: int) -> bytes:
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
             for _ in range(2000)]
    text = []
    size = 0
    while size < string_bytes:
        w = rng.choice(words)
        text.append(w)
        size += len(w) + 1
    shared = " ".join(text)
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    row = "".join(f'<c r="{chr(65 + i % 26)}{i // 26 + 1}" t="s"><v>0</v></c>' for i in range(cells))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="xml" ContentType="application/xml"/></Types>')
        z.writestr("xl/workbook.xml", f'<?xml version="1.0"?><workbook xmlns="{ns}" xmlns:r="{rel}"><sheets>'
                                      '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels",
                   '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
                   f'<Relationship Id="rIdS" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
        z.writestr("xl/worksheets/sheet1.xml",
                   f'<?xml version="1.0"?><worksheet xmlns="{ns}"><sheetData><row r="1">{row}</row></sheetData></worksheet>')
        z.writestr("xl/sharedStrings.xml", f'<?xml version="1.0"?><sst xmlns="{ns}"><si><t>{shared}</t></si></sst>')
    return buf.getvalue()


def test_an_xlsx_shared_string_bomb_stays_within_memory(server):
    bomb = xlsx_bomb(cells=5000, string_bytes=200_000)  # ~1 GB of cell text in one row
    assert len(bomb) < 400_000
    other = create_collection(server, "other")
    assert upload(server, other["id"], [("ok.md", b"Another tenant's note about the river Ettle.")]).status_code == 202
    assert wait_files_done(server, other["id"])[0]["status"] == "completed"
    c = create_collection(server, "bomb")
    assert upload(server, c["id"], [("bomb.xlsx", bomb)]).status_code == 202
    import time
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        assert peak_rss_mb(server) < 400, f"peak RSS {peak_rss_mb(server):.0f} MB"
        r = api(server, "POST", "/api/search", json={"question": "Which river?", "collection_id": other["id"]},
                timeout=10)
        assert r.status_code == 200, r.text
        files = api(server, "GET", f"/api/collections/{c['id']}/files").json()
        if files[0]["status"] in ("completed", "failed"):
            break
        time.sleep(0.5)
    assert peak_rss_mb(server) < 400, f"peak RSS {peak_rss_mb(server):.0f} MB"
    alive(server)


# --- 11. Multipart fields held in memory -----------------------------------------------------

def test_multipart_fields_are_bounded_in_total(server):
    c = create_collection(server, "fields")
    fields = [(f"f{i}", (None, "x" * 200_000)) for i in range(10)]  # 2 MB of fields, each under 1 MiB
    r = api(server, "POST", f"/api/collections/{c['id']}/documents",
            files=fields + [("files", ("a.md", b"text", "text/markdown"))])
    assert r.status_code == 413, r.text
    assert "fields exceed" in r.json()["detail"]
    alive(server)


# --- 12. Chunk settings that multiply the work -----------------------------------------------

def test_overlap_is_at_most_half_the_chunk(server):
    r = api(server, "POST", "/api/collections",
            json={"name": "x", "chunking": {"chunk_tokens": 200, "overlap_tokens": 199}})
    assert r.status_code == 400, r.text
    assert "overlap_tokens" in r.json()["detail"]
    r = api(server, "POST", "/api/collections",
            json={"name": "y", "chunking": {"chunk_tokens": 200, "overlap_tokens": 100}})
    assert r.status_code in (200, 201), r.text


# --- 13. --auth none: DNS rebinding and cross-site requests ----------------------------------

def raw(server, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(request)
        out = b""
        while b"\r\n\r\n" not in out:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def test_local_mode_serves_only_local_hosts_and_pages(server):
    r = api(server, "GET", "/api/collections", headers={"Host": "evil.example:8000"})
    assert r.status_code == 403, r.text
    assert "Host" in r.json()["detail"]
    assert api(server, "GET", "/health", headers={"Host": "rebound.example"}).status_code == 403
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"[::1]:{server.port}", "LOCALHOST"):
        assert api(server, "GET", "/api/collections", headers={"Host": host}).status_code == 200, host

    # A form posted by another site (no preflight) is refused; the app's own pages may.
    r = api(server, "POST", "/api/collections", json={"name": "csrf"}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403, r.text
    r = api(server, "POST", "/api/collections", json={"name": "mine"},
            headers={"Origin": f"http://127.0.0.1:{server.port}"})
    assert r.status_code in (200, 201), r.text

    # A cross-site WebSocket upgrade is refused before the handshake.
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    upgrade = ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n")
    assert raw(server, (upgrade % (server.port, key, "https://evil.example")).encode()).startswith(b"HTTP/1.1 403")
    assert raw(server, (upgrade % (server.port, key, f"http://localhost:{server.port}")).encode()).startswith(
        b"HTTP/1.1 101")
    alive(server)


# --- 14, 15. Sign-in: lockouts per client behind CIDR-trusted proxies ---------------------------

def test_lockout_is_per_client_behind_a_cidr_trusted_proxy(start_server, tmp_path):
    server = authenticated(start_server, tmp_path, MODULO_TRUSTED_PROXIES="127.0.0.0/8")
    bad = {"Authorization": f"Bearer mdk_{'a' * 12}_{'b' * 43}"}
    codes = [requests.get(server.url + "/api/collections", timeout=10,
                          headers={**bad, "X-Forwarded-For": "203.0.113.9"}).status_code for _ in range(15)]
    assert codes[0] == 401 and codes[-1] == 429
    # Another client behind the same proxy is not the guesser.
    r = requests.get(server.url + "/api/collections", timeout=10, headers={**bad, "X-Forwarded-For": "198.51.100.7"})
    assert r.status_code == 401, r.text
    # The guesser's own right key still works.
    assert server.admin.get("/api/collections", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200


def test_a_bad_trusted_proxy_list_stops_start_up(tmp_path):
    import subprocess
    from conftest import modulo_bin
    r = subprocess.run([modulo_bin(), "serve", "--port", "0", "--data-dir", str(tmp_path / "d")],
                       env={**os.environ, "MODULO_AUTH": "required", "MODULO_TRUSTED_PROXIES": "proxy.internal"},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "MODULO_TRUSTED_PROXIES" in r.stderr, r.stderr


def test_a_jwks_without_issuer_and_audience_stops_start_up(tmp_path):
    import subprocess
    from conftest import modulo_bin
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    r = subprocess.run([modulo_bin(), "serve", "--port", "0", "--data-dir", str(tmp_path / "d")],
                       env={**os.environ, "MODULO_AUTH": "required", "MODULO_JWKS": str(jwks)},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "MODULO_JWT_AUDIENCE" in r.stderr, r.stderr


# --- 16. Health endpoints for everyone --------------------------------------------------------

def test_public_probes_share_one_check_a_second_and_name_no_hosts(start_server, tmp_path):
    server = authenticated(start_server, tmp_path)
    # Unauthenticated: readiness only, and only component names.
    assert requests.get(server.url + "/api/health", timeout=10).status_code == 401
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda _: requests.get(server.url + "/ready", timeout=10).status_code, range(200)))
    assert codes.count(200) == 200
    # A user sees statuses; only an admin sees the messages (paths, host names).
    alice = server.new_user("alice")
    body = alice.get("/api/health").json()
    assert all("message" not in c for c in body["components"].values()), body
    admin = server.admin.get("/api/health").json()
    assert any("message" in c for c in admin["components"].values()), admin
    alive(server)


# --- 20. Files of the data directory ---------------------------------------------------------

def test_the_data_directory_is_private(start_server, tmp_path):
    server = start_server(name="fresh-data")
    create_collection(server, "x")
    data = pathlib.Path(server.data_dir)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for f in data.rglob("*"):
        mode = stat.S_IMODE(f.stat().st_mode)
        assert mode & 0o077 == 0, f"{f} has mode {oct(mode)}"
