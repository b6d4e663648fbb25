"""Browse pages shared across users and processes (listings.views._browse_body on core.sharedcache): two app
instances on one database and one Redis stand for two web processes or machines."""
from __future__ import annotations

import os
import uuid
import warnings

import pytest
from flask_migrate import upgrade
from prometheus_client import REGISTRY

from matchmaker import create_app
from matchmaker.core import sharedcache
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.listings import operations as ops

from tests.helpers import Factory, login

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _parts(result: str) -> float:
    return REGISTRY.get_sample_value("matchmaker_cache_lookups_total",
                                     {"cache": "page_part", "result": result}) or 0


@pytest.fixture
def two_nodes(fresh_db_url, tmp_path):
    """Apps A and B: one committed database, one Redis key prefix of their own (this test's)."""
    import redis
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001
        warnings.warn(f"Redis at {REDIS_URL} does not answer ({exc}): the two-process cache tests are SKIPPED",
                      stacklevel=2)
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"mmtest:{os.environ.get('PYTEST_XDIST_WORKER', 'main')}:{uuid.uuid4().hex[:8]}:"
    apps = [create_app({
        "TESTING": True, "SQLALCHEMY_DATABASE_URI": fresh_db_url, "SECRET_KEY": "x" * 40,
        "WTF_CSRF_ENABLED": False, "MATCHMAKER_MATCHING": False, "MATCHMAKER_INDEX_WORKER": "inline",
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"), "MATCHMAKER_INDEX_DIR": str(tmp_path / f"index-{name}"),
        "REDIS_URL": REDIS_URL, "CACHE_PREFIX": prefix}) for name in "ab"]
    with apps[0].app_context():
        upgrade()
    yield apps
    for app in apps:
        with app.app_context():
            sharedcache.clear()
            db.session.remove()
            db.engine.dispose()


def _page(app, user, url: str) -> str:
    client = app.test_client()
    if user is not None:
        login(client, user)
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def test_a_page_rendered_on_one_node_serves_another_user_on_another(two_nodes):
    """Is a browse page's shared part rendered for a visitor on node A served from Redis to a signed-in expert
    on node B — and does a write committed through A show on B's next view, while a write to another kind of
    listing leaves the page's shared part alone?"""
    a, b = two_nodes
    make = Factory()
    with a.app_context():
        firm_org, institute = make.org(kind="enterprise", name="重庆甲公司"), make.org(kind="institute")
        firm, expert = make.user(Role.ENTERPRISE, org=firm_org), make.user(Role.EXPERT, org=institute)
        capability = make.capability(expert, title="五轴联动加工中心共享")
        need = make.need(firm, title="轴承滚道磨削烧伤检测")
        db.session.commit()
        expert_id, capability_id, firm_id, need_id = expert.id, capability.id, firm.id, need.id

    assert "五轴联动加工中心共享" in _page(a, None, "/capabilities")
    hits = _parts("hit")
    with b.app_context():
        expert = db.session.get(type(expert), expert_id)
        page = _page(b, expert, "/capabilities")
    assert "五轴联动加工中心共享" in page and 'id="post-listing"' in page  # the expert's own button
    assert _parts("hit") == hits + 1

    with a.app_context():  # a need is closed: capability pages stay as they were
        firm = db.session.get(type(firm), firm_id)
        ops.close_listing(db.session.get(type(need), need_id), firm)
        db.session.commit()
    hits = _parts("hit")
    with b.app_context():
        _page(b, db.session.get(type(expert), expert_id), "/capabilities")
        assert "轴承滚道磨削烧伤检测" not in _page(b, None, "/needs")
    assert _parts("hit") == hits + 1  # /capabilities from Redis, /needs rendered again

    with a.app_context():  # the capability is closed through A: B's next view no longer lists it
        expert = db.session.get(type(expert), expert_id)
        ops.close_listing(db.session.get(type(capability), capability_id), expert)
        db.session.commit()
    with b.app_context():
        assert "五轴联动加工中心共享" not in _page(b, db.session.get(type(expert), expert_id), "/capabilities")
