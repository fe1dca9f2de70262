"""Server memory while receiving a large upload: the multipart body is streamed to disk, so the
resident set should barely grow. Starts `modulo serve`, samples its VmRSS every 5 ms while a
100 MB file is uploaded, and prints the growth over the idle baseline measured in the same run.

Usage: .venv/bin/python bench/upload_memory.py BUILD_DIR [SIZE_MB]
"""
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

build = pathlib.Path(sys.argv[1])
size_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 100
root = pathlib.Path(__file__).resolve().parents[1]
model = os.environ.get("MODULO_MODEL_DIR", str(root / "models" / "all-MiniLM-L6-v2"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


with tempfile.TemporaryDirectory() as tmp:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([str(build / "modulo"), "serve", "--port", str(port), "--data-dir", f"{tmp}/d",
                             "--model-dir", model, "--access-log", "false", "--auth", "none"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            if requests.get(url + "/ready", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.02)
    cid = requests.post(url + "/api/collections", json={"name": "big"}).json()["id"]
    time.sleep(1.0)
    baseline = rss_kb(proc.pid)
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append(rss_kb(proc.pid))
            time.sleep(0.005)

    path = pathlib.Path(tmp) / "big.bin"
    with open(path, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(size_mb):
            f.write(block)
    t = threading.Thread(target=sample)
    t.start()
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        r = requests.post(f"{url}/api/collections/{cid}/documents", files=[("files", ("big.bin", f))], timeout=600)
    elapsed = time.perf_counter() - t0
    stop.set()
    t.join()
    proc.terminate()
    proc.wait()
    peak = max(samples)
    print(f"upload of {size_mb} MB: HTTP {r.status_code} in {elapsed:.2f} s ({size_mb / elapsed:.0f} MB/s); "
          f"server RSS idle {baseline / 1024:.1f} MB, peak while receiving {peak / 1024:.1f} MB, "
          f"growth {(peak - baseline) / 1024:.1f} MB ({len(samples)} samples)")
