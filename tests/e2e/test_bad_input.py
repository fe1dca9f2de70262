"""Bad input and faults: each gets the stated answer, and the server keeps serving."""
import json
import re
import resource
import socket
import threading
import time

import requests

from rawhttp import exchange, status_of


def still_serving(server):
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


def test_malformed_request_lines_and_headers_are_400(server):
    for raw in [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nNo-Colon-Header\r\n\r\n", b"GET /health HTTP/7.0\r\n\r\n",
                b"G\x00T /health HTTP/1.1\r\n\r\n", b"GET /health HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n"]:
        resp = exchange(server.port, raw)
        assert status_of(resp) == 400, (raw, resp[:200])
        body = json.loads(resp.split(b"\r\n\r\n", 1)[1])
        assert body["code"] == "invalid_argument" and body["detail"]
    still_serving(server)


def test_oversize_headers_are_431(server):
    resp = exchange(server.port, b"GET /health HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert status_of(resp) == 431
    assert b"header_too_large" in resp
    still_serving(server)


def test_oversize_body_is_413_before_the_body_is_read(server):
    # A 2 GB body is announced but never sent: the answer must come at once.
    start = time.monotonic()
    resp = exchange(server.port, b"POST /health HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 2000000000\r\n\r\n", read_all=False)
    assert status_of(resp) in (413, 405)
    assert time.monotonic() - start < 2
    still_serving(server)


def test_unknown_route_is_404_json_and_wrong_method_is_405_with_allow(server):
    r = requests.get(server.url + "/api/does-not-exist")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/json"
    assert r.json()["code"] == "not_found" and "does-not-exist" in r.json()["detail"]
    m = requests.delete(server.url + "/metrics")
    assert m.status_code == 405
    assert m.headers["Allow"] == "GET"
    assert m.json()["code"] == "method_not_allowed"


def test_bad_event_topics_are_400(server):
    assert requests.get(server.url + "/api/events").status_code == 400
    r = requests.get(server.url + "/api/events", params={"topic": "no colon"})
    assert r.status_code == 400 and "topic" in r.json()["detail"]


def test_slow_client_is_dropped_after_the_header_timeout(start_server):
    server = start_server("--header-timeout", "1")
    s = socket.create_connection(("127.0.0.1", server.port))
    start = time.monotonic()
    closed = False
    for c in b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Pad: " + b"a" * 20:
        try:
            s.send(bytes([c]))
        except OSError:
            closed = True
            break
        time.sleep(0.25)  # a byte every quarter second: the whole header never arrives in time
        if time.monotonic() - start > 4:
            break
    s.settimeout(3)
    try:
        closed = closed or s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        closed = True
    s.close()
    assert closed, "the server should have dropped the trickling client"
    assert time.monotonic() - start < 6
    still_serving(server)


def test_ten_thousand_idle_connections_do_not_crash_and_the_limit_holds(start_server):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    server = start_server("--max-connections", "3000", "--idle-timeout", "30", "--header-timeout", "30")
    socks = []
    try:
        for _ in range(10000):
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        time.sleep(1.0)
        # Connections beyond the limit were answered 503 and closed; the server still serves.
        refused = 0
        for s in socks[-200:]:
            s.settimeout(2)
            try:
                data = s.recv(200)
                refused += data.startswith(b"HTTP/1.1 503")
            except (socket.timeout, ConnectionResetError):
                pass
        assert refused > 0
    finally:
        for s in socks:
            s.close()
    time.sleep(0.5)
    still_serving(server)
    metrics = requests.get(server.url + "/metrics").text
    refused_total = float(re.search(r"^modulo_http_connections_refused_total (\S+)", metrics, re.M).group(1))
    assert refused_total >= 7000 - 50
    assert server.proc.poll() is None


def test_sigterm_under_load_cuts_no_response(start_server):
    server = start_server("--shutdown-grace", "10")
    stop = threading.Event()
    results = {"ok": 0, "incomplete": 0, "refused": 0}
    lock = threading.Lock()

    def hammer():
        session = requests.Session()
        while not stop.is_set():
            try:
                r = session.get(server.url + "/api/health", timeout=5)
                complete = r.status_code in (200, 503) and r.json()
                with lock:
                    results["ok" if complete else "incomplete"] += 1
            except requests.exceptions.ChunkedEncodingError:
                with lock:
                    results["incomplete"] += 1
            except (requests.ConnectionError, json.JSONDecodeError) as e:
                if "IncompleteRead" in str(e):
                    with lock:
                        results["incomplete"] += 1
                else:
                    with lock:
                        results["refused"] += 1
                    time.sleep(0.01)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    rc = server.stop()
    stop.set()
    for t in threads:
        t.join()
    assert rc == 0, server.log()
    assert results["ok"] > 100
    assert results["incomplete"] == 0, results
    assert "shutting down" in server.log() and "stopped" in server.log()


def test_invalid_configuration_is_refused_with_the_setting_named(tmp_path):
    import subprocess

    from conftest import modulo_bin

    r = subprocess.run([modulo_bin(), "serve", "--port", "http"], capture_output=True, text=True)
    assert r.returncode == 2 and "MODULO_PORT" in r.stderr and "--port" in r.stderr
    r = subprocess.run([modulo_bin(), "serve"], capture_output=True, text=True, env={"WEB_CONCURRENCY": "lots"})
    assert r.returncode == 2 and "WEB_CONCURRENCY" in r.stderr
    conf = tmp_path / "bad.conf"
    conf.write_text("MODULO_LOG_FORMAT=xml\n")
    r = subprocess.run([modulo_bin(), "--config", str(conf), "serve"], capture_output=True, text=True)
    assert r.returncode == 2 and "bad.conf:1" in r.stderr and "MODULO_LOG_FORMAT" in r.stderr


def test_config_command_shows_precedence(tmp_path):
    import subprocess

    from conftest import modulo_bin

    conf = tmp_path / "m.conf"
    conf.write_text("MODULO_PORT=7001\nMAX_TOP_K=50\nVECTOR_BATCH_SIZE=10\n")
    r = subprocess.run([modulo_bin(), "--config", str(conf), "config", "--port", "7003"], capture_output=True,
                       text=True, env={"MAX_TOP_K": "60"})
    assert r.returncode == 0, r.stderr
    assert "MODULO_PORT=7003" in r.stdout  # flag beats file
    assert "MAX_TOP_K=60" in r.stdout      # environment beats file
    assert "VECTOR_BATCH_SIZE=10" in r.stdout


def test_busy_port_is_a_clear_error(server):
    import subprocess

    from conftest import modulo_bin

    r = subprocess.run([modulo_bin(), "serve", "--port", str(server.port), "--data-dir", str(server.data_dir)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert str(server.port) in r.stderr and "cannot listen" in r.stderr
