"""Tenancy and security end to end: API keys and JWTs, isolation between users and teams,
sharing, quotas (429), rate limits, brute-force protection and the audit log."""
import base64
import concurrent.futures
import hashlib
import hmac
import json
import random
import subprocess
import time

import pytest
import requests

from conftest import modulo_bin

JWT_SECRET = "an HS256 secret of at least thirty-two bytes!"


def create_user_cli(data_dir, name, admin=False):
    cmd = [modulo_bin(), "admin", "create-user", "--name", name, "--data-dir", str(data_dir)]
    if admin:
        cmd.append("--admin")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    fields = dict(line.split(": ", 1) for line in r.stdout.strip().splitlines())
    assert fields["api_key"].startswith("mdk_")
    return fields


class Client:
    def __init__(self, server, key):
        self.url = server.url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def __getattr__(self, method):
        def call(path, **kw):
            kw.setdefault("timeout", 60)
            return self.http.request(method.upper(), self.url + path, **kw)
        return call


def authenticated(start_server, tmp_path, **env):
    """A server with authentication on and its root admin's client; `server.new_user(name)` makes a
    user and returns a client for it (with .id)."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    root = create_user_cli(data, "root", admin=True)
    server = start_server(env={"MODULO_AUTH": "required", "MODULO_RATE_LIMIT_SEARCH": "0", **env})
    admin = Client(server, root["api_key"])

    def new_user(name):
        uid = admin.post("/api/users", json={"name": name}).json()["id"]
        c = Client(server, admin.post(f"/api/users/{uid}/api-keys", json={"name": "k"}).json()["api_key"])
        c.id = uid
        return c

    server.admin = admin
    server.new_user = new_user
    return server


@pytest.fixture
def secure(start_server, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    root = create_user_cli(data, "root", admin=True)
    server = start_server(env={"MODULO_AUTH": "required", "MODULO_JWT_SECRET": JWT_SECRET,
                               "MODULO_JWT_ISSUER": "https://idp.example", "MODULO_JWT_AUDIENCE": "modulo",
                               "MODULO_JWT_AUTO_PROVISION": "true", "MODULO_RATE_LIMIT_SEARCH": "0"})
    admin = Client(server, root["api_key"])

    def user(name, **quota):
        r = admin.post("/api/users", json={"name": name})
        assert r.status_code == 200, r.text
        uid = r.json()["id"]
        if quota:
            assert admin.put(f"/api/users/{uid}/quotas", json=quota).status_code == 200
        key = admin.post(f"/api/users/{uid}/api-keys", json={"name": "test"})
        assert key.status_code == 201, key.text
        c = Client(server, key.json()["api_key"])
        c.id = uid
        c.key_id = key.json()["key_id"]
        return c

    server.admin = admin
    server.user = user
    return server


def wait_files_done(client, cid, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = client.get(f"/api/collections/{cid}/files").json()
        if files and all(f["status"] in ("completed", "failed") for f in files):
            return files
        time.sleep(0.1)
    raise AssertionError(f"files of {cid} still processing")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims, secret=JWT_SECRET, header=None):
    head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def claims(**over):
    now = int(time.time())
    c = {"iss": "https://idp.example", "aud": "modulo", "sub": "alice-sub", "email": "alice@example.com",
         "exp": now + 300, "iat": now}
    c.update(over)
    return c


def test_public_routes_stay_open_and_the_rest_need_credentials(secure):
    for path in ("/health", "/ready", "/metrics", "/openapi.json"):
        assert requests.get(secure.url + path, timeout=10).status_code == 200
    r = requests.get(secure.url + "/api/collections", timeout=10)
    assert r.status_code == 401 and r.json()["reason"] == "missing_credentials"
    assert "Bearer" in r.headers["WWW-Authenticate"]
    r = requests.get(secure.url + "/api/collections", headers={"Authorization": "Bearer mdk_nonsense"}, timeout=10)
    assert r.status_code == 401 and r.json()["reason"] == "malformed_api_key"
    me = secure.admin.get("/api/users/me").json()
    assert me["name"] == "root" and me["role"] == "admin" and me["auth_method"] == "api_key"


def test_a_server_without_authentication_must_listen_on_loopback(tmp_path):
    r = subprocess.run([modulo_bin(), "serve", "--host", "0.0.0.0", "--port", "0", "--auth", "none",
                        "--data-dir", str(tmp_path / "d"), "--embedder", "none"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "loopback" in r.stderr


def test_jwts_are_verified_and_every_forgery_is_refused(secure):
    def call(token):
        return requests.get(secure.url + "/api/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)

    ok = call(hs256(claims()))
    assert ok.status_code == 200, ok.text
    assert ok.json()["auth_method"] == "jwt" and ok.json()["name"] == "alice@example.com"  # auto-provisioned
    assert call(hs256(claims())).json()["id"] == ok.json()["id"], "the same subject maps to the same user"
    good = hs256(claims())
    head, body, sig = good.split(".")
    forged_body = b64(json.dumps(claims(sub="root")).encode())
    cases = {
        "tampered payload": (f"{head}.{forged_body}.{sig}", "bad_signature"),
        "wrong secret": (hs256(claims(), secret="x" * 40), "bad_signature"),
        "alg none": (f"{b64(json.dumps({'alg': 'none'}).encode())}.{body}.", "alg_not_allowed"),
        "expired": (hs256(claims(exp=int(time.time()) - 3600)), "expired"),
        "not yet valid": (hs256(claims(nbf=int(time.time()) + 3600)), "not_yet_valid"),
        "wrong issuer": (hs256(claims(iss="https://evil.example")), "wrong_issuer"),
        "wrong audience": (hs256(claims(aud="someone-else")), "wrong_audience"),
        "RS256 claimed": (hs256(claims(), header={"alg": "RS256", "kid": "k1"}), None),
        "malformed base64": ("e30.!!!.abc", "malformed"),
    }
    for name, (token, reason) in cases.items():
        r = call(token)
        assert r.status_code == 401, (name, r.text)
        if reason:
            assert r.json()["reason"] == reason, (name, r.json())
        assert JWT_SECRET not in r.text


def test_isolation_between_users_and_sharing_levels(secure):
    alice, bob = secure.user("alice"), secure.user("bob")
    c = alice.post("/api/collections", json={"name": "private"}).json()
    cid = c["id"]
    assert c["owner_id"] == alice.id
    r = alice.post(f"/api/collections/{cid}/documents", files=[("files", ("a.md", b"# Alpha\n\nAlice's secret plan."))])
    assert r.status_code == 202, r.text
    task = r.json()[0]["task_id"]
    wait_files_done(alice, cid)
    # Bob sees nothing of it, whichever way he asks.
    assert bob.get("/api/collections").json() == []
    for path in (f"/api/collections/{cid}", f"/api/collections/{cid}/files", f"/api/tasks/{task}",
                 f"/api/events?topic=collection:{cid}"):
        assert bob.get(path).status_code == 404, path
    assert bob.post("/api/search", json={"question": "secret plan", "collection_id": cid}).status_code == 404
    assert bob.delete(f"/api/collections/{cid}").status_code == 404
    assert bob.post(f"/api/collections/{cid}/documents", files=[("files", ("b.md", b"x"))]).status_code == 404
    assert bob.post(f"/api/collections/{cid}/users", json={"user_id": bob.id, "level": "admin"}).status_code == 404
    # Read access: he can read and search, not write.
    assert alice.post(f"/api/collections/{cid}/users", json={"user_id": bob.id, "level": "read"}).status_code == 200
    assert [x["id"] for x in bob.get("/api/collections").json()] == [cid]
    hits = bob.post("/api/search", json={"question": "secret plan", "collection_id": cid}).json()["query_results"]
    assert hits and "secret plan" in hits[0]["chunk"]["text"]
    r = bob.post(f"/api/collections/{cid}/documents", files=[("files", ("b.md", b"# B\n\nbob"))])
    assert r.status_code == 403 and "write" in r.json()["detail"]
    assert bob.delete(f"/api/collections/{cid}").status_code == 403
    # Write access: he can upload; admin access: he could delete. Unsharing ends it all.
    assert alice.post(f"/api/collections/{cid}/users", json={"user_id": bob.id, "level": "write"}).status_code == 200
    assert bob.post(f"/api/collections/{cid}/documents", files=[("files", ("b.md", b"# B\n\nbob"))]).status_code == 202
    assert alice.get(f"/api/collections/{cid}/users").json() == [{"user_id": bob.id, "level": "write"}]
    assert alice.delete(f"/api/collections/{cid}/users/{bob.id}").status_code == 204
    assert bob.get(f"/api/collections/{cid}").status_code == 404
    assert secure.admin.get(f"/api/collections/{cid}").status_code == 200, "system admins see everything"


def test_teams_own_collections_and_members_share_them(secure):
    alice, bob, carol = secure.user("alice"), secure.user("bob"), secure.user("carol")
    team = alice.post("/api/teams", json={"name": "research"}).json()
    assert alice.post(f"/api/teams/{team['id']}/users", json={"user_id": bob.id}).status_code == 200
    assert bob.post(f"/api/teams/{team['id']}/users", json={"user_id": carol.id}).status_code == 403
    c = alice.post("/api/collections", json={"name": "shared", "team_id": team["id"]})
    assert c.status_code == 200 and c.json()["owner_type"] == "team"
    cid = c.json()["id"]
    r = bob.post("/api/collections", json={"name": "not mine to make", "team_id": team["id"]})
    assert r.status_code == 403, "members are not team admins"
    assert bob.get(f"/api/collections/{cid}").status_code == 200
    assert bob.post(f"/api/collections/{cid}/documents", files=[("files", ("n.md", b"# N\n\nnotes"))]).status_code == 202
    assert bob.delete(f"/api/collections/{cid}").status_code == 403, "members write, team admins administer"
    assert carol.get(f"/api/collections/{cid}").status_code == 404
    # Sharing with a team reaches its members.
    other = carol.post("/api/collections", json={"name": "carols"}).json()["id"]
    assert carol.post(f"/api/collections/{other}/teams", json={"team_id": team["id"], "level": "read"}).status_code == 200
    assert bob.get(f"/api/collections/{other}").status_code == 200
    # Leaving the team ends it at once.
    assert bob.delete(f"/api/teams/{team['id']}/users/{bob.id}").status_code == 204
    assert bob.get(f"/api/collections/{cid}").status_code == 404
    assert bob.get(f"/api/collections/{other}").status_code == 404


def test_quotas_are_exact_under_concurrency_and_answer_429(secure):
    eve = secure.user("eve", collections=10)

    def create(i):
        return eve.post("/api/collections", json={"name": f"c{i}"})

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(create, range(100)))
    assert sum(r.status_code == 200 for r in results) == 10
    refused = [r for r in results if r.status_code != 200]
    assert all(r.status_code == 429 for r in refused)
    body = refused[0].json()
    assert body["detail"].startswith("Quota exceeded for collections")
    assert body["usage"] == 10 and body["limit"] == 10 and body["resource"] == "collections"
    usage = eve.get("/api/users/me/usage").json()
    assert usage["collections"] == {"usage": 10, "limit": 10}
    # Files per collection.
    frank = secure.user("frank", files_per_collection=1)
    cid = frank.post("/api/collections", json={"name": "one"}).json()["id"]
    assert frank.post(f"/api/collections/{cid}/documents", files=[("files", ("1.md", b"one"))]).status_code == 202
    r = frank.post(f"/api/collections/{cid}/documents", files=[("files", ("2.md", b"two"))])
    assert r.status_code == 429 and "files per collection" in r.json()["detail"]
    metrics = requests.get(secure.url + "/metrics", timeout=10).text
    assert 'modulo_quota_rejections_total{resource="collections"} 90' in metrics


def test_rate_limits_and_brute_force_protection(start_server, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    key = create_user_cli(data, "limited")["api_key"]
    server = start_server(env={"MODULO_AUTH": "required", "MODULO_RATE_LIMIT_SEARCH": "1"})
    c = Client(server, key)
    codes = [c.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": "hi"}).status_code
             for _ in range(5)]
    assert codes[:2] == [200, 200] and 429 in codes
    r = c.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": "hi"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    # Guessing keys: after a few failures the address's wrong keys get 429 ...
    statuses = [requests.get(server.url + "/api/collections", timeout=10,
                             headers={"Authorization": f"Bearer mdk_{'a' * 12}_{'b' * 43}"}).status_code
                for _ in range(15)]
    assert statuses[0] == 401 and statuses[-1] == 429
    # ... while a right key from the same address (a shared NAT, a proxy) is still served.
    r = requests.get(server.url + "/api/collections", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    r = requests.get(server.url + "/api/collections", timeout=10,
                     headers={"Authorization": f"Bearer mdk_{'a' * 12}_{'c' * 43}"})
    assert r.status_code == 429


def test_keys_can_be_listed_without_secrets_and_revoked_at_once(secure):
    alice = secure.user("alice")
    assert alice.get("/api/users/me").status_code == 200
    keys = alice.get(f"/api/users/{alice.id}/api-keys").json()
    assert len(keys) == 1 and "api_key" not in keys[0] and keys[0]["prefix"].startswith("mdk_")
    assert alice.delete(f"/api/users/me/api-keys/{alice.key_id}").status_code == 204
    r = alice.get("/api/users/me")
    assert r.status_code == 401 and r.json()["reason"] == "revoked_api_key"
    bob = secure.user("bob")
    assert bob.get(f"/api/users/{alice.id}").status_code == 403
    assert bob.get("/api/users").status_code == 403
    assert bob.get("/api/audit").status_code == 403


def test_security_actions_are_audited(secure):
    alice, bob = secure.user("alice", collections=5), secure.user("bob")
    cid = alice.post("/api/collections", json={"name": "x"}).json()["id"]
    alice.post(f"/api/collections/{cid}/users", json={"user_id": bob.id, "level": "read"})
    alice.delete(f"/api/users/me/api-keys/{alice.key_id}")
    time.sleep(0.3)  # audit writes are asynchronous
    entries = secure.admin.get("/api/audit?limit=1000").json()
    actions = {e["action"] for e in entries}
    assert {"user.create", "api_key.create", "quota.override", "collection.create", "collection.share",
            "api_key.revoke"} <= actions
    requests.get(secure.url + "/api/teams", headers={"Authorization": "Bearer mdk_" + "z" * 12 + "_" + "y" * 43})
    time.sleep(0.3)
    failed = [e for e in secure.admin.get("/api/audit?limit=1000").json() if e["action"] == "login.failed"]
    assert failed and failed[-1]["detail"]["reason"] in ("invalid_api_key", "malformed_api_key")
    assert "y" * 43 not in json.dumps(failed), "the credential is never recorded"
    share = next(e for e in entries if e["action"] == "collection.share")
    assert share["principal_id"] == alice.id and share["outcome"] == "ok" and share["detail"]["level"] == "read"
    assert all("mdk_" not in json.dumps(e["detail"]) or "key_id" in e["detail"] for e in entries)


def test_randomised_isolation(secure):
    """10 users, 3 teams, 50 collections with random ownership and sharing: every user calls every
    read endpoint on every collection; nobody ever sees an object they may not read."""
    rng = random.Random(7)
    users = [secure.user(f"u{i}") for i in range(10)]
    teams = []
    for t in range(3):
        owner = users[t]
        team = owner.post("/api/teams", json={"name": f"team{t}"}).json()
        members = {owner.id: "admin"}
        for u in rng.sample(users, 3):
            if u.id not in members:
                role = rng.choice(["member", "admin"])
                assert owner.post(f"/api/teams/{team['id']}/users", json={"user_id": u.id, "role": role}).status_code == 200
                members[u.id] = role
        teams.append((team["id"], members))
    readers = {}  # collection id -> set of user ids that may read it
    docs = {}
    for i in range(50):
        if rng.random() < 0.3:
            tid, members = rng.choice(teams)
            creator = next(u for u in users if members.get(u.id) == "admin")
            c = creator.post("/api/collections", json={"name": f"c{i}", "team_id": tid}).json()
            allowed = set(members)
        else:
            creator = rng.choice(users)
            c = creator.post("/api/collections", json={"name": f"c{i}"}).json()
            allowed = {creator.id}
        cid = c["id"]
        for _ in range(rng.randint(0, 2)):
            if rng.random() < 0.5:
                target = rng.choice(users)
                creator.post(f"/api/collections/{cid}/users", json={"user_id": target.id, "level": "read"})
                allowed.add(target.id)
            else:
                tid, members = rng.choice(teams)
                creator.post(f"/api/collections/{cid}/teams", json={"team_id": tid, "level": "read"})
                allowed |= set(members)
        readers[cid] = allowed
        if i < 8:
            r = creator.post(f"/api/collections/{cid}/documents",
                             files=[("files", (f"d{i}.md", f"# Doc {i}\n\nmarker{i} text".encode()))])
            docs[cid] = r.json()[0]["task_id"]
    for cid in docs:
        wait_files_done(secure.admin, cid)
    for u in users:
        listed = {c["id"] for c in u.get("/api/collections").json()}
        assert listed == {cid for cid, who in readers.items() if u.id in who}, u.id
        for cid, who in readers.items():
            may = u.id in who
            for path in (f"/api/collections/{cid}", f"/api/collections/{cid}/files", f"/api/collections/{cid}/users"):
                assert u.get(path).status_code == (200 if may else 404), (u.id, path)
            if cid in docs:
                assert u.get(f"/api/tasks/{docs[cid]}").status_code == (200 if may else 404)
                r = u.post("/api/search", json={"question": "marker text", "collection_id": cid})
                assert r.status_code == (200 if may else 404)
                if may:
                    assert all(q["chunk"]["document_id"] for q in r.json()["query_results"])


def test_deleting_a_user_or_team_removes_what_they_own(secure):
    alice, bob = secure.user("alice"), secure.user("bob")
    mine = alice.post("/api/collections", json={"name": "mine"}).json()["id"]
    team = alice.post("/api/teams", json={"name": "t"}).json()["id"]
    ours = alice.post("/api/collections", json={"name": "ours", "team_id": team}).json()["id"]
    assert bob.delete(f"/api/teams/{team}").status_code == 404, "not a member: the team does not exist for him"
    assert alice.delete(f"/api/teams/{team}").status_code == 204
    assert secure.admin.get(f"/api/collections/{ours}").status_code == 404
    assert bob.delete(f"/api/users/{alice.id}").status_code == 403
    assert secure.admin.delete(f"/api/users/{alice.id}").status_code == 204
    assert secure.admin.get(f"/api/collections/{mine}").status_code == 404
    assert alice.get("/api/users/me").status_code == 401
