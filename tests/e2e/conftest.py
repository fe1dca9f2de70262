"""Fixtures that start the built `modulo` binary on a free port and drive it over HTTP."""
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]


def modulo_bin() -> str:
    path = os.environ.get("MODULO_BIN", str(ROOT / "build" / "modulo"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"modulo binary not found at {path}; build it with `make build` or set MODULO_BIN")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running `modulo serve` process."""

    def __init__(self, data_dir: pathlib.Path, args=(), env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.stderr_path = data_dir.parent / f"modulo-{self.port}.log"
        cmd = [modulo_bin(), "serve", "--port", str(self.port), "--data-dir", str(data_dir), *args]
        full_env = dict(os.environ)
        # Most tests are about one user: run them without authentication (the server listens on
        # loopback). The tenancy tests ask for MODULO_AUTH=required.
        full_env["MODULO_AUTH"] = "none"
        full_env.update(env or {})
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, env=full_env)
        self.stdout_first_line = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"modulo exited with {self.proc.returncode}: {self.log()}")
            try:
                if requests.get(self.url + "/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.02)
        else:
            raise RuntimeError("modulo did not become ready: " + self.log())

    def log(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode


@pytest.fixture
def start_server(tmp_path):
    servers = []

    def start(*args, env=None, name="data"):
        s = Server(tmp_path / name, args, env)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def server(start_server):
    return start_server()
