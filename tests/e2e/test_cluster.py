"""The scale-out stack end to end, through nginx (deploy/nginx.conf): three `modulo serve`
without workers, two `modulo worker`, PostgreSQL with a streaming replica, Redis and Milvus, all
started by tests/e2e/cluster.py on loopback.

1. Calm: collections, uploads watched on /ws, searches with the expected answers, and proof that
   the shared engines hold the data (rows in PostgreSQL, the vector collection in Milvus, jobs
   in Redis, reads on the replica) and that nginx spreads requests and forwards the client.
2. Faults under load (searches and uploads from a thread pool, with a client that retries
   idempotent requests once on a connection error, 502, 503 or 504): kill -9 a worker in the
   middle of a file, kill -9 a server, restart Redis, stop the replica. Nothing may fail after
   the retry, and every accepted job must complete exactly once: none lost, none duplicated.

The counts go to the test output (run pytest with -s to see them) and to
<tmp>/cluster-summary.json.
"""
import json
import pathlib
import random
import threading
import time

import pytest
import requests
import websocket

from cluster import Cluster, ServiceFailed, ServiceMissing

pytestmark = pytest.mark.cluster

TOPICS = {
    "volcano.md": (b"# Volcanoes\n\nA volcano erupts when magma rises through the crust. Basaltic lava flows "
                   b"are runny; andesitic eruptions are explosive and throw out pumice and ash.\n"),
    "bread.md": (b"# Sourdough bread\n\nSourdough is leavened by a starter of wild yeast and lactobacilli. "
                 b"Knead the dough, let it proof overnight, and bake it in a hot Dutch oven.\n"),
    "orbit.md": (b"# Orbital mechanics\n\nA satellite in low Earth orbit circles the planet every ninety minutes. "
                 b"A Hohmann transfer moves a spacecraft between two circular orbits with two engine burns.\n"),
}
# question -> (the source that must rank first, a phrase the extractive answer must quote)
QUESTIONS = {
    "how does a spacecraft change orbits?": ("orbit.md", "Hohmann transfer"),
    "what makes sourdough rise?": ("bread.md", "wild yeast"),
    "why do some volcanic eruptions explode?": ("volcano.md", "explosive"),
}
WORDS = ("retrieval augmented generation answers questions from documents with citations while vectors and "
         "keywords rank passages for each query across collections of files glaciers rivers deltas orchards "
         "harvest copper wiring lighthouse harbour telescopes comet tides granite basalt").split()
BIG_FILE = "handbook.md"


def prose(seed: int, paragraphs: int) -> bytes:
    rng = random.Random(seed)
    parts = [f"# Field notes {seed}\n"]
    for p in range(paragraphs):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "."
                     for _ in range(rng.randint(4, 8))]
        parts.append(f"## Part {p}\n\n" + " ".join(sentences))
    return "\n\n".join(parts).encode()


LOAD_DOCS = {f"notes-{i:02d}.md": prose(i, 4) for i in range(24)}
BIG_DOC = prose(1000, 900)  # long enough that a worker is still embedding it seconds after it starts


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    error = ""
    try:
        # Without the embedding cache, so that a file ingested again (the collection under load
        # holds the reference collection's files) is embedded again and a worker can be killed
        # in the middle of it.
        c = Cluster(root, extra_env={"MODULO_EMBEDDING_CACHE_SIZE": "0"}).start()
    except ServiceMissing as e:
        error = str(e)
    except ServiceFailed as e:
        error = f"the cluster did not start: {e}"
    if error:
        pytest.fail(error, pytrace=False)
    yield c
    c.stop()


class Stats:
    """Counts of the load, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = self.failed = self.retried = self.wrong = 0
        self.failures: list[str] = []
        self.by_kind: dict[str, int] = {}

    def add(self, **counts):
        with self.lock:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)

    def fail(self, what: str):
        with self.lock:
            self.failed += 1
            if len(self.failures) < 20:
                self.failures.append(what)


class RetryingClient:
    """requests with one retry of retry-safe requests (GET, searches, and uploads, which the server
    deduplicates by content) on a connection error, 502, 503 or 504: what a request that was in
    flight on a server that died gets from nginx."""

    RETRY_STATUSES = (502, 503, 504)

    def __init__(self, base: str, stats: Stats):
        self.base = base
        self.stats = stats
        self.http = requests.Session()

    def request(self, method: str, path: str, kind: str, expect=(200,), **kw):
        kw.setdefault("timeout", 60)
        self.stats.add(sent=1)
        with self.stats.lock:
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
        last = ""
        for attempt in range(2):
            try:
                r = self.http.request(method, self.base + path, **kw)
                if r.status_code in expect:
                    return r
                last = f"{method} {path}: {r.status_code} {r.text[:200]}"
                if r.status_code not in self.RETRY_STATUSES:
                    break
            except requests.RequestException as e:
                last = f"{method} {path}: {type(e).__name__}: {e}"
                self.http = requests.Session()  # the pooled connection may be the broken one
            if attempt == 0:
                self.stats.add(retried=1)
                time.sleep(0.3)
        self.stats.fail(f"{time.strftime('%H:%M:%S')} {last}")
        return None


class EventWatcher(threading.Thread):
    """A /ws client (through nginx) subscribed to topics; reconnects when its server goes away
    and counts the events it sees per task and state."""

    def __init__(self, ws_url: str, topics: list[str]):
        super().__init__(daemon=True)
        self.url = ws_url
        self.topics = topics
        self.stop_flag = threading.Event()
        self.subscribed = threading.Event()
        self.lock = threading.Lock()
        self.file_events: dict[tuple[str, str], int] = {}  # (task_id, state) -> count
        self.other_events = 0
        self.reconnects = 0

    def run(self):
        while not self.stop_flag.is_set():
            try:
                ws = websocket.create_connection(self.url, timeout=1)
                hello = json.loads(ws.recv())
                assert hello["type"] == "connection_established", hello
                for t in self.topics:
                    ws.send(json.dumps({"type": "subscribe", "topic": t}))
                while not self.stop_flag.is_set():
                    try:
                        msg = json.loads(ws.recv())
                    except websocket.WebSocketTimeoutException:
                        continue
                    if msg.get("type") == "subscribed":
                        self.subscribed.set()
                    elif msg.get("type") == "event":
                        data = msg.get("data") or {}
                        with self.lock:
                            if data.get("type") == "file" and msg.get("topic", "").startswith("collection:"):
                                key = (data.get("task_id", ""), data.get("state", ""))
                                self.file_events[key] = self.file_events.get(key, 0) + 1
                            else:
                                self.other_events += 1
                ws.close()
            except Exception:  # noqa: BLE001 -- the server behind this connection died: reconnect
                if self.stop_flag.is_set():
                    break
                self.reconnects += 1
                time.sleep(0.3)

    def count(self, task_id: str, state: str) -> int:
        with self.lock:
            return self.file_events.get((task_id, state), 0)

    def stop(self):
        self.stop_flag.set()
        self.join(timeout=10)


def upload(url: str, cid: str, files: dict[str, bytes], headers=None) -> list[dict]:
    r = requests.post(f"{url}/api/collections/{cid}/documents", files=[("files", (n, d)) for n, d in files.items()],
                      headers=headers or {}, timeout=120)
    assert r.status_code == 202, r.text
    return r.json()


def files_of(url: str, cid: str) -> list[dict]:
    r = requests.get(f"{url}/api/collections/{cid}/files", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def wait_files_done(url: str, cid: str, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    next_check = time.monotonic() + 10
    files: list[dict] = []
    while time.monotonic() < deadline:
        try:
            files = files_of(url, cid)
        except (requests.RequestException, AssertionError):
            time.sleep(0.5)
            continue
        if files and all(f["status"] in ("completed", "failed") for f in files):
            return files
        if time.monotonic() > next_check:  # a file whose task ended for good will never finish
            next_check = time.monotonic() + 10
            for f in files:
                if f["status"] not in ("completed", "failed") and f.get("task_id"):
                    task = requests.get(f"{url}/api/tasks/{f['task_id']}", timeout=30).json()
                    if task.get("state") in ("failed", "dead", "succeeded"):
                        raise AssertionError(f"{f['filename']} is {f['status']} but its task is {task.get('state')}: "
                                             f"{task.get('error')}")
        time.sleep(0.5)
    raise AssertionError(f"files still processing after {timeout:.0f} s: "
                         f"{[(f['filename'], f['status']) for f in files if f['status'] not in ('completed', 'failed')]}")


def search(url: str, cid: str, question: str, **config):
    return requests.post(url + "/api/search", json={"question": question, "collection_id": cid,
                                                    "config_metadata": {"top_k": 3, **config}}, timeout=60)


def shared_state(cluster) -> dict:
    """Set by the calm test for the one under load: the reference collection and its counts."""
    return cluster.__dict__.setdefault("shared_state", {})


def test_calm_path_through_nginx_uses_the_shared_engines(cluster):
    url = cluster.url
    state = shared_state(cluster)
    # The client's address survives the proxy: nginx appends its own hop to X-Forwarded-For, and
    # the servers trust 127.0.0.1 (MODULO_TRUSTED_PROXIES), so the audit log names the client.
    r = requests.post(url + "/api/collections", json={"name": "reference"},
                      headers={"X-Forwarded-For": "203.0.113.7"}, timeout=30)
    assert r.status_code == 200, r.text
    cid = r.json()["id"]

    watcher = EventWatcher(f"ws://127.0.0.1:{cluster.nginx.port}/ws", [f"collection:{cid}"])
    watcher.start()
    assert watcher.subscribed.wait(10), "no subscription confirmed on /ws through nginx"
    pdf = pathlib.Path(__file__).resolve().parents[1] / "data" / "parse" / "groff.pdf"
    accepted = upload(url, cid, {**TOPICS, "groff.pdf": pdf.read_bytes()})
    accepted += upload(url, cid, LOAD_DOCS)
    accepted += upload(url, cid, {BIG_FILE: BIG_DOC})
    assert all(a["status"] == "processing" and a["task_id"] for a in accepted), accepted
    files = wait_files_done(url, cid, timeout=240)
    by_name = {f["filename"]: f for f in files}
    assert all(f["status"] == "completed" and f["chunk_count"] > 0 for f in files), \
        [(f["filename"], f["status"], f["error"]) for f in files if f["status"] != "completed"]

    # Progress on /ws: every task's file was seen processing and completed, whichever worker ran it
    # and whichever server holds the WebSocket (events travel through Redis).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(watcher.count(a["task_id"], "completed") for a in accepted):
        time.sleep(0.1)
    watcher.stop()
    missing = [a["filename"] for a in accepted
               if not watcher.count(a["task_id"], "processing") or not watcher.count(a["task_id"], "completed")]
    assert not missing, f"no processing/completed event on /ws for {missing}"

    # Shared indexes are caught up by the worker that finished a job, a moment after its file shows
    # completed (docs/architecture.md): searches in that moment read the index as it is, say so
    # (metadata.index_catching_up) and are not cached. Every server must see every file soon.
    started = time.monotonic()
    for s in cluster.servers:
        while True:
            body = search(s.url, cid, "how does a spacecraft change orbits?").json()
            top = body["query_results"][0]["chunk"]["metadata"]["source"] if body["query_results"] else None
            if top == "orbit.md" and not body["metadata"].get("index_catching_up"):
                break
            assert time.monotonic() - started < 60, f"server {s.url} still searches a stale index: {body['metadata']}"
            time.sleep(0.2)
    print(f"indexes current on every server {time.monotonic() - started:.1f} s after the last file completed")

    # Answers.
    for question, (source, phrase) in QUESTIONS.items():
        r = search(url, cid, question)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["query_results"][0]["chunk"]["metadata"]["source"] == source, (question, body["query_results"])
        assert phrase in body["answer"] and "[1]" in body["answer"], (question, body["answer"])
    r = search(url, cid, "the purpose of this parser fixture", retriever="keyword", retrieval_only=True)
    assert r.status_code == 200 and r.json()["query_results"], r.text
    assert r.json()["query_results"][0]["chunk"]["metadata"]["source"] == "groff.pdf"
    r = search(url, cid, "molten rock bursting out of a mountain", retriever="vector", retrieval_only=True)
    assert r.status_code == 200, r.text
    assert r.json()["query_results"][0]["chunk"]["metadata"]["source"] == "volcano.md", r.json()["query_results"]

    # The shared engines hold the data.
    assert cluster.primary.sql(f"SELECT count(*) FROM collections WHERE id = '{cid}'") == "1", \
        "the collection is not in PostgreSQL: DATABASE_URL is not honoured"
    pg_chunks = int(cluster.primary.sql(f"SELECT count(*) FROM chunks WHERE collection_id = '{cid}' AND NOT is_parent"))
    assert pg_chunks == sum(f["chunk_count"] for f in files)
    assert any(cid.replace("-", "") in name for name in cluster.milvus.collections()), \
        f"no Milvus collection for {cid}: VECTOR_STORE is not honoured ({cluster.milvus.collections()})"
    assert cluster.redis.cli("EXISTS", f"modulo:jobs:job:{accepted[0]['task_id']}") == "1", \
        "the job is not in Redis: REDIS_URL does not carry the job queue"

    # Reads reach the replica (listings may be served by it).
    replica_sessions = "SELECT count(*) FROM pg_stat_activity WHERE datname = 'modulo' AND pid <> pg_backend_pid()"
    for _ in range(30):
        assert requests.get(url + "/api/collections", timeout=30).status_code == 200
        assert requests.get(f"{url}/api/collections/{cid}", timeout=30).status_code == 200
    assert int(cluster.replica.sql(replica_sessions)) > 0, "no server reads from the replica (DATABASE_REPLICA_URLS)"

    audit = requests.get(url + "/api/audit", params={"limit": 1000}, timeout=30).json()
    created = [e for e in audit if e["action"] == "collection.create" and e["resource"] == f"collection:{cid}"]
    assert created and created[0]["remote_address"] == "203.0.113.7", created

    # Providers as data and conversations live in PostgreSQL: a provider's key sealed by one server
    # opens on every other (the model's address is closed, so the failure is the connection, never
    # the key), and one conversation continues from server to server with gap-free numbering.
    first = cluster.servers[0].url
    prov = requests.post(first + "/api/users/me/llm-providers", timeout=30,
                         json={"name": "closed", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-cluster",
                               "is_default": True, "max_retries": 0}).json()
    assert requests.post(f"{first}/api/users/me/llm-providers/{prov['id']}/models", timeout=30,
                         json={"model_id": "m", "timeout": 2, "max_retries": 0}).status_code == 201
    session = requests.post(first + "/api/conversations", timeout=30,
                            json={"collection_id": cid, "session_name": "across"}).json()
    for s in cluster.servers:
        r = search(s.url, cid, "How does a volcano erupt?")
        assert r.status_code == 200, (s.url, r.text)
        assert r.json()["metadata"]["generation_error"]["code"] == "unavailable", r.json()["metadata"]
        turn = requests.post(f"{s.url}/api/conversations/{session['id']}/messages", timeout=60,
                             json={"content": "and what about lava?"})
        assert turn.status_code == 200, turn.text
    seqs = [m["seq"] for m in requests.get(f"{url}/api/conversations/{session['id']}/messages", timeout=30).json()]
    assert seqs == list(range(1, 2 * len(cluster.servers) + 1)), seqs
    assert requests.delete(f"{first}/api/users/me/llm-providers/{prov['id']}", timeout=30).status_code == 204

    # nginx spread the requests over every server.
    counts = cluster.nginx.upstream_counts()
    used = {f"127.0.0.1:{s.port}" for s in cluster.servers if counts.get(f"127.0.0.1:{s.port}", 0) > 0}
    assert len(used) == len(cluster.servers), counts

    state["reference"] = cid
    state["chunks"] = {name: f["chunk_count"] for name, f in by_name.items()}
    print(f"\nstart-up seconds: {cluster.timings}")
    print(f"calm: {len(files)} files, {pg_chunks} chunks, /ws events seen for every task; upstreams {counts}")


def test_faults_under_load_lose_nothing_and_duplicate_nothing(cluster):
    url = cluster.url
    state = shared_state(cluster)
    if "reference" not in state:
        pytest.fail("the calm test did not set up the reference collection (see its failure)", pytrace=False)
    reference, ref_chunks = state["reference"], state["chunks"]
    r = requests.post(url + "/api/collections", json={"name": "under-load"}, timeout=30)
    assert r.status_code == 200, r.text
    cid = r.json()["id"]
    stats = Stats()
    accepted: dict[str, str] = {}  # task id -> file name
    accepted_lock = threading.Lock()
    stop = threading.Event()
    timeline: list[str] = []
    t0 = time.monotonic()

    def note(what: str):
        timeline.append(f"{time.monotonic() - t0:6.1f}s {what}")

    def record(resp):
        if resp is None:
            return
        with accepted_lock:
            for a in resp.json():
                if a.get("task_id") and a.get("status") in ("processing", "duplicate"):
                    accepted[a["task_id"]] = a["filename"]

    def searcher(seed: int):
        rng = random.Random(seed)
        client = RetryingClient(url, stats)
        questions = list(QUESTIONS.items())
        while not stop.is_set():
            question, (source, _) = rng.choice(questions)
            config = {"top_k": 3, "retrieval_only": rng.random() < 0.5, "use_cache": rng.random() < 0.5}
            r = client.request("POST", "/api/search", "search",
                               json={"question": question, "collection_id": reference, "config_metadata": config})
            if r is not None and (not r.json()["query_results"] or
                                  r.json()["query_results"][0]["chunk"]["metadata"]["source"] != source):
                stats.add(wrong=1)
            if rng.random() < 0.2:
                client.request("GET", f"/api/collections/{cid}/files", "list")

    def uploader():
        client = RetryingClient(url, stats)
        for name, data in LOAD_DOCS.items():
            if stop.is_set():
                return
            record(client.request("POST", f"/api/collections/{cid}/documents", "upload", expect=(202,),
                                  files=[("files", (name, data))]))
            time.sleep(0.6)

    watcher = EventWatcher(f"ws://127.0.0.1:{cluster.nginx.port}/ws", [f"collection:{cid}"])
    watcher.start()
    assert watcher.subscribed.wait(10)
    threads = [threading.Thread(target=searcher, args=(i,), daemon=True) for i in range(3)]
    threads.append(threading.Thread(target=uploader, daemon=True))
    for t in threads:
        t.start()
    note("load started: 3 search threads, 1 upload thread")
    summary: dict = {}
    try:
        # 1. kill -9 the worker that is embedding the big file.
        main = RetryingClient(url, stats)
        r = main.request("POST", f"/api/collections/{cid}/documents", "upload", expect=(202,),
                         files=[("files", (BIG_FILE, BIG_DOC))])
        assert r is not None, stats.failures
        record(r)
        big_task = r.json()[0]["task_id"]
        deadline = time.monotonic() + 90
        task = {}
        while time.monotonic() < deadline:
            task = requests.get(f"{url}/api/tasks/{big_task}", timeout=30).json()
            if task["state"] == "running" and task["stage"] == "embed" and task["progress"] < 70:
                break
            assert task["state"] in ("queued", "running"), f"the big file finished before a worker could be killed: {task}"
            time.sleep(0.1)
        else:
            pytest.fail(f"the big file's task never reached the embed stage: {task}")
        owner = cluster.redis.cli("HGET", f"modulo:jobs:job:{big_task}", "lease_owner")
        victims = [w for w in cluster.workers if w.worker_id and w.worker_id in owner]
        assert len(victims) == 1, f"lease owner {owner!r} is none of the workers {[w.worker_id for w in cluster.workers]}"
        victim = victims[0]
        victim.kill()
        note(f"kill -9 worker {victim.worker_id} at {task['progress']:.0f} % of {BIG_FILE}")

        # 2. kill -9 a server: nginx routes around it; in-flight requests are retried by the client.
        time.sleep(2)
        dead_server = cluster.servers[0]
        dead_server.kill()
        note(f"kill -9 server {dead_server.url}")
        time.sleep(4)

        # 3. Restart Redis: the queue survives in the append-only file, caches fill again.
        question = "how does a spacecraft change orbits?"
        cluster.redis.restart()
        note("Redis restarted")
        hits = []
        for _ in range(3):
            r = main.request("POST", "/api/search", "search",
                             json={"question": question, "collection_id": reference,
                                   "config_metadata": {"top_k": 3, "use_cache": True, "retrieval_only": True}})
            hits.append(r is not None and r.json()["metadata"].get("cache_hit"))
            time.sleep(0.2)
        assert hits[-1], f"the result cache did not fill again after the Redis restart: cache_hit {hits}"
        time.sleep(3)

        # 4. Stop the replica: reads fall back to the primary.
        cluster.replica.stop("immediate")
        note("replica stopped (immediate)")
        for _ in range(20):
            main.request("GET", "/api/collections", "list")
            main.request("GET", f"/api/collections/{reference}", "list")
        note("20 listings after the replica stopped")

        # Let the uploads finish, then the killed worker's lease run out and the other worker
        # finish its job, with the searches still running.
        threads[-1].join(timeout=120)
        note(f"uploads done: {len(accepted)} accepted")
        files = wait_files_done(url, cid, timeout=180)
        note("every file completed or failed")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        watcher.stop()

    # Counts.
    files = files_of(url, cid)
    by_name: dict[str, list[dict]] = {}
    for f in files:
        by_name.setdefault(f["filename"], []).append(f)
    tasks = {tid: requests.get(f"{url}/api/tasks/{tid}", timeout=30).json() for tid in accepted}
    generation = cluster.primary.sql(f"SELECT generation FROM collections WHERE id = '{cid}'")
    rows = dict(line.split("|") for line in cluster.primary.sql(
        f"SELECT file_id, count(*) FROM chunks WHERE collection_id = '{cid}' AND generation = {generation} "
        "AND NOT is_parent GROUP BY file_id").splitlines() if line)
    completed = duplicated = 0
    problems = []
    for tid, name in accepted.items():
        f = next((f for f in by_name.get(name, []) if f["task_id"] == tid), None)
        task = tasks[tid]
        if f is None or f["status"] != "completed" or task.get("state") != "succeeded":
            problems.append(f"{name}: file {f and f['status']}, task {task.get('state')} {task.get('error')}")
            continue
        completed += 1
        stored = int(rows.get(f["id"], 0))
        if f["chunk_count"] != ref_chunks[name] or stored != ref_chunks[name]:
            duplicated += 1
            problems.append(f"{name}: {f['chunk_count']} chunks listed, {stored} stored, {ref_chunks[name]} expected")
    extra_files = sum(len(v) - 1 for v in by_name.values() if len(v) > 1)  # one content, one file
    duplicated += extra_files
    repeated_completions = sum(1 for tid in accepted if watcher.count(tid, "completed") > 1)
    lost = len(accepted) - completed
    big = tasks.get(big_task, {})
    collection = requests.get(f"{url}/api/collections/{cid}", timeout=30).json()
    summary = {
        "requests_sent": stats.sent, "requests_failed": stats.failed, "requests_retried": stats.retried,
        "requests_by_kind": stats.by_kind, "searches_with_a_wrong_first_result": stats.wrong,
        "jobs_accepted": len(accepted), "jobs_completed": completed, "jobs_duplicated": duplicated,
        "jobs_lost": lost, "extra_file_records": extra_files,
        "completion_events_seen_twice_on_ws": repeated_completions, "ws_reconnects": watcher.reconnects,
        "killed_worker_job_attempts": big.get("attempts"), "collection_chunks": collection.get("chunk_count"),
        "upstreams": cluster.nginx.upstream_counts(), "timeline": timeline, "failures": stats.failures,
        "problems": problems,
    }
    (cluster.root / "cluster-summary.json").write_text(json.dumps(summary, indent=1))
    print("\nCLUSTER SUMMARY: requests sent {requests_sent}, failed {requests_failed}, retried {requests_retried}; "
          "jobs accepted {jobs_accepted}, completed {jobs_completed}, duplicated {jobs_duplicated}, "
          "lost {jobs_lost}".format(**summary))
    print(json.dumps(summary, indent=1))

    assert len(accepted) == len(LOAD_DOCS) + 1, summary
    assert duplicated == 0, summary
    assert lost == 0, summary
    assert stats.failed == 0, summary
    assert stats.wrong == 0, summary
    assert big.get("attempts", 0) >= 2, f"the killed worker's job was not run again: {big}"
    assert collection["chunk_count"] == sum(ref_chunks[n] for n in accepted.values()), summary
