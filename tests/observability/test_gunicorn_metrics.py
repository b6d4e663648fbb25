"""Under gunicorn with several workers (gunicorn.conf.py: prometheus_client's multiprocess mode), does every
scrape of /metrics report the requests of all workers, whichever worker answers it, even after a worker died?"""
from __future__ import annotations

import json
import os
import re
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
    worker) count every request, and still count the requests of a worker killed with SIGKILL? And with JSON
    logs on, is every line gunicorn and the app write one JSON object, the access lines with request ids?"""
    import requests
    port, log_file = _free_port(), tmp_path / "stderr.log"
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], MATCHMAKER_MATCHING="0",
               MATCHMAKER_INDEX_WORKER="external", MATCHMAKER_INDEX_DIR=str(tmp_path / "index"),
               SECRET_KEY="gunicorn-metrics-test-secret-key-0123456789", PYTHONUNBUFFERED="1",
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"), MATCHMAKER_WEB_WORKERS="2",
               MATCHMAKER_BIND=f"127.0.0.1:{port}", MATCHMAKER_LOG_FORMAT="json", MATCHMAKER_ACCESS_LOG="1")
    env.pop("TEST_DATABASE_URL", None)
    stderr = log_file.open("w")  # a file, not a pipe: nobody reads a pipe while it fills
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app"],
                           cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    try:
        _wait(lambda: requests.get(f"{base}/login", timeout=5).status_code == 200, 120)
        def logins() -> list[dict]:  # the app's JSON access lines of the login pages served
            lines = [json.loads(line) for line in log_file.read_text().splitlines() if '"matchmaker.access"' in line]
            return [line for line in lines if line["path"] == "/login" and line["status"] == 200]

        def served() -> int:
            return len(logins())

        def pids() -> set[int]:
            return {line["pid"] for line in logins()}

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
        victim = sorted(pids())[0]
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: requests.get(f"{base}/login", timeout=5).status_code == 200, 60)
        sent = served()
        assert [_login_count(requests, base) for _ in range(4)] == [sent] * 4
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=60)
        stderr.close()
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]  # all JSON
    access = [line for line in lines if line["logger"] == "matchmaker.access" and line["path"] == "/login"]
    assert len(access) == sent and all(re.fullmatch(r"[0-9a-f]{32}", line["request_id"]) for line in access)
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)
