"""Answers benchmark driver: pipeline overhead without the provider, and first-token delay.

Starts bench/answers/timed_llm.py (a zero-delay OpenAI-compatible server), then `modulo serve`
with MODULO_LLM_* pointing at it, loads a small collection and measures, one request at a time:

  overhead     total − generate of metadata.stages (everything Modulo does around the model:
               retrieval with the result cache off, context assembly, prompt, citations)
  first token  the client's receipt time of the first token event − the time the fake wrote its
               first delta (carried in the delta's text; same machine, same clock)
  user's own provider   the overhead again when the model is the caller's own (providers as data:
               the answer profile is resolved from the store on every request)
  conversation turn     a turn's wall time at the client − its model calls (rewriting and
               generation): history, both messages stored, retrieval, the HTTP round trip

Usage: python drive.py MODULO_BIN [--requests N]
"""
import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import pathlib

import requests

HERE = pathlib.Path(__file__).resolve().parent
DOCS = {
    f"doc{i}.md": (f"# Topic {i}\n\n" + " ".join(
        f"Sentence {j} about volcanoes, orbits and sourdough bread number {i}." for j in range(40))).encode()
    for i in range(20)
}
QUESTIONS = ["how do volcanoes erupt", "what is an orbit", "how is sourdough bread made", "topic 7 sentence 3",
             "orbits and bread", "number 12 volcanoes"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modulo_bin")
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()

    fake = subprocess.Popen([sys.executable, str(HERE / "timed_llm.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    port_line = fake.stdout.readline().decode()
    assert port_line.startswith("PORT "), port_line
    fake_url = f"http://127.0.0.1:{int(port_line.split()[1])}/v1"
    data = tempfile.mkdtemp(prefix="modulo-bench-answers-")
    port = free_port()
    env = dict(os.environ, MODULO_AUTH="none", MODULO_LLM_PROVIDER="openai", MODULO_LLM_URL=fake_url,
               MODULO_LLM_MODEL="bench-model", MODULO_LLM_API_KEY="sk-bench", MODULO_LLM_CONTEXT_TOKENS="8192",
               MODULO_LLM_MAX_NEW_TOKENS="256")
    server = subprocess.Popen([args.modulo_bin, "serve", "--port", str(port), "--data-dir", data,
                               "--log-level", "warn"], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        c = requests.post(url + "/api/collections", json={"name": "bench"}, timeout=30).json()
        r = requests.post(f"{url}/api/collections/{c['id']}/documents",
                          files=[("files", (k, v)) for k, v in DOCS.items()], timeout=300)
        assert r.status_code == 202, r.text
        while True:
            files = requests.get(f"{url}/api/collections/{c['id']}/files", timeout=30).json()
            if all(f["status"] in ("completed", "failed") for f in files):
                break
            time.sleep(0.2)
        session = requests.Session()
        body = lambda q, **kw: {"question": q, "collection_id": c["id"], "config_metadata": {"use_cache": False}, **kw}
        probe = session.post(url + "/api/search", json=body("probe", answer_mode="generated"), timeout=30)
        assert probe.status_code == 200 and probe.json()["metadata"]["answer_type"] == "generated", probe.text[:500]

        overhead, generate, wall = [], [], []
        for i in range(args.requests):
            t = time.perf_counter()
            resp = session.post(url + "/api/search", json=body(QUESTIONS[i % len(QUESTIONS)]), timeout=30).json()
            wall.append((time.perf_counter() - t) * 1000)
            stages = {s["stage"]: s["duration_ms"] for s in resp["metadata"]["stages"]}
            assert resp["metadata"]["answer_type"] == "generated", resp["metadata"]
            overhead.append(stages["total"] - stages["generate"])
            generate.append(stages["generate"])

        # The same through the caller's own provider (providers as data: the profile is resolved
        # from the store on every request) and as conversation turns (history, two stored messages).
        prov = session.post(url + "/api/users/me/llm-providers", timeout=30,
                            json={"name": "bench", "base_url": fake_url, "api_key": "sk-bench", "is_default": True}).json()
        session.post(f"{url}/api/users/me/llm-providers/{prov['id']}/models", timeout=30,
                     json={"model_id": "bench-user-model", "context_tokens": 8192, "is_default": True})
        session.post(url + "/api/users/me/llm-parameters", timeout=30,
                     json={"name": "bench", "max_new_tokens": 256, "is_default": True})
        user_overhead = []
        for i in range(args.requests):
            resp = session.post(url + "/api/search", json=body(QUESTIONS[i % len(QUESTIONS)]), timeout=30).json()
            assert resp["metadata"]["profile"]["source"] == "user", resp["metadata"]
            stages = {s["stage"]: s["duration_ms"] for s in resp["metadata"]["stages"]}
            user_overhead.append(stages["total"] - stages["generate"])
        conv = session.post(url + "/api/conversations", timeout=30,
                            json={"collection_id": c["id"], "session_name": "bench", "max_messages": 10}).json()
        turn_overhead = []
        for i in range(args.requests):
            t = time.perf_counter()
            msg = session.post(f"{url}/api/conversations/{conv['id']}/messages", timeout=30,
                               json={"content": QUESTIONS[i % len(QUESTIONS)],
                                     "config_metadata": {"use_cache": False}}).json()
            elapsed = (time.perf_counter() - t) * 1000
            stages = {s["stage"]: s["duration_ms"] for s in msg["metadata"]["stages"]}
            turn_overhead.append(elapsed - stages.get("generate", 0.0) - stages.get("rewrite", 0.0))

        first = []
        for i in range(args.requests):
            with session.post(url + "/api/search", json=body(QUESTIONS[i % len(QUESTIONS)], stream=True),
                              timeout=30, stream=True) as r:
                event, seen = None, False
                for line in r.iter_lines(chunk_size=1, decode_unicode=True):  # each byte as it arrives
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "token" and not seen:
                        received = time.time_ns()
                        seen = True
                        text = json.loads(line[6:])["text"]
                        if text.startswith("t="):
                            first.append((received - int(text[2:].split()[0])) / 1e6)
                assert event == "done", event  # read to the end: no client goes away early

        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
              f"{args.requests} requests per case, one at a time, result cache off")
        print(f"{'case':<38} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
        for name, vals in (("overhead (total - generate)", overhead), ("generate (fake, zero delay)", generate),
                           ("client wall time", wall), ("first token: fake write -> client", first),
                           ("overhead, the user's own provider", user_overhead),
                           ("conversation turn: wall - model calls", turn_overhead)):
            print(f"{name:<38} {pct(vals, 50):8.2f} {pct(vals, 90):8.2f} {pct(vals, 99):8.2f}")
        print(f"bars: overhead p50 <= 10 ms: {'ok' if max(pct(overhead, 50), pct(user_overhead, 50)) <= 10 else 'MISSED'}; "
              f"first token p50 <= 5 ms: {'ok' if first and pct(first, 50) <= 5 else 'MISSED'}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        fake.stdin.close()
        fake.terminate()


if __name__ == "__main__":
    main()
