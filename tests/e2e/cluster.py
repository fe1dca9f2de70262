"""The scale-out stack on one machine, for the cluster tests and the cluster benchmark.

Everything listens on 127.0.0.1 on free ports, lives under one temporary directory and is
stopped by `Cluster.stop()` (or the `cluster` fixture's teardown):

    PostgreSQL primary + one streaming replica   initdb / pg_ctl / pg_basebackup -R (as the
                                                 `postgres` user when run as root)
    Redis                                        redis-server --appendonly yes
    Milvus                                       tests/services/milvus.sh (embedded standalone),
                                                 or the one MODULO_TEST_MILVUS names
    modulo serve  x N (--worker-concurrency 0)   one shared --data-dir: the uploaded files'
    modulo worker x M                            volume, as a shared mount would be
    nginx                                        deploy/nginx.conf rendered with these ports

A service whose program is missing raises `ServiceMissing` with the way to install it; the
fixture turns that into a test failure (never a skip). Environment:

    MODULO_BIN           the modulo binary (default build/modulo)
    MODULO_PG_BIN        directory of initdb/pg_ctl (default: the newest /usr/lib/postgresql/*/bin)
    MODULO_TEST_MILVUS   URL of a running Milvus to use instead of starting one (one embedded
                         Milvus per machine: its etcd peer port is fixed)

Not thread-safe: one thread drives a Cluster; the processes it starts are what tests load.
"""
from __future__ import annotations

import glob
import json
import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
MILVUS_SH = ROOT / "tests" / "services" / "milvus.sh"


class ServiceMissing(RuntimeError):
    """A program the stack needs is not installed; the message says how to install it."""


class ServiceFailed(RuntimeError):
    """A service did not start or answer; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: pathlib.Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def modulo_bin() -> str:
    path = os.environ.get("MODULO_BIN", str(ROOT / "build" / "modulo"))
    if not os.access(path, os.X_OK):
        raise ServiceMissing(f"modulo binary not found at {path}; build it with `make build` or set MODULO_BIN")
    return path


def _wait(predicate, timeout: float, what: str, log: pathlib.Path | None = None, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise ServiceFailed(f"{what} within {timeout:.0f} s" + (f"; end of {log}:\n{tail(log)}" if log else ""))


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children, in seconds (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # fields[0] is the state (stat field 3): utime is field 14, stime 15, cutime 16, cstime 17.
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def pg_bin_dir() -> str:
    env = os.environ.get("MODULO_PG_BIN")
    if env and os.path.exists(os.path.join(env, "initdb")):
        return env
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        v = os.path.basename(os.path.dirname(d))
        if v.isdigit() and os.path.exists(os.path.join(d, "initdb")) and os.path.exists(os.path.join(d, "pg_ctl")):
            found.append((int(v), d))
    if found:
        return max(found)[1]
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return os.path.dirname(initdb)
    raise ServiceMissing("PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found: install them with "
                         "`apt-get install postgresql` (Debian), or set MODULO_PG_BIN to the directory that holds them")


class Postgres:
    """One PostgreSQL server: a primary (`Postgres(...).init()`) or a streaming replica of one
    (`Postgres(..., primary=p).init()`). As root it runs as the `postgres` user, in a directory
    under /tmp that user can reach (a pytest tmp_path is private to root)."""

    DATABASE = "modulo"

    def __init__(self, name: str, primary: "Postgres | None" = None):
        self.bin = pg_bin_dir()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self.owner = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceMissing("running as root and there is no `postgres` user to run PostgreSQL as: "
                                     "install the server with `apt-get install postgresql`, which creates it")
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"modulo_cluster_{name}_", dir="/tmp"))
        (self.dir / "sock").mkdir()
        self._hand_over(self.dir)
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.primary = primary
        self.port = free_port()
        self.running = False

    def _hand_over(self, path: pathlib.Path):
        if self.as_root:
            os.chown(path, self.owner.pw_uid, self.owner.pw_gid)
            for p in path.rglob("*"):
                os.lchown(p, self.owner.pw_uid, self.owner.pw_gid)

    def _run(self, argv: list[str], log_name: str, timeout: float = 120):
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        log = self.dir / log_name
        with open(log, "ab") as out:
            r = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout)
        if r.returncode != 0:
            raise ServiceFailed(f"`{' '.join(argv)}` exited with {r.returncode}:\n{tail(log)}\n{tail(self.log)}")

    def init(self) -> "Postgres":
        if self.primary is None:
            self._run([f"{self.bin}/initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                       "--locale=C.UTF-8", "--no-sync"], "initdb.log")
        else:
            self._run([f"{self.bin}/pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
                       "-D", str(self.data), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync"], "basebackup.log")
        self.start()
        if self.primary is None:
            self.sql(f"CREATE DATABASE {self.DATABASE}", db="postgres")
        return self

    def start(self):
        options = (f"-p {self.port} -k {self.dir / 'sock'} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c wal_level=replica "
                   "-c max_wal_senders=8 -c hot_standby=on -c shared_buffers=64MB")
        self._run([f"{self.bin}/pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options,
                   "start"], "pg_ctl.log")
        self.running = True

    def stop(self, mode: str = "fast"):
        """mode: fast (clean shutdown) or immediate (as a crash would leave it)."""
        if self.running:
            self.running = False
            self._run([f"{self.bin}/pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"], "pg_ctl.log")

    def url(self, db: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def sql(self, query: str, db: str = DATABASE) -> str:
        """Runs one statement with psql; returns its unaligned, tuples-only output."""
        r = subprocess.run([f"{self.bin}/psql" if os.path.exists(f"{self.bin}/psql") else "psql", "-X", "-q", "-A",
                            "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-c", query], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise ServiceFailed(f"psql on port {self.port} failed: {r.stderr.strip()}")
        return r.stdout.strip()

    def postmaster_pids(self) -> list[int]:
        """The postmaster and its children (backends, WAL sender/receiver, background workers)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [pid, *_children(pid)]

    def remove(self):
        if self.running:
            try:
                self.stop("immediate")
            except (ServiceFailed, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _children(pid: int) -> list[int]:
    out = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        return out
    for k in kids:
        out.append(k)
        out.extend(_children(k))
    return out


# ---------------------------------------------------------------------------------------------
# Redis


class Redis:
    """redis-server with an append-only file, so queued jobs survive a restart."""

    def __init__(self, dir: pathlib.Path):
        self.server = shutil.which("redis-server")
        self.cli_path = shutil.which("redis-cli")
        if not self.server or not self.cli_path:
            raise ServiceMissing("redis-server / redis-cli not found: install them with "
                                 "`apt-get install redis-server` (Debian)")
        self.dir = dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = self.dir / "redis.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "Redis":
        self.proc = subprocess.Popen(
            [self.server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--logfile", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: self._ping() or self._exited(), 20, "redis-server did not answer PING", self.log)
        if self._exited():
            raise ServiceFailed(f"redis-server exited with {self.proc.returncode}:\n{tail(self.log)}")
        return self

    def _exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def _ping(self) -> bool:
        try:
            return self.cli("PING") == "PONG"
        except (ServiceFailed, subprocess.TimeoutExpired):
            return False

    def cli(self, *args: str) -> str:
        r = subprocess.run([self.cli_path, "-h", "127.0.0.1", "-p", str(self.port), *args], capture_output=True,
                           text=True, timeout=10)
        if r.returncode != 0 or r.stdout.startswith("ERR") or "Could not connect" in r.stderr:
            raise ServiceFailed(f"redis-cli {' '.join(args)}: {r.stdout.strip()} {r.stderr.strip()}")
        return r.stdout.strip()

    def stop(self):
        """A clean shutdown: SIGTERM makes Redis flush the append-only file before it exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self):
        self.stop()
        self.start()


# ---------------------------------------------------------------------------------------------
# Milvus


class Milvus:
    """The embedded Milvus standalone (tests/services/milvus.sh), or the running one that
    MODULO_TEST_MILVUS names (then it is neither started nor stopped here). `begin()` starts it
    in the background (it takes 30-60 s), `wait()` returns its URL."""

    def __init__(self, dir: pathlib.Path):
        self.dir = dir
        self.external = os.environ.get("MODULO_TEST_MILVUS", "").strip()
        self.proc: subprocess.Popen | None = None
        self.url = self.external

    def begin(self) -> "Milvus":
        if self.external:
            return self
        server = os.environ.get("MILVUS_SERVER") or (str(ROOT / ".venv" / "bin" / "milvus-server")
                                                    if (ROOT / ".venv" / "bin" / "milvus-server").exists()
                                                    else shutil.which("milvus-server"))
        if not server:
            raise ServiceMissing("milvus-server not found: install the embedded Milvus into the project's virtual "
                                 f"environment with `{ROOT}/.venv/bin/pip install -r "
                                 f"{ROOT}/tests/services/requirements.txt`, or set MODULO_TEST_MILVUS to the URL "
                                 "of a running Milvus")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.out = open(self.dir / "milvus-sh.out", "wb")
        self.proc = subprocess.Popen(["bash", str(MILVUS_SH), "start", str(self.dir)], stdout=subprocess.PIPE,
                                     stderr=self.out, stdin=subprocess.DEVNULL)
        return self

    def wait(self, timeout: float = 240) -> str:
        if self.external:
            if not self.answers():
                raise ServiceFailed(f"MODULO_TEST_MILVUS={self.external} does not answer GET /v1/vector/collections")
            return self.url
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise ServiceFailed(f"milvus.sh start did not finish within {timeout:.0f} s")
        self.out.close()
        if self.proc.returncode != 0:
            raise ServiceFailed("tests/services/milvus.sh start failed:\n" + tail(self.dir / "milvus-sh.out", 40))
        self.url = out.decode().strip().splitlines()[-1]
        return self.url

    def answers(self) -> bool:
        try:
            return requests.get(self.url + "/v1/vector/collections", timeout=3).json().get("code") == 200
        except (requests.RequestException, ValueError):
            return False

    def collections(self) -> list[str]:
        r = requests.get(self.url + "/v1/vector/collections", timeout=10).json()
        return list(r.get("data") or [])

    def pids(self) -> list[int]:
        """The milvus processes (the launcher's process group)."""
        if self.external:
            return []
        try:
            pgid = int((self.dir / "milvus.pid").read_text())
        except (OSError, ValueError):
            return []
        return [pgid, *_children(pgid)]

    def stop(self):
        if self.external:
            return
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        subprocess.run(["bash", str(MILVUS_SH), "stop", str(self.dir)], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


# ---------------------------------------------------------------------------------------------
# Modulo processes


class Modulo:
    """One `modulo serve` (no workers) or `modulo worker` process."""

    def __init__(self, role: str, name: str, data_dir: pathlib.Path, logs: pathlib.Path, env: dict[str, str],
                 args: tuple[str, ...] = ()):
        self.role = role
        self.name = name
        self.port = free_port() if role == "serve" else 0
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = logs / f"{name}.log"
        self.stdout_path = logs / f"{name}.out"
        cmd = [modulo_bin(), role, "--data-dir", str(data_dir), *args]
        if role == "serve":
            cmd += ["--port", str(self.port), "--worker-concurrency", "0"]
        self._err = open(self.log, "ab")
        self._out = open(self.stdout_path, "wb")
        # From the source tree, where the default model directory (models/...) is.
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                     env={**os.environ, **env}, cwd=ROOT)
        self.worker_id = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 60):
        def ready():
            if not self.alive():
                raise ServiceFailed(f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log)}")
            if self.role == "serve":
                try:
                    return requests.get(self.url + "/ready", timeout=2).status_code == 200
                except requests.RequestException:
                    return False
            m = re.search(r"Modulo worker (\S+) is running", self.stdout_path.read_text(errors="replace"))
            if m:
                self.worker_id = m.group(1)
            return bool(m)
        _wait(ready, timeout, f"{self.name} did not become ready", self.log)

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
        self.proc.wait(timeout=60)

    def stop(self, timeout: float = 30):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        self._out.close()


# ---------------------------------------------------------------------------------------------
# nginx


def render_nginx_conf(conf: str, backends: list[int], listen_port: int, tmp: pathlib.Path) -> str:
    """deploy/nginx.conf with this machine's ports: the upstream's server lines (each keeping the
    file's parameters) point at `backends`, `listen 80` becomes 127.0.0.1:listen_port, and logs
    and temporary files go under tmp."""
    server_line = re.compile(r"^([ \t]*)server[ \t]+\S+:\d+([ \t]+[^;\n]*)?;[ \t]*\n", re.M)
    upstream = re.search(r"upstream\s+modulo_backend\s*\{(.*?)\n\s*\}", conf, re.S)
    if not upstream:
        raise ServiceFailed("deploy/nginx.conf has no `upstream modulo_backend { ... }` block")
    block = upstream.group(1)
    lines = list(server_line.finditer(block))
    if not lines:
        raise ServiceFailed("deploy/nginx.conf's upstream modulo_backend lists no `server host:port ...;` line")
    indent, params = lines[0].group(1), lines[0].group(2) or ""
    servers = "".join(f"{indent}server 127.0.0.1:{p}{params};\n" for p in backends)
    new_block = block[:lines[0].start()] + servers + server_line.sub("", block[lines[0].end():])
    out = conf[:upstream.start(1)] + new_block + conf[upstream.end(1):]
    out, n = re.subn(r"^([ \t]*)listen[ \t]+80[ \t]*;", rf"\1listen 127.0.0.1:{listen_port};", out, flags=re.M)
    if n != 1:
        raise ServiceFailed("deploy/nginx.conf should have exactly one `listen 80;`")
    out = re.sub(r"^([ \t]*)access_log[ \t]+[^ \t;]+", rf"\1access_log {tmp}/access.log", out, flags=re.M)
    temp_paths = "".join(f"    {kind}_temp_path {tmp}/{kind}_temp;\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    out = re.sub(r"^http\s*\{\n", "http {\n" + temp_paths, out, count=1, flags=re.M)
    # The test's directory is private to root; in production the Debian default user applies.
    if os.geteuid() == 0:
        out = "user root;\n" + out
    return out


class Nginx:
    def __init__(self, dir: pathlib.Path):
        self.bin = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        if not self.bin:
            raise ServiceMissing("nginx not found: install it with `apt-get install nginx-light` (Debian)")
        self.dir = dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = self.dir / "nginx.conf"
        self.log = self.dir / "error.log"
        self.proc: subprocess.Popen | None = None

    def start(self, backends: list[int]) -> "Nginx":
        self.conf.write_text(render_nginx_conf(NGINX_CONF.read_text(), backends, self.port, self.dir))
        directives = f"daemon off; pid {self.dir}/nginx.pid; error_log {self.log} notice;"
        base = [self.bin, "-p", str(self.dir), "-c", str(self.conf), "-g", directives]
        check = subprocess.run([*base, "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise ServiceFailed(f"nginx -t refused the rendered deploy/nginx.conf:\n{check.stderr}")
        self.proc = subprocess.Popen(base, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

        def up():
            if self.proc.poll() is not None:
                raise ServiceFailed(f"nginx exited with {self.proc.returncode}:\n{tail(self.log)}")
            try:
                requests.get(self.url + "/health", timeout=2)
                return True
            except requests.RequestException:
                return False
        _wait(up, 20, "nginx did not answer", self.log)
        return self

    def pids(self) -> list[int]:
        return [self.proc.pid, *_children(self.proc.pid)] if self.proc else []

    def upstream_counts(self) -> dict[str, int]:
        """Requests per upstream address, from the access log."""
        counts: dict[str, int] = {}
        try:
            text = (self.dir / "access.log").read_text(errors="replace")
        except OSError:
            return counts
        # $upstream_addr lists every server tried: "a, b" (passed on) or "a : b" (internal redirect).
        for m in re.finditer(r" upstream=(.*?) ust=", text):
            for addr in re.split(r"\s*[,:]\s+", m.group(1)):
                if addr and addr != "-":
                    counts[addr] = counts.get(addr, 0) + 1
        return counts

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish open requests
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------------------------
# The whole stack


class Cluster:
    """Starts the stack in `root` (see the module comment); `stop()` ends every part of it."""

    def __init__(self, root: pathlib.Path, servers: int = 3, workers: int = 2, extra_env: dict | None = None,
                 worker_concurrency: int = 2, worker_env: dict | None = None, replica: bool = True):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs = self.root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.data_dir = self.root / "data"  # shared by every modulo process
        self.n_servers, self.n_workers = servers, workers
        self.worker_concurrency = worker_concurrency
        self.extra_env = extra_env or {}
        self.worker_env = worker_env or {}  # over the shared settings, for the workers only
        self.with_replica = replica
        self.primary: Postgres | None = None
        self.replica: Postgres | None = None
        self.redis: Redis | None = None
        self.milvus: Milvus | None = None
        self.nginx: Nginx | None = None
        self.servers: list[Modulo] = []
        self.workers: list[Modulo] = []
        self.env: dict[str, str] = {}
        self.timings: dict[str, float] = {}  # seconds each step of start() took

    def _timed(self, name: str, t0: float) -> float:
        now = time.monotonic()
        self.timings[name] = round(now - t0, 1)
        return now

    @property
    def url(self) -> str:
        return self.nginx.url

    def start(self) -> "Cluster":
        try:
            modulo_bin()
            t = t0 = time.monotonic()
            self.milvus = Milvus(self.root / "milvus").begin()  # slowest: starts while the rest comes up
            self.redis = Redis(self.root / "redis").start()
            t = self._timed("redis", t)
            self.primary = Postgres("pg_primary").init()
            t = self._timed("postgres_primary", t)
            if self.with_replica:
                self.replica = Postgres("pg_replica", primary=self.primary).init()
                _wait(lambda: self.primary.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                                               db="postgres") == "1", 30, "the replica did not stream from the primary",
                      self.replica.log)
                t = self._timed("postgres_replica", t)
            milvus_url = self.milvus.wait()
            t = self._timed("milvus_remaining", t)
            self.timings["milvus_total"] = round(t - t0, 1)
            self.env = {
                "MODULO_AUTH": "none",  # one local admin; the servers listen on loopback only
                "DATABASE_URL": self.primary.url(),
                "DATABASE_REPLICA_URLS": self.replica.url() if self.replica else "",
                "REDIS_URL": self.redis.url,
                "VECTOR_STORE": milvus_url,
                "MILVUS_SHARDS_NUM": "2",
                "MODULO_TRUSTED_PROXIES": "127.0.0.1",
                "MODULO_TASK_RETRY_BASE_SECONDS": "1",
                "MODULO_SECRET_KEY": os.urandom(32).hex(),  # one server key: providers' API keys open anywhere
                **self.extra_env,
            }
            self.migrate()
            self.servers = [self.start_server(i + 1) for i in range(self.n_servers)]
            self.workers = [self.start_worker(i + 1) for i in range(self.n_workers)]
            for p in self.servers + self.workers:
                p.wait_ready()
            t = self._timed("migrate_and_modulo_processes", t)
            self.nginx = Nginx(self.root / "nginx").start([s.port for s in self.servers])
            self._timed("nginx", t)
        except BaseException:
            self.stop()
            raise
        return self

    def migrate(self):
        """`modulo migrate` when the binary has it; else the servers migrate as they start (they
        take PostgreSQL's advisory lock, so only one does)."""
        help_text = subprocess.run([modulo_bin(), "--help"], capture_output=True, text=True).stdout
        if re.search(r"^\s+migrate\b", help_text, re.M):
            r = subprocess.run([modulo_bin(), "migrate"], capture_output=True, text=True,
                               env={**os.environ, **self.env}, timeout=120, cwd=ROOT)
            if r.returncode != 0:
                raise ServiceFailed(f"modulo migrate failed:\n{r.stdout}\n{r.stderr}")

    def start_server(self, i: int) -> Modulo:
        return Modulo("serve", f"serve-{i}", self.data_dir, self.logs, self.env)

    def start_worker(self, i: int) -> Modulo:
        return Modulo("worker", f"worker-{i}", self.data_dir, self.logs, {**self.env, **self.worker_env},
                      ("--worker-concurrency", str(self.worker_concurrency)))

    def tier_pids(self) -> dict[str, list[int]]:
        """Process ids by tier, for CPU accounting."""
        return {
            "servers": [s.pid for s in self.servers if s.alive()],
            "workers": [w.pid for w in self.workers if w.alive()],
            "postgres": (self.primary.postmaster_pids() if self.primary else []) +
                        (self.replica.postmaster_pids() if self.replica and self.replica.running else []),
            "redis": [self.redis.proc.pid] if self.redis and self.redis.proc else [],
            "milvus": self.milvus.pids() if self.milvus else [],
            "nginx": self.nginx.pids() if self.nginx else [],
        }

    def describe(self) -> str:
        return json.dumps({"nginx": self.nginx.url if self.nginx else None,
                           "servers": [s.url for s in self.servers], "workers": [w.worker_id for w in self.workers],
                           "env": self.env, "root": str(self.root)}, indent=1)

    def stop(self):
        for part in [self.nginx, *self.servers, *self.workers]:
            if part is not None:
                try:
                    part.stop()
                except Exception:  # noqa: BLE001 -- teardown goes on with the next part
                    pass
        for pg in (self.replica, self.primary):
            if pg is not None:
                pg.remove()
        for part in (self.redis, self.milvus):
            if part is not None:
                try:
                    part.stop()
                except Exception:  # noqa: BLE001
                    pass
