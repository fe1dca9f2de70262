"""Remote embedders: the OpenAI-compatible client against a running Modulo, and the watsonx.ai
client against a local stand-in of its documented protocol."""
import math
import subprocess
import time

import requests

from conftest import modulo_bin
from fakes.watsonx import FakeWatsonx
from ingest_util import create_collection, upload, wait_files_done


def embed(server, text):
    r = requests.post(server.url + "/v1/embeddings", json={"input": text}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_openai_compatible_client_against_a_running_modulo(start_server):
    upstream = start_server(name="upstream")
    proxy = start_server("--embedder", "openai", "--embedding-url", upstream.url + "/v1",
                         "--embedding-model", "all-MiniLM-L6-v2", name="proxy")
    a = embed(upstream, "the same text on both servers")["data"][0]["embedding"]
    b = embed(proxy, "the same text on both servers")["data"][0]["embedding"]
    assert len(b) == 384
    assert sum(x * y for x, y in zip(a, b)) > 0.99999
    health = requests.get(proxy.url + "/api/health").json()["components"]["embedding"]
    assert "remote" in health["message"]
    # Ingestion through the remote embedder, sized with estimated tokens.
    c = create_collection(proxy)
    upload(proxy, c["id"], [("a.md", b"# Remote\n\nChunks embedded by another server. " * 20)])
    files = wait_files_done(proxy, c["id"])
    assert files[0]["status"] == "completed" and files[0]["chunk_count"] >= 1


def test_watsonx_client_exchanges_and_refreshes_tokens_and_retries_429(start_server):
    fake = FakeWatsonx(token_lifetime=2, fail_first=1)
    try:
        server = start_server("--embedder", "watsonx", "--embedding-url", fake.url,
                              "--watsonx-iam-url", fake.url + "/identity/token",
                              "--watsonx-project-id", "proj-1", "--embedding-model", "ibm/slate-30m-english-rtrvr",
                              env={"MODULO_EMBEDDING_API_KEY": "test-key"}, name="wx")
        assert (429, "too_many_requests") in fake.rejected, "the first call was rate limited and retried"
        v = embed(server, ["alpha", "beta"])
        assert len(v["data"]) == 2 and len(v["data"][0]["embedding"]) == 8
        assert abs(math.sqrt(sum(x * x for x in v["data"][0]["embedding"])) - 1) < 1e-5, "vectors are normalised"
        grants = fake.token_grants
        time.sleep(2.2)  # past 80 % of the token's lifetime
        embed(server, ["gamma", "delta"])
        assert fake.token_grants > grants, "the IAM token was refreshed"
        assert not [r for r in fake.rejected if r[0] == 401], "no request was sent with an expired token"
        # The key never appears in configuration output.
        cfg = subprocess.run([modulo_bin(), "config"], capture_output=True, text=True,
                             env={"MODULO_EMBEDDING_API_KEY": "test-key"}).stdout
        assert "test-key" not in cfg and "MODULO_EMBEDDING_API_KEY=<redacted>" in cfg
    finally:
        fake.close()


def test_bad_remote_settings_stop_start_up_with_the_services_message(tmp_path):
    fake = FakeWatsonx()
    try:
        r = subprocess.run([modulo_bin(), "serve", "--port", "0", "--data-dir", str(tmp_path / "a"),
                            "--embedder", "watsonx", "--embedding-url", fake.url,
                            "--watsonx-iam-url", fake.url + "/identity/token", "--watsonx-project-id", "proj-1",
                            "--embedding-model", "ibm/slate-30m-english-rtrvr"],
                           capture_output=True, text=True, timeout=60, env={"MODULO_EMBEDDING_API_KEY": "wrong"})
        assert r.returncode == 1
        assert "API key could not be found" in r.stderr
        r = subprocess.run([modulo_bin(), "serve", "--port", "0", "--data-dir", str(tmp_path / "b"),
                            "--embedder", "openai", "--embedding-url", "http://127.0.0.1:9/v1",
                            "--embedding-model", "m"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and "127.0.0.1:9" in r.stderr
    finally:
        fake.close()
