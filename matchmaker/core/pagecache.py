"""Rendered-page cache for repeat views of browse, listing and match pages.

Rendering one of these pages costs ~5–20 ms of CPU (queries, Jinja, labels); paging back and forth, reloading
or returning to a match page asks for the same bytes again. A view marked ``@cached_page`` keeps its HTML per
process, keyed by everything its rendering reads:

- host, path and query string;
- the session's identity (the user's session token: it changes at logout and password change), language
  choice and CSRF secret, so a page is only ever served back to the session it was rendered for;
- the database's data version (core.data_version), which every committed write moves on: a key read before
  rendering never holds data older than it names, and any change anywhere makes every key new;
- for match pages, the versions of the match indexes this process has loaded.

Only plain successes are kept: 200 text/html that set no cookie, left the session unchanged and showed no
flashed message. A signed-in session is served from the cache only while it is neither over nor due its
last-seen update (accounts.sessions), so timeouts work exactly as without the cache. Entries live at most
``PAGE_CACHE_SECONDS`` (default 300; these pages read no clock today, the bound is for any that will) and a
process keeps at most ``PAGE_CACHE_MB``. ``X-Page-Cache: hit|miss`` says which it was.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, g, request, session
from flask_login.config import COOKIE_NAME

from . import data_version
from .metrics import CACHE_LOOKUPS

HEADER = "X-Page-Cache"
EXTENSION_KEY = "matchmaker.pagecache"
SOURCES_KEY = "matchmaker.pagecache.sources"


def cached_page(view=None, *, uses_index: bool = False):
    """Mark a GET view whose page may be served again from the cache (see the module docstring)."""
    def mark(fn):
        fn.page_cache = "index" if uses_index else "data"
        return fn
    return mark(view) if view is not None else mark


@dataclass(frozen=True)
class _Entry:
    body: bytes
    content_type: str
    expires: float


class PageStore:
    """A byte-bounded LRU of rendered pages with expiry; thread-safe (gunicorn threads, the dev server)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[tuple, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple, now: float) -> _Entry | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and entry.expires <= now:
                self._drop(key)
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple, entry: _Entry) -> None:
        if len(entry.body) > self.max_bytes // 8:  # one huge page must not evict everything else
            return
        with self._lock:
            self._drop(key)
            self._data[key] = entry
            self._bytes += len(entry.body)
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._data)))

    def _drop(self, key: tuple) -> None:
        entry = self._data.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.body)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._data)


def store():
    return current_app.extensions[EXTENSION_KEY]


@dataclass(frozen=True)
class _Sources:
    """What the key reads from the floors above core, handed in by the app factory (see ``register``)."""
    index_versions: Callable[[], tuple]
    session_settled: Callable[[], bool]


def _sources() -> _Sources:
    return current_app.extensions[SOURCES_KEY]


def _session_is_cacheable() -> bool:
    if "_flashes" in session:
        return False
    if "_user_id" in session:
        # Flask-Login's session protection would mark a session seen from another address/browser
        # non-fresh (a session change): leave those to the normal path
        identifier = current_app.login_manager._session_identifier_generator()
        return _sources().session_settled() and session.get("_id", identifier) == identifier
    # a remember-me cookie without a session signs the visitor in on this request: the session will change
    return current_app.config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME) not in request.cookies


def _key() -> tuple | None:
    kind = getattr(current_app.view_functions.get(request.endpoint), "page_cache", None)
    if kind is None or request.method != "GET" or not _session_is_cacheable():
        return None
    version = data_version.current()
    if version is None:
        return None
    return (request.host, request.full_path, session.get("_user_id"), session.get("lang"),
            session.get("csrf_token"), version, _sources().index_versions() if kind == "index" else None)


def serve_from_cache():
    """Before every request: answer a repeat view from the cache, else remember the key for storing."""
    if not current_app.config.get("PAGE_CACHE"):
        return None
    key = _key()
    if key is None:
        return None
    entry = store().get(key, time.monotonic())
    CACHE_LOOKUPS.labels("page", "miss" if entry is None else "hit").inc()
    if entry is None:
        g.page_cache_key = key
        return None
    response = current_app.response_class(entry.body, content_type=entry.content_type)
    response.headers[HEADER] = "hit"
    return response


def keep_rendered_page(response):
    """After a cacheable view ran: keep its page when it is a plain success that left the session alone."""
    key = g.pop("page_cache_key", None)
    if key is None:
        return response
    response.headers[HEADER] = "miss"
    if (response.status_code == 200 and response.mimetype == "text/html" and not response.direct_passthrough
            and "Set-Cookie" not in response.headers and not session.modified and "_flashes" not in session):
        ttl = float(current_app.config.get("PAGE_CACHE_SECONDS", 300))
        store().put(key, _Entry(response.get_data(), response.content_type, time.monotonic() + ttl))
    return response


def register(app, *, index_versions: Callable[[], tuple], session_settled: Callable[[], bool]) -> None:
    """``index_versions``: the versions of the match indexes this process has loaded; ``session_settled``:
    the signed-in session is neither over nor due its last-seen update (accounts.sessions)."""
    app.extensions[EXTENSION_KEY] = PageStore(int(float(app.config.get("PAGE_CACHE_MB", 64)) * 2**20))
    app.extensions[SOURCES_KEY] = _Sources(index_versions, session_settled)
    # first of all before-request functions: a hit skips loading the user and the session checks, which a
    # hit does not need (the key holds the session token, and only settled sessions are served)
    app.before_request_funcs.setdefault(None, []).insert(0, serve_from_cache)
    app.after_request(keep_rendered_page)
