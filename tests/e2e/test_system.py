"""Liveness, readiness, component health, metrics, request ids and OpenAPI of a running server."""
import re
import time

import requests


def test_health_ready_and_component_health(server):
    assert requests.get(server.url + "/health").json() == {"status": "ok"}
    assert requests.get(server.url + "/ready").json()["status"] == "ready"
    h = requests.get(server.url + "/api/health")
    assert h.status_code == 200
    body = h.json()
    assert body["status"] == "healthy"
    assert body["components"]["file_system"]["status"] == "healthy"


def test_component_health_turns_503_when_the_data_dir_breaks(server):
    import shutil

    shutil.rmtree(server.data_dir)
    h = requests.get(server.url + "/api/health")
    assert h.status_code == 503
    assert h.json()["components"]["file_system"]["status"] == "unhealthy"
    # /ready is a public probe: its checks run at most once a second, shared by every caller.
    deadline = time.monotonic() + 5
    while (r := requests.get(server.url + "/ready")).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r.status_code == 503 and r.json()["failing"] == ["file_system"], r.text
    assert requests.get(server.url + "/health").status_code == 200, "liveness is not readiness"


def test_request_ids_are_echoed_or_generated(server):
    r = requests.get(server.url + "/health", headers={"X-Request-ID": "client-id-123"})
    assert r.headers["X-Request-ID"] == "client-id-123"
    g = requests.get(server.url + "/health", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", g.headers["X-Request-ID"])
    assert requests.get(server.url + "/nope").headers["X-Request-ID"]


def test_metrics_expose_the_seed_names_with_route_templates(server):
    requests.get(server.url + "/health")
    requests.get(server.url + "/no/such/path/12345")
    text = requests.get(server.url + "/metrics").text
    assert 'rag_requests_total{method="GET",endpoint="/health",status="200"}' in text
    assert 'endpoint="unmatched",status="404"' in text
    assert "/no/such/path/12345" not in text, "raw paths never become labels"
    assert 'rag_request_duration_seconds_bucket{method="GET",endpoint="/health",le="+Inf"}' in text
    assert "# HELP rag_active_connections Active database connections" in text
    assert re.search(r"^modulo_http_open_connections \d+", text, re.M)
    for name in ["process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                 "process_start_time_seconds"]:
        assert re.search(rf"^{name} [0-9.e+]+$", text, re.M), name
    rss = float(re.search(r"^process_resident_memory_bytes (\S+)", text, re.M).group(1))
    assert rss < 200e6


def test_openapi_describes_every_route_and_every_described_route_exists(server):
    spec = requests.get(server.url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    described = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    for expected in [("GET", "/health"), ("GET", "/ready"), ("GET", "/api/health"), ("GET", "/metrics"),
                     ("GET", "/openapi.json"), ("GET", "/ws"), ("GET", "/api/events")]:
        assert expected in described
    for method, path in described:
        op = spec["paths"][path][method.lower()]
        assert op["summary"], f"{method} {path} has no summary"
        assert op["responses"], f"{method} {path} documents no responses"
        # The server must know the route: anything but 404/405 proves it.
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        r = requests.request(method, server.url + concrete, timeout=5, stream=True)
        assert r.status_code != 405, f"{method} {path} is described but not served"
        if r.status_code == 404:  # a missing resource is fine; a missing route is not
            body = r.json()
            detail = body["detail"] if "detail" in body else body["error"]["message"]  # FastAPI or OpenAI shape
            assert not detail.startswith("no route for"), f"{method} {path} is described but not served"
        r.close()
    # The reverse: probing methods the spec does not list on each path gives 405, never a handler
    # (unless another described template also matches the path, as /api/users/{user_id} matches
    # /api/users/me).
    def served_elsewhere(method, concrete):
        for other, ops in spec["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(other)) + "$"
            if method.lower() in ops and re.match(pattern, concrete):
                return True
        return False

    for path, ops in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"]:
            if method.lower() in ops or served_elsewhere(method, concrete):
                continue
            r = requests.request(method, server.url + concrete, timeout=5)
            assert r.status_code == 405, f"{method} {path} answered {r.status_code} but is not in the spec"


def test_readme_configuration_reference_is_current():
    import subprocess

    from conftest import ROOT, modulo_bin

    table = subprocess.run([modulo_bin(), "config", "--markdown"], capture_output=True, text=True, check=True).stdout
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- settings:begin -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert section == table, "README settings table is stale: regenerate it with `modulo config --markdown`"
