"""Caches shared by every viewer, process and machine: what is the same for everyone is computed once.

The ranking memo of a need (suggestions.cache), the result counts of browse pages (listings.queries) and the
viewer-independent part of browse pages (listings.views) live here, in Flask-Caching: Redis when ``REDIS_URL``
is set (every gunicorn worker and every machine shares one entry), an in-process store otherwise
(at most ``SHARED_CACHE_ENTRIES`` entries, per process). ``MATCHMAKER_SHARED_CACHE=0`` turns them off.

A key names everything the value was computed from: the ids, arguments and viewer scope it depends on, and the
versions of the data it read (core.data_version's per-table counters, read *before* computing, so an entry
never holds data older than its key says; the match index versions where a ranking is involved). A write
therefore makes new keys only for what it changed; old entries simply stop being asked for and expire after
``SHARED_CACHE_SECONDS``. Values are pickled in both stores, so what works in-process works on Redis.

A cache that fails (Redis down, a timeout) is a miss, never an error: the value is computed, logged once, and
Redis is left alone for ``RETRY_SECONDS``. Lookups count in ``core.metrics.CACHE_LOOKUPS`` by cache name.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import current_app
from flask_caching import Cache

from .metrics import CACHE_LOOKUPS

log = logging.getLogger(__name__)

cache = Cache()
#: bump when the meaning or pickled shape of a cached value changes, so old entries in Redis are not read
KEY_FORMAT = "1"
RETRY_SECONDS = 10.0
_down_until = 0.0


def register(app) -> None:
    """Bind the shared store to ``app`` from its config (REDIS_URL, CACHE_PREFIX, SHARED_CACHE_SECONDS)."""
    config = {"CACHE_DEFAULT_TIMEOUT": int(app.config.get("SHARED_CACHE_SECONDS", 3600)),
              "CACHE_KEY_PREFIX": app.config.get("CACHE_PREFIX", "matchmaker:")}
    url = app.config.get("REDIS_URL")
    if url:
        config.update(CACHE_TYPE="RedisCache", CACHE_REDIS_URL=url,
                      CACHE_OPTIONS={"socket_timeout": 1.0, "socket_connect_timeout": 1.0})
    else:
        config.update(CACHE_TYPE="SimpleCache", CACHE_THRESHOLD=int(app.config.get("SHARED_CACHE_ENTRIES", 4096)))
    cache.init_app(app, config=config)


def enabled() -> bool:
    return bool(current_app.config.get("SHARED_CACHE", True))


def canonical(value: Any) -> Any:
    """``value`` with sets sorted and dicts as sorted pairs: the same key text in every process."""
    if isinstance(value, (set, frozenset)):
        return tuple(sorted((canonical(v) for v in value), key=repr))
    if isinstance(value, dict):
        return tuple(sorted((canonical(k), canonical(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(canonical(v) for v in value)
    return value


def key_of(name: str, parts: Any) -> str:
    digest = hashlib.sha256(repr(canonical(parts)).encode()).hexdigest()[:40]
    return f"{name}:{KEY_FORMAT}:{digest}"


def _backend():
    global _down_until
    if time.monotonic() < _down_until:
        return None
    return cache.cache


def _failed(action: str, exc: Exception) -> None:
    global _down_until
    if time.monotonic() >= _down_until:
        log.warning("shared cache: %s failed (%s: %s); computing without it for %.0f s", action,
                    type(exc).__name__, exc, RETRY_SECONDS)
    _down_until = time.monotonic() + RETRY_SECONDS


def get(name: str, parts: Any):
    """(True, value) when the cache ``name`` holds ``parts``' entry, else (False, None); counted."""
    if not enabled():
        return False, None
    backend = _backend()
    found = None
    if backend is not None:
        try:
            found = backend.get(key_of(name, parts))
        except Exception as exc:  # noqa: BLE001 — any store failure is a miss
            _failed("get", exc)
    CACHE_LOOKUPS.labels(name, "miss" if found is None else "hit").inc()
    return (False, None) if found is None else (True, found[0])


def put(name: str, parts: Any, value: Any, timeout: int | None = None) -> None:
    if not enabled():
        return
    backend = _backend()
    if backend is None:
        return
    try:
        backend.set(key_of(name, parts), (value,), timeout=timeout)  # a 1-tuple: None is a value too
    except Exception as exc:  # noqa: BLE001
        _failed("set", exc)


def lookup(name: str, parts: Any, compute: Callable[[], Any], timeout: int | None = None) -> Any:
    """The value cached under ``parts`` in cache ``name``, or ``compute()``'s, kept for the next asker."""
    hit, value = get(name, parts)
    if hit:
        return value
    value = compute()
    put(name, parts, value, timeout)
    return value


def clear() -> None:
    """Forget every entry of this app's store (its key prefix only, on Redis)."""
    global _down_until
    _down_until = 0.0
    try:
        cache.clear()
    except Exception as exc:  # noqa: BLE001
        _failed("clear", exc)
