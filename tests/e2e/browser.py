"""Helpers for end-to-end browser tests: a real HTTP server on its own SQLite file, and headless Chromium.

The server app is separate from the session's test app: its own temporary database (not the rolled-back
fixture DB), CSRF enabled (the real forms), matching off. Werkzeug serves it on 127.0.0.1 with an
ephemeral port from a daemon thread.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = os.environ.get("MATCHMAKER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MATCHMAKER_CHROMEDRIVER", "/usr/bin/chromedriver")
#: upper bound of every explicit wait, in seconds
WAIT = 20


def browser_missing_reason() -> str | None:
    """Why the browser test cannot run here (None when it can)."""
    problems = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        problems.append("the Python package 'selenium' is not installed (pip install -e '.[test]')")
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            problems.append(f"{path} is missing (apt-get install {package})")
    if not problems:
        return None
    return ("BROWSER TESTS SKIPPED — CI MUST INSTALL THEM: " + "; ".join(problems)
            + ". Set MATCHMAKER_CHROMIUM / MATCHMAKER_CHROMEDRIVER for other locations.")


@dataclass
class LiveServer:
    app: object
    url: str
    tmpdir: str
    _server: object = field(repr=False, default=None)
    _thread: threading.Thread | None = field(repr=False, default=None)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        from matchmaker.indexing.worker import RUNNER_KEY
        index_worker = self.app.extensions.get(RUNNER_KEY)
        if index_worker is not None:  # else it keeps polling the deleted database until the process exits
            index_worker.stop()
        from matchmaker.extensions import db
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def start_server(extra_config: dict | None = None) -> LiveServer:
    """Create a fresh app on a temporary SQLite file, create its tables and serve it in a daemon thread."""
    from werkzeug.serving import make_server

    from matchmaker import create_app
    from matchmaker.extensions import db

    tmpdir = tempfile.mkdtemp(prefix="matchmaker-e2e-")
    config = {
        "SECRET_KEY": "e2e-secret-key-that-is-long-enough-0123456789abcdef",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(tmpdir) / 'e2e.sqlite'}",
        "WTF_CSRF_ENABLED": True,
        "MATCHMAKER_MATCHING": False,
        "MATCHMAKER_INDEX_DIR": str(Path(tmpdir) / "embeddings"),
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
    }
    config.update(extra_config or {})
    app = create_app(config)
    with app.app_context():
        db.create_all()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    return LiveServer(app=app, url=f"http://127.0.0.1:{server.server_port}", tmpdir=tmpdir,
                      _server=server, _thread=thread)


def make_driver():
    """Headless Debian Chromium with a fresh, empty profile; the profile is removed on ``driver.quit()``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="matchmaker-chrome-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1600",
                 "--lang=zh-CN"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    original_quit = driver.quit

    def quit_and_clean():
        try:
            original_quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    driver.quit = quit_and_clean
    return driver


def screenshot(driver, name: str) -> str:
    """Save a screenshot and the page source under /tmp; returns the screenshot path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = f"/tmp/matchmaker-e2e-{name}-{stamp}.png"
    try:
        driver.save_screenshot(path)
        Path(path).with_suffix(".html").write_text(driver.page_source, encoding="utf-8")
    except Exception as exc:  # the browser may be gone; the original failure matters more
        return f"(screenshot failed: {exc})"
    return path
