"""Documents in: uploads, background processing, per-file outcomes, deletes and bad input."""
import json
import threading

import requests
import websocket

from ingest_util import create_collection, files_of, upload, wait_files_done

MARKDOWN = b"""# Modulo guide

Modulo answers questions about documents. It cites its sources.

## Installing

Run make run. The server starts on port 8000.

## Searching

Hybrid search combines vectors and keywords.
"""

HTML = b"""<html><head><title>Page</title><script>var secret = 1;</script><style>p{}</style></head>
<body><nav>menu menu</nav><h1>Heading one</h1><p>Paragraph text about retrieval.</p>
<ul><li>first item</li><li>second item</li></ul></body></html>"""


def test_create_list_get_delete_collection(server):
    c = create_collection(server, "alpha", description="first", chunking={"strategy": "fixed", "chunk_tokens": 64})
    assert c["status"] == "created" and c["name"] == "alpha"
    assert c["chunking"]["strategy"] == "fixed" and c["chunking"]["chunk_tokens"] == 64
    assert c["vector_db_name"] == "user_local_collection_" + c["id"].replace("-", "")  # the seed's convention
    assert c["embedding_model"] == "all-MiniLM-L6-v2"
    listed = requests.get(server.url + "/api/collections").json()
    assert [x["id"] for x in listed] == [c["id"]]
    got = requests.get(f"{server.url}/api/collections/{c['id']}").json()
    assert got["files"] == []
    dup = requests.post(server.url + "/api/collections", json={"name": "alpha"})
    assert dup.status_code == 409 and dup.json()["code"] == "already_exists"
    assert requests.delete(f"{server.url}/api/collections/{c['id']}").status_code == 204
    assert requests.get(f"{server.url}/api/collections/{c['id']}").status_code == 404
    assert requests.delete(f"{server.url}/api/collections/{c['id']}").status_code == 404


def test_collection_input_is_validated(server):
    for body, needle in [({}, "name"), ({"name": ""}, "name"), ({"name": 5}, "name"),
                         ({"name": "x", "chunking": {"strategy": "magic"}}, "strategy"),
                         ({"name": "x", "chunking": {"chunk_tokens": 5000}}, "chunk_tokens"),
                         ({"name": "x", "colour": "red"}, "colour")]:
        r = requests.post(server.url + "/api/collections", json=body)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["detail"], (body, r.json())


def test_upload_processes_in_the_background_with_progress(server):
    c = create_collection(server)
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws", timeout=30)
    ws.recv()
    ws.send(json.dumps({"type": "subscribe", "topic": f"collection:{c['id']}"}))
    assert json.loads(ws.recv())["type"] == "subscribed"
    r = upload(server, c["id"], [("guide.md", MARKDOWN), ("page.html", HTML)])
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert [a["status"] for a in accepted] == ["processing", "processing"]
    assert all(a["file_id"] and a["task_id"] for a in accepted)
    files = wait_files_done(server, c["id"])
    by_name = {f["filename"]: f for f in files}
    assert by_name["guide.md"]["status"] == "completed" and by_name["guide.md"]["chunk_count"] >= 1
    assert by_name["guide.md"]["file_type"] == "markdown"
    assert by_name["page.html"]["file_type"] == "html"
    task = requests.get(f"{server.url}/api/tasks/{accepted[0]['task_id']}").json()
    assert task["state"] == "succeeded" and task["progress"] == 100 and task["attempts"] == 1
    got = requests.get(f"{server.url}/api/collections/{c['id']}").json()
    assert got["status"] == "completed"
    assert got["chunk_count"] == sum(f["chunk_count"] for f in files)
    # Progress events arrived on the WebSocket.
    events = []
    ws.settimeout(5)
    try:
        while len(events) < 50:
            events.append(json.loads(ws.recv()))
    except websocket.WebSocketTimeoutException:
        pass
    ws.close()
    states = {(e["data"].get("type"), e["data"].get("state")) for e in events if e["type"] == "event"}
    assert ("file", "completed") in states, events
    assert any(s == ("task", "running") for s in states), events


def test_reuploading_the_same_bytes_creates_no_duplicates(server):
    c = create_collection(server)
    first = upload(server, c["id"], [("a.md", MARKDOWN)]).json()
    wait_files_done(server, c["id"])
    again = upload(server, c["id"], [("renamed.md", MARKDOWN)]).json()
    assert again[0]["status"] == "duplicate" and again[0]["file_id"] == first[0]["file_id"]
    assert len(files_of(server, c["id"])) == 1


def test_each_bad_file_gets_its_own_outcome_and_the_others_proceed(server):
    c = create_collection(server)
    junk = bytes(range(256)) * 64
    files = [
        ("good.md", MARKDOWN),
        ("junk.txt", junk),                                # binary named .txt
        ("empty.txt", b""),                                # empty
        ("broken.pdf", b"%PDF-1.4\n1 0 obj <<>> garbage"),  # corrupt PDF
        ("../../etc/passwd", b"plain text with a hostile name"),
        ("nul\x00name.txt", b"text with a NUL in its name"),
        ("\u00e9\u00e8" * 200 + ".txt", "long unicode name".encode()),
    ]
    r = upload(server, c["id"], files)
    assert r.status_code == 202, r.text
    outcome = {a["filename"]: a for a in r.json()}
    assert outcome["empty.txt"]["status"] == "failed" and "empty" in outcome["empty.txt"]["error"]
    done = {f["filename"]: f for f in wait_files_done(server, c["id"])}
    assert done["good.md"]["status"] == "completed"
    assert done["junk.txt"]["status"] == "failed" and done["junk.txt"]["error"]
    assert done["broken.pdf"]["status"] == "failed" and done["broken.pdf"]["error"]
    # Hostile names are stored and shown faithfully, never used as paths.
    assert done["../../etc/passwd"]["status"] == "completed"
    assert "\u00e9\u00e8" * 200 + ".txt" in done
    failed_task = requests.get(f"{server.url}/api/tasks/{done['broken.pdf']['task_id']}").json()
    assert failed_task["state"] == "failed" and failed_task["attempts"] == 1, "unparsable files are not retried"
    assert requests.get(server.url + "/health").status_code == 200


def test_many_files_in_one_request(server):
    c = create_collection(server)
    files = [(f"note-{i}.txt", f"Note number {i}. It mentions topic {i % 7}.".encode()) for i in range(1000)]
    r = upload(server, c["id"], files, timeout=300)
    assert r.status_code == 202
    assert len(r.json()) == 1000 and all(a["status"] == "processing" for a in r.json())
    done = wait_files_done(server, c["id"], timeout=600)
    assert len(done) == 1000 and all(f["status"] == "completed" for f in done)
    metrics = requests.get(server.url + "/metrics").text
    assert 'modulo_jobs{state="succeeded"} 1000' in metrics
    assert 'modulo_jobs_finished_total{kind="ingest_file",state="succeeded"} 1000' in metrics


def test_oversize_upload_is_413_and_nothing_is_written(start_server):
    server = start_server("--max-upload-bytes", "1M")
    c = create_collection(server)
    r = requests.post(f"{server.url}/api/collections/{c['id']}/documents",
                      files=[("files", ("big.txt", b"x" * (2 * 1024 * 1024)))])
    assert r.status_code == 413
    assert files_of(server, c["id"]) == []
    spool = list((server.data_dir / "spool").iterdir())
    assert spool == [], spool


def test_upload_errors(server):
    c = create_collection(server)
    assert upload(server, "no-such-collection", [("a.md", MARKDOWN)]).status_code == 404
    r = requests.post(f"{server.url}/api/collections/{c['id']}/documents", json={"files": []})
    assert r.status_code == 415
    r = requests.post(f"{server.url}/api/collections/{c['id']}/documents", files=[("other", ("", b""))],
                      data={"note": "no files"})
    assert r.status_code == 400 and "files" in r.json()["detail"]


def test_deleting_a_document_removes_its_chunks(server):
    c = create_collection(server)
    upload(server, c["id"], [("a.md", MARKDOWN), ("b.html", HTML)])
    files = wait_files_done(server, c["id"])
    before = requests.get(f"{server.url}/api/collections/{c['id']}").json()["chunk_count"]
    victim = files[0]
    r = requests.delete(f"{server.url}/api/collections/{c['id']}/documents/{victim['id']}")
    assert r.status_code == 204
    after = requests.get(f"{server.url}/api/collections/{c['id']}").json()
    assert after["chunk_count"] == before - victim["chunk_count"]
    assert [f["id"] for f in after["files"]] == [files[1]["id"]]
    assert requests.delete(f"{server.url}/api/collections/{c['id']}/documents/{victim['id']}").status_code == 404


def test_unknown_task_is_404(server):
    assert requests.get(server.url + "/api/tasks/nope").status_code == 404


def test_reindex_switches_generations_atomically(server):
    import time

    c = create_collection(server, chunking={"chunk_tokens": 128, "overlap_tokens": 0})
    long_text = " ".join(f"Sentence {i} talks about retrieval and ranking of passages." for i in range(60))
    upload(server, c["id"], [("a.txt", long_text.encode()), ("b.html", HTML)])
    wait_files_done(server, c["id"])
    before = requests.get(f"{server.url}/api/collections/{c['id']}").json()
    assert before["generation"] == 1 and not before["reindexing"]
    r = requests.post(f"{server.url}/api/collections/{c['id']}/reindex",
                      json={"chunking": {"strategy": "fixed", "chunk_tokens": 16, "overlap_tokens": 0}})
    assert r.status_code == 202, r.text
    task = r.json()
    assert task["generation"] == 2
    second = requests.post(f"{server.url}/api/collections/{c['id']}/reindex")
    assert second.status_code in (202, 409)
    # Until the switch, readers see the old generation whole; after it, the new one whole.
    seen = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = requests.get(f"{server.url}/api/collections/{c['id']}").json()
        seen.add((now["generation"], now["chunk_count"]))
        if requests.get(f"{server.url}/api/tasks/{task['task_id']}").json()["state"] == "succeeded":
            break
        time.sleep(0.05)
    after = requests.get(f"{server.url}/api/collections/{c['id']}").json()
    assert after["generation"] == 2 and not after["reindexing"]
    assert after["chunking"]["strategy"] == "fixed"
    assert after["chunk_count"] > before["chunk_count"], "16-token chunks are more numerous"
    assert seen <= {(1, before["chunk_count"]), (2, after["chunk_count"])}, seen
    assert requests.post(f"{server.url}/api/collections/nope/reindex").status_code == 404
    bad = requests.post(f"{server.url}/api/collections/{c['id']}/reindex", json={"chunking": {"strategy": "x"}})
    assert bad.status_code == 400


def test_two_gigabyte_upload_is_refused_before_it_is_read(server):
    from rawhttp import exchange, status_of

    c = create_collection(server)
    head = (f"POST /api/collections/{c['id']}/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 2147483648\r\n\r\n").encode()
    resp = exchange(server.port, head + b"--B\r\n", read_all=False)
    assert status_of(resp) == 413
    assert files_of(server, c["id"]) == []
    assert list((server.data_dir / "spool").iterdir()) == []


def test_zip_bomb_and_deep_html_fail_or_complete_cleanly(server):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/'
                   'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("word/document.xml", b"<w:document>" + b"\0" * (1 << 30))  # 1 GiB of zeros
    deep = b"<html><body>" + b"<div>" * 100000 + b"deep text" + b"</div>" * 100000 + b"</body></html>"
    c = create_collection(server)
    r = upload(server, c["id"], [("bomb.docx", buf.getvalue()), ("deep.html", deep), ("ok.md", MARKDOWN)])
    assert r.status_code == 202
    done = {f["filename"]: f for f in wait_files_done(server, c["id"])}
    assert done["bomb.docx"]["status"] == "failed"
    assert done["bomb.docx"]["error"]
    assert done["deep.html"]["status"] in ("completed", "failed")
    assert done["ok.md"]["status"] == "completed"
    assert requests.get(server.url + "/health").status_code == 200


def test_progress_streams_over_server_sent_events(server):
    c = create_collection(server)
    events = []

    def listen():
        with requests.get(server.url + "/api/events", params={"topic": f"collection:{c['id']}"}, stream=True,
                          timeout=30) as r:
            for line in r.iter_lines():
                if line.startswith(b"data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1].get("type") == "file" and events[-1].get("state") == "completed":
                        return

    t = threading.Thread(target=listen)
    t.start()
    import time
    time.sleep(0.3)
    upload(server, c["id"], [("a.md", MARKDOWN)])
    t.join(timeout=30)
    assert any(e.get("type") == "task" and e.get("state") == "running" for e in events), events
    assert events[-1]["type"] == "file" and events[-1]["state"] == "completed"


def test_a_separate_worker_process_runs_the_jobs(start_server):
    import subprocess
    import time

    from conftest import modulo_bin

    server = start_server("--worker-concurrency", "0")
    c = create_collection(server)
    upload(server, c["id"], [("a.md", MARKDOWN), ("b.html", HTML)])
    time.sleep(0.5)
    assert all(f["status"] == "queued" for f in files_of(server, c["id"])), "the server runs no workers"
    worker = subprocess.Popen([modulo_bin(), "worker", "--concurrency", "2", "--data-dir", str(server.data_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        done = wait_files_done(server, c["id"], timeout=60)
        assert all(f["status"] == "completed" for f in done)
    finally:
        worker.terminate()
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert b"Modulo worker" in out
