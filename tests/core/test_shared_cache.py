"""The caches shared by every viewer and process (core.sharedcache) and the per-table write counters their keys
hold (core.data_version.tables)."""
from __future__ import annotations

import os
import uuid
import warnings

import pytest
from flask import Flask
from prometheus_client import REGISTRY

from matchmaker.core import data_version, sharedcache
from matchmaker.extensions import db
from matchmaker.listings import operations as ops

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _lookups(cache: str, result: str) -> float:
    return REGISTRY.get_sample_value("matchmaker_cache_lookups_total", {"cache": cache, "result": result}) or 0


def _redis_or_skip():
    import redis
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001
        warnings.warn(f"Redis at {REDIS_URL} does not answer ({exc}): the shared-cache tests on Redis are SKIPPED",
                      stacklevel=2)
        pytest.skip(f"no Redis at {REDIS_URL}")


def _bare_app(**config) -> Flask:
    """A Flask app with only the shared cache (no database): a stand-in for one more process or machine."""
    app = Flask(__name__)
    app.config.update(config)
    sharedcache.register(app)
    return app


@pytest.fixture
def redis_prefix():
    _redis_or_skip()
    prefix = f"mmtest:{os.environ.get('PYTEST_XDIST_WORKER', 'main')}:{uuid.uuid4().hex[:8]}:"
    yield prefix
    with _bare_app(REDIS_URL=REDIS_URL, CACHE_PREFIX=prefix).app_context():
        sharedcache.clear()


def test_a_commit_moves_the_counters_of_the_tables_it_wrote_only(make, world):
    """Does a committed write to needs move the needs counter (and not the capabilities one), while a rolled
    back write moves nothing?"""
    before = data_version.tables("needs", "capabilities")
    need = make.need(world["enterprise"], title="冷轧板表面缺陷在线检测")
    db.session.commit()
    after = data_version.tables("needs", "capabilities")
    assert after[0] > before[0] and after[1] == before[1]

    ops.update_listing(need, world["enterprise"], {"title": "改了又撤回"})
    db.session.rollback()
    assert data_version.tables("needs", "capabilities") == after


def test_a_bulk_update_moves_its_tables_counter(make, world):
    """Does an UPDATE statement run through the session (no ORM objects) move its table's counter?"""
    from matchmaker.listings.models import Capability
    make.capability(world["expert"], title="激光熔覆修复")
    db.session.commit()
    before = data_version.tables("capabilities")[0]
    db.session.execute(db.update(Capability).values(region="重庆"))
    db.session.commit()
    assert data_version.tables("capabilities")[0] == before + 1


@pytest.mark.nodb
def test_in_process_lookup_computes_once_and_counts():
    """Does the in-process store compute a value once per key, count the hit and the miss, and keep None?"""
    app = _bare_app()
    calls = []
    with app.app_context():
        hits, misses = _lookups("test", "hit"), _lookups("test", "miss")
        for _ in range(3):
            assert sharedcache.lookup("test", ("a", {2, 1}), lambda: calls.append(1)) is None
        assert len(calls) == 1
        assert (_lookups("test", "hit") - hits, _lookups("test", "miss") - misses) == (2, 1)


@pytest.mark.nodb
def test_turned_off_it_always_computes():
    """With MATCHMAKER_SHARED_CACHE=0, is every lookup computed afresh?"""
    app = _bare_app(SHARED_CACHE=False)
    calls = []
    with app.app_context():
        for _ in range(2):
            sharedcache.lookup("test", 1, lambda: calls.append(1))
    assert len(calls) == 2


@pytest.mark.nodb
def test_keys_are_the_same_in_every_process():
    """Is the key text independent of set and dict order (which differ between processes)?"""
    assert sharedcache.key_of("x", ({"b", "a"}, {"k": 1, "j": 2})) == sharedcache.key_of(
        "x", ({"a", "b"}, {"j": 2, "k": 1}))
    assert sharedcache.key_of("x", (1,)) != sharedcache.key_of("y", (1,))


@pytest.mark.nodb
def test_processes_share_entries_through_redis(redis_prefix):
    """Do two apps (two processes or machines) with the same REDIS_URL compute a value once between them,
    while an app with another prefix keeps its own?"""
    first, second = (_bare_app(REDIS_URL=REDIS_URL, CACHE_PREFIX=redis_prefix) for _ in range(2))
    other = _bare_app(REDIS_URL=REDIS_URL, CACHE_PREFIX=redis_prefix + "other:")
    calls = []
    with first.app_context():
        assert sharedcache.lookup("test", ("need", 7), lambda: calls.append("first") or {"ids": (3, 1)}) == {
            "ids": (3, 1)}
    with second.app_context():
        assert sharedcache.lookup("test", ("need", 7), lambda: calls.append("second")) == {"ids": (3, 1)}
    with other.app_context():
        sharedcache.lookup("test", ("need", 7), lambda: calls.append("other"))
        sharedcache.clear()
    assert calls == ["first", "other"]


@pytest.mark.nodb
def test_an_unreachable_redis_is_a_miss_not_an_error():
    """With Redis down, is the value computed (and the page served) rather than an error raised?"""
    app = _bare_app(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
    with app.app_context():
        try:
            assert sharedcache.lookup("test", 1, lambda: "computed") == "computed"
            assert sharedcache.lookup("test", 1, lambda: "again") == "again"
        finally:
            sharedcache._down_until = 0.0
