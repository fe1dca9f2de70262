"""Helpers for the ingestion tests: collections, uploads and waiting for tasks."""
import time

import requests


def create_collection(server, name="docs", **extra):
    r = requests.post(server.url + "/api/collections", json={"name": name, **extra}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def upload(server, collection_id, files, timeout=120):
    """files: list of (filename, bytes). Returns the response."""
    parts = [("files", (name, data)) for name, data in files]
    return requests.post(f"{server.url}/api/collections/{collection_id}/documents", files=parts, timeout=timeout)


def files_of(server, collection_id):
    r = requests.get(f"{server.url}/api/collections/{collection_id}/files", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def wait_files_done(server, collection_id, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = files_of(server, collection_id)
        if files and all(f["status"] in ("completed", "failed") for f in files):
            return files
        time.sleep(0.1)
    raise AssertionError(f"files still processing: {[(f['filename'], f['status']) for f in files_of(server, collection_id)]}")
