"""A Matchmaker cluster on loopback: gunicorn web nodes (each with its own index folder, index jobs left to
the workers) and `matchmaker worker` processes against one PostgreSQL database and Redis.

Plain helpers (no fixtures, no tests) shared by ``tests/indexing/test_cluster.py`` and
``scripts/cluster_bench.py``. Every process is started in its own session with a parent-death signal, and
``Cluster.stop()`` ends each one by its own process group id (SIGTERM, a bounded wait, then SIGKILL): no
process outlives the harness, even when the harness itself is killed.
"""
from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PASSWORD_FIELD = re.compile(r'name="csrf-token" content="([^"]+)"')
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, step: float = 0.05, what: str = "condition"):
    """Poll ``predicate()`` until it returns something true (returned); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(step)


def postgres_answers(url: str) -> bool:
    import psycopg
    try:
        with psycopg.connect(_libpq(url).rsplit("/", 1)[0] + "/postgres", connect_timeout=3):
            return True
    except Exception:
        return False


def redis_answers(url: str) -> bool:
    import redis
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=3).ping())
    except Exception:
        return False


def _libpq(url: str) -> str:
    return re.sub(r"^postgresql\+psycopg://", "postgresql://", url)


def create_database(base_url: str, prefix: str = "mm_cluster") -> str:
    """A new, empty PostgreSQL database next to ``base_url``; returns its SQLAlchemy URL."""
    import psycopg
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(base_url).rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    import psycopg
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_libpq(url).rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.popen.pid, sig)

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM to the process group, SIGKILL after ``grace`` seconds; returns the exit code."""
        if self.alive():
            for sig in (signal.SIGCONT, signal.SIGTERM):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    pass
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:  # the group: gunicorn's workers, or anything the process left
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            return self.popen.wait(10)
        except subprocess.TimeoutExpired:
            return None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass
class Node(Proc):
    port: int = 0
    index_dir: Path = field(default_factory=Path)
    started: float = 0.0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kw):
        import requests
        kw.setdefault("timeout", 300)
        return requests.get(self.base + path, **kw)

    def has_route(self, path: str) -> bool:
        try:
            return self.get(path, timeout=30).status_code != 404
        except Exception:
            return False

    def readyz(self) -> int | None:
        return self.readyz_body()[0]

    def readyz_body(self) -> tuple[int | None, dict]:
        try:
            response = self.get("/readyz", timeout=10)
        except Exception:
            return None, {}
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code, body if isinstance(body, dict) else {}

    def metric(self, name: str) -> float | None:
        """The sum of a metric's samples on this node's /metrics (None when the node has no such metric)."""
        response = self.get("/metrics", timeout=30)
        if response.status_code != 200:
            return None
        values = [float(line.rsplit(" ", 1)[1]) for line in response.text.splitlines()
                  if line.startswith(name) and not line.startswith("#")
                  and re.match(rf"{re.escape(name)}(\{{.*\}})? ", line)]
        return sum(values) if values else None

    def matches(self, need_id: int, token: str, k: int = 20) -> list[tuple[int, float]]:
        """(capability id, score) of the need's ranking on this node, through /api/v1."""
        response = self.get(f"/api/v1/needs/{need_id}/matches?k={k}",
                            headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, f"{self.name}: {response.status_code} {response.text[-500:]}"
        body = response.json()
        assert body["matching"] == "on", body
        return [(item["capability"]["id"], item["score"]) for item in body["items"]]


class Cluster:
    """Start nodes and workers; ``stop()`` ends all of them (also at exit of the harness's process)."""

    def __init__(self, database_url: str, redis_url: str, workdir: Path, model: str | None = None,
                 extra_env: dict | None = None) -> None:
        self.database_url, self.redis_url, self.workdir = database_url, redis_url, Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST_", "MATCHMAKER_"))}
        self.env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, MATCHMAKER_INDEX_WORKER="external",
                        MATCHMAKER_MATCHING="1", MATCHMAKER_MATCH_FLOOR="0", PYTHONUNBUFFERED="1",
                        SECRET_KEY="cluster-harness-secret-key-long-enough-0123456789",
                        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        if model:
            self.env["MATCHMAKER_EMBEDDING_MODEL"] = model
        self.env.update(extra_env or {})

    def _spawn(self, name: str, argv: list[str], env: dict, cls=Proc, **fields) -> Proc:
        log = self.workdir / f"{name}.log"
        handle = open(log, "ab")
        popen = subprocess.Popen(argv, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        handle.close()
        proc = cls(name=name, popen=popen, log=log, **fields)
        self.procs.append(proc)
        return proc

    def node(self, name: str, index_dir: Path | None = None, workers: int = 1) -> Node:
        """A gunicorn web node with an index folder of its own (empty unless it exists already)."""
        index_dir = Path(index_dir or self.workdir / name / "index")
        index_dir.mkdir(parents=True, exist_ok=True)
        prom = self.workdir / name / "prometheus"
        prom.mkdir(parents=True, exist_ok=True)
        for stale in prom.glob("*.db"):
            stale.unlink()
        env = dict(self.env, MATCHMAKER_INDEX_DIR=str(index_dir), PROMETHEUS_MULTIPROC_DIR=str(prom))
        port = free_port()
        argv = [sys.executable, "-m", "gunicorn"]
        if (REPO / "gunicorn.conf.py").exists():
            argv += ["-c", str(REPO / "gunicorn.conf.py")]
        # no control socket: gunicorn 27 puts every arbiter's at the same path (~/.gunicorn/gunicorn.ctl)
        argv += ["--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--timeout", "300", "--no-control-socket",
                 "wsgi:app"]
        return self._spawn(name, argv, env, cls=Node, port=port, index_dir=index_dir, started=time.monotonic())

    def worker(self, name: str, *args: str) -> Proc:
        """A `matchmaker worker` process (its own index folder: it shares nothing with the nodes but the database)."""
        index_dir = self.workdir / name / "index"
        index_dir.mkdir(parents=True, exist_ok=True)
        env = dict(self.env, MATCHMAKER_INDEX_DIR=str(index_dir))
        return self._spawn(name, [sys.executable, "-c", "from matchmaker.cli import main; main()", "worker",
                                  "--poll", "0.1", *args], env)

    def cli(self, *args: str, timeout: float = 1800) -> str:
        """Run a `matchmaker` command against the cluster's database; its output (raises on failure)."""
        env = dict(self.env, MATCHMAKER_INDEX_DIR=str(self.workdir / "cli-index"))
        done = subprocess.run([sys.executable, "-c", "from matchmaker.cli import main; main()", *args], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"matchmaker {' '.join(args)}: {done.stdout[-2000:]} {done.stderr[-3000:]}"
        return done.stdout

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


def worker_id(proc: Proc) -> str:
    """The name a `matchmaker worker` claims jobs under (``indexing.worker.worker_name``)."""
    return f"{socket.gethostname()}:{proc.pid}:worker"


def wait_ready(node: Node, probe, timeout: float) -> float:
    """Wait until the node can rank; returns the seconds since it was started. With a /readyz route that is
    its 200; without one (older code), a first successful ``probe(node)`` (which loads the model)."""
    def up() -> bool:
        if not node.alive():
            raise AssertionError(f"node {node.name} exited: {node.tail()}")
        code, body = node.readyz_body()
        if code == 200:
            return True
        if code == 503 and "failed" in str(body.get("reason", "")):  # it will not get ready: say why now
            raise AssertionError(f"node {node.name} is not ready and will not be: {body}")
        if code == 404:  # no readiness route: the first ranking request is the readiness
            probe(node)
            return True
        return False
    wait_for(up, timeout, step=0.1, what=f"node {node.name} ready")
    return time.monotonic() - node.started


def signed_in(base: str, email: str, password: str):
    """A requests session signed in through the real login form (CSRF on), and its CSRF token."""
    import requests
    session = requests.Session()
    token = PASSWORD_FIELD.search(session.get(f"{base}/login?lang=en", timeout=300).text)[1]
    response = session.post(f"{base}/login", data={"email": email, "password": password, "csrf_token": token},
                            allow_redirects=False, timeout=300)
    assert response.status_code in (302, 303), response.text[-500:]
    token = PASSWORD_FIELD.search(session.get(f"{base}/my", timeout=300).text)[1]
    return session, token
