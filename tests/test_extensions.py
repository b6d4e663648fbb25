"""The database engine's pessimistic disconnect handling (extensions.ping_idle_connections): a pooled
connection is pinged only after sitting idle, and one the server dropped meanwhile is replaced."""
from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import create_engine, exc, text

from matchmaker.extensions import ping_idle_connections

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
needs_postgres = pytest.mark.skipif(not PG_URL.startswith("postgresql"),
                                    reason="a dropped server connection needs PostgreSQL (TEST_DATABASE_URL)")


def _engine(idle_seconds: float):
    engine = create_engine(PG_URL, pool_size=1, max_overflow=0)
    ping_idle_connections(engine, idle_seconds)
    return engine


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _drop(pid: int) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    time.sleep(0.2)


@needs_postgres
def test_a_connection_dropped_while_idle_is_replaced_before_use():
    """When the server ends a pooled connection that then sits idle past the threshold, does the next
    checkout ping it, find it gone and hand out a new one, so the request does not fail?"""
    engine = _engine(idle_seconds=0.1)
    try:
        pid = _backend_pid(engine)
        _drop(pid)
        time.sleep(0.2)
        assert _backend_pid(engine) != pid
    finally:
        engine.dispose()


@needs_postgres
def test_a_connection_in_use_a_moment_ago_is_not_pinged():
    """Is a connection returned within the threshold handed out without a ping (the round trip this saves
    on every request), so a drop in that window reaches the caller as a disconnect, which invalidates the
    pool and the next request gets a fresh connection?"""
    engine = _engine(idle_seconds=3600)
    try:
        pid = _backend_pid(engine)
        _drop(pid)
        with pytest.raises(exc.DBAPIError) as caught:
            _backend_pid(engine)
        assert caught.value.connection_invalidated
        assert _backend_pid(engine) != pid
    finally:
        engine.dispose()
