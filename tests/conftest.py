"""Shared fixtures: one app per session, a database transaction rolled back after every test,
clients that are anonymous or signed in as each role, and small factories.

Set ``TEST_DATABASE_URL`` (e.g. postgresql+psycopg://postgres@127.0.0.1/matchmaker_test) to run the
same suite on PostgreSQL; the default is a temporary SQLite file.
"""
from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from matchmaker import create_app
from matchmaker.accounts.models import ExpertProfile, Membership, Organization, User
from matchmaker.core import pagecache
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.listings import operations as ops
from matchmaker.listings.models import Capability, Need

PASSWORD = "Correct-Horse-Battery-9"


class IsolatedClient(FlaskClient):
    """Each request runs in a fresh app context, as in production, even while a test holds one open.

    Without this, Flask reuses the test's app context and ``g`` (where flask-login caches the user) would
    leak from one request into the next.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def app():
    tmp = tempfile.mkdtemp(prefix="matchmaker-test-")
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{Path(tmp) / 'test.sqlite'}"
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": url,
        "WTF_CSRF_ENABLED": False,
        "MATCHMAKER_MATCHING": False,
        "MATCHMAKER_INDEX_DIR": str(Path(tmp) / "embeddings"),
        "MAIL_OUTBOX_DIR": str(Path(tmp) / "outbox"),  # not the checkout's instance/ folder
        # other connections cannot see this rolled-back transaction: index jobs run right after each commit
        # (tests/test_index_jobs.py covers the thread and `matchmaker worker` on committed data)
        "MATCHMAKER_INDEX_WORKER": "inline",
    })
    app.test_client_class = IsolatedClient
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.drop_all()


@pytest.fixture(autouse=True)
def db_session(app):
    """Everything a test (and the requests it makes) writes lives in one transaction, rolled back after."""
    with app.app_context():
        # the rollback below takes the data version back too: pages cached by an earlier test must go
        pagecache.store().clear()
        engines = db.engines  # Flask-SQLAlchemy picks binds from here, ignoring a session-level bind
        engine = engines[None]
        connection = engine.connect()
        outer = connection.begin()
        engines[None] = connection
        original = db.session
        db.session = db._make_scoped_session({"join_transaction_mode": "create_savepoint"})
        try:
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            engines[None] = engine
            if outer.is_active:
                outer.rollback()
            connection.close()


@pytest.fixture
def client(app):
    return app.test_client()


_seq = itertools.count(1)


class Factory:
    """Builds rows with sensible defaults; every call commits (to the test's savepoint)."""

    def org(self, kind="enterprise", hub_city="chongqing", **kw) -> Organization:
        n = next(_seq)
        org = Organization(name=kw.pop("name", f"测试机构{n}"), kind=kind, hub_city=hub_city,
                           region=kw.pop("region", "沙坪坝"), **kw)
        db.session.add(org)
        db.session.commit()
        return org

    def user(self, role: Role | str | None = None, org: Organization | None = None, hub_city=None,
             **kw) -> User:
        n = next(_seq)
        user = User(email=kw.pop("email", f"user{n}@example.test"), name=kw.pop("name", f"用户{n}"), **kw)
        user.set_password(PASSWORD)
        if role is not None:
            user.add_role(role)
            if hub_city:
                user.roles[-1].hub_city = hub_city
        if org is not None:
            user.memberships.append(Membership(organization=org, is_manager=True))
        db.session.add(user)
        if role == Role.EXPERT:
            db.session.add(ExpertProfile(user=user, title="教授", fields=["new_materials"], languages=["zh"]))
        db.session.commit()
        return user

    def need(self, user: User, status="published", **kw) -> Need:
        data = {
            "title": "低温锂电池放电性能提升", "industry": "new_energy",
            "background": "公司生产储能电池，北方客户冬季使用时容量衰减明显。",
            "problems": "零下20℃放电容量不足常温的60%。", "targets": "-20℃放电容量保持率≥85%，循环寿命≥2000次。",
            "hub_city": "chongqing", "region": "两江新区", "coop_modes": ["joint_dev"], "visibility": "public",
            "contact_name": "王工", "contact_phone": "023-61234567", "contact_email": "wang@example.test",
        }
        data.update(kw)
        return self._advance(ops.create_listing(Need, user, data, organization=user.primary_organization),
                             user, status)

    def capability(self, user: User, status="published", **kw) -> Capability:
        data = {
            "title": "低温电解液配方技术", "kind": "achievement", "summary": "宽温域电解液与负极改性。",
            "description": "团队开发的低温电解液使电池在-30℃保持80%容量。", "field": "new_energy", "trl": 6,
            "ip": "ZL202110000000.1", "coop_modes": ["license"], "hub_city": "chengdu", "region": "高新区",
        }
        data.update(kw)
        return self._advance(ops.create_listing(Capability, user, data, organization=user.primary_organization),
                             user, status)

    def _advance(self, listing, owner, status):
        if status in ("submitted", "published", "returned", "closed"):
            ops.submit_listing(listing, owner)
        if status in ("published", "closed"):
            ops.publish_listing(listing, self.moderator())
        if status == "returned":
            ops.return_listing(listing, self.moderator(), "请补充技术指标")
        if status == "closed":
            ops.close_listing(listing, owner)
        db.session.commit()
        return listing

    def moderator(self) -> User:
        if not hasattr(self, "_moderator"):
            self._moderator = self.user(Role.COORDINATOR)
        return self._moderator


@pytest.fixture
def make():
    return Factory()


def login(client: FlaskClient, user: User) -> FlaskClient:
    """Sign ``client`` in as ``user`` through the session, as flask-login would after a real login."""
    with client.session_transaction() as session:
        session["_user_id"] = user.session_token
        session["_fresh"] = True
    return client


@pytest.fixture
def world(make):
    """One user per role plus a second enterprise, for authorization tests."""
    firm = make.org(kind="enterprise", name="重庆甲公司")
    other_firm = make.org(kind="enterprise", name="成都乙公司", hub_city="chengdu")
    institute = make.org(kind="institute", name="某研究院")
    return {
        "enterprise": make.user(Role.ENTERPRISE, org=firm),
        "other_enterprise": make.user(Role.ENTERPRISE, org=other_firm),
        "expert": make.user(Role.EXPERT, org=institute),
        "coordinator": make.user(Role.COORDINATOR),
        "admin": make.user(Role.ADMIN),
        "firm": firm, "other_firm": other_firm, "institute": institute,
    }


@pytest.fixture
def client_as(app, world):
    """``client_as('expert')`` → a test client signed in as that role's user (``None`` → anonymous)."""

    def make_client(role: str | None):
        client = app.test_client()
        return login(client, world[role]) if role else client

    return make_client
