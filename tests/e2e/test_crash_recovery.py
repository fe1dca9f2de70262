"""kill -9 at random moments during a 100-file ingest, then restart: every accepted file ends
completed or failed with a reason, none is stuck, and no chunk exists twice."""
import random
import signal
import sqlite3
import time

import requests

from conftest import Server
from ingest_util import create_collection, files_of, upload, wait_files_done

WORDS = ("retrieval augmented generation answers questions from documents with citations while "
         "vectors and keywords rank passages for each query across collections of files").split()


def document(i: int) -> bytes:
    rng = random.Random(i)
    paragraphs = []
    for p in range(12):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "."
                     for _ in range(rng.randint(4, 8))]
        paragraphs.append(f"## Part {p}\n\n" + " ".join(sentences))
    return (f"# Document {i}\n\n" + "\n\n".join(paragraphs)).encode()


def test_kill_9_during_ingest_loses_nothing_and_duplicates_nothing(tmp_path):
    rng = random.Random(1234)
    data = tmp_path / "data"
    args = ("--task-retry-base-seconds", "1", "--worker-concurrency", "4")
    server = Server(data, args)
    c = create_collection(server, "crash")
    accepted = {}
    kills = 0
    batches = [[(f"doc-{b * 10 + i}.md", document(b * 10 + i)) for i in range(10)] for b in range(10)]
    batches[3].append(("broken.pdf", b"%PDF-1.7 not really"))
    for b, batch in enumerate(batches):
        try:
            r = upload(server, c["id"], batch, timeout=60)
            if r.status_code == 202:
                for a in r.json():
                    if a["file_id"]:
                        accepted[a["file_id"]] = a["filename"]
        except requests.ConnectionError:
            pass  # not acknowledged: the client would retry
        if b % 3 == 1:
            time.sleep(rng.uniform(0.1, 1.5))
            server.stop(signal.SIGKILL)
            kills += 1
            server = Server(data, args)
    for _ in range(2):  # and a couple more while the backlog is processed
        time.sleep(rng.uniform(0.5, 2.0))
        server.stop(signal.SIGKILL)
        kills += 1
        server = Server(data, args)

    try:
        files = wait_files_done(server, c["id"], timeout=600)
        by_id = {f["id"]: f for f in files}
        assert kills >= 5
        assert set(accepted) <= set(by_id), "every acknowledged file is still there"
        for fid in accepted:
            f = by_id[fid]
            assert f["status"] in ("completed", "failed"), f
            if f["status"] == "failed":
                assert f["error"], f
        assert by_id[next(k for k, v in accepted.items() if v == "broken.pdf")]["status"] == "failed"
        completed = [f for f in files if f["status"] == "completed"]
        assert len(completed) >= 95, [(f["filename"], f["status"], f["error"]) for f in files if f["status"] != "completed"]
        for f in files:
            task = requests.get(f"{server.url}/api/tasks/{f['task_id']}").json()
            assert task["state"] in ("succeeded", "failed", "dead"), task
    finally:
        server.stop()
    db = sqlite3.connect(data / "modulo.db")
    dupes = db.execute("SELECT file_id, generation, chunk_number, COUNT(*) FROM chunks "
                       "GROUP BY 1, 2, 3 HAVING COUNT(*) > 1").fetchall()
    assert dupes == []
    same_text = db.execute("SELECT file_id, text, COUNT(*) FROM chunks WHERE is_parent = 0 "
                           "GROUP BY 1, 2 HAVING COUNT(*) > 1").fetchall()
    for file_id, text, n in same_text:  # identical text twice in one file must come from the document itself
        assert n <= 2, (file_id, n)
    total = db.execute("SELECT COUNT(*) FROM chunks WHERE is_parent = 0").fetchone()[0]
    assert total == sum(f["chunk_count"] for f in files)
    stuck = db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()[0]
    assert stuck == 0
