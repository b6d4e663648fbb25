"""Under gunicorn with several workers (gunicorn.conf.py: prometheus_client's multiprocess mode), does every
scrape of /metrics report the requests of all workers, whichever worker answers it, even after a worker died?"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _login_count(requests, base) -> float:
    text = requests.get(f"{base}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "matchmaker_request_seconds_count" and sample.labels == {
                    "endpoint": "accounts.login", "method": "GET", "status": "200"}:
                return sample.value
    return 0.0


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_every_scrape_adds_up_all_gunicorn_workers(app, tmp_path):
    """With 2 gunicorn workers both serving the login page, does each of several scrapes (answered by either
    worker) count every request, and still count the requests of a worker killed with SIGKILL?"""
    import requests
    port, access_log = _free_port(), tmp_path / "access.log"
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], MATCHMAKER_MATCHING="0",
               MATCHMAKER_INDEX_WORKER="external", MATCHMAKER_INDEX_DIR=str(tmp_path / "index"),
               SECRET_KEY="gunicorn-metrics-test-secret-key-0123456789", PYTHONUNBUFFERED="1",
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"), MATCHMAKER_WEB_WORKERS="2",
               MATCHMAKER_BIND=f"127.0.0.1:{port}")
    env.pop("TEST_DATABASE_URL", None)
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "--access-logfile", str(access_log),
                            "--access-logformat", "%(p)s %(U)s %(s)s", "wsgi:app"],
                           cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: requests.get(f"{base}/login", timeout=5).status_code == 200, 120)
        def served() -> int:  # the login pages the workers served, by their access log
            return sum("/login 200" in line for line in access_log.read_text().splitlines())

        def pids() -> set[str]:
            return {line.split()[0] for line in access_log.read_text().splitlines() if "/login 200" in line}

        with ThreadPoolExecutor(4) as pool:  # new connections, so the kernel spreads them over the workers
            for _ in range(10):
                statuses = list(pool.map(lambda _: requests.get(f"{base}/login", timeout=30).status_code,
                                         range(12)))
                assert statuses == [200] * 12
                if len(pids()) == 2:
                    break
        assert len(pids()) == 2, "both workers should have served the login page"
        sent = served()
        assert sent >= 13
        counts = [_login_count(requests, base) for _ in range(6)]
        assert counts == [sent] * 6
        victim = int(sorted(pids())[0].strip("<>"))
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: requests.get(f"{base}/login", timeout=5).status_code == 200, 60)
        sent = served()
        assert [_login_count(requests, base) for _ in range(4)] == [sent] * 4
    finally:
        web.send_signal(signal.SIGTERM)
        web.communicate(timeout=60)
