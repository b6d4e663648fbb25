"""Shared fixtures: one app per session, a database transaction rolled back after every test,
clients that are anonymous or signed in as each role, and the fixtures several domains use.
Plain helpers (the ``Factory``, ``login``, ``PASSWORD`` …) live in ``tests/helpers.py``.

Set ``TEST_DATABASE_URL`` (e.g. postgresql+psycopg://postgres@127.0.0.1/matchmaker_test) to run the
same suite on PostgreSQL; the default is a temporary SQLite file per test process. Under pytest-xdist each
worker gets its own PostgreSQL database (``<name>_gw0``, ``<name>_gw1`` …), created on demand.
"""
from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import create_engine, event, text

from matchmaker import create_app
from matchmaker import matching_service as ms
from matchmaker.core import pagecache, sharedcache
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from tests.helpers import BATTERY_CAP_EN, BATTERY_NEED, OFF_TOPIC_CAPS, Api, Factory, login, make_token


def _postgres_admin(url: str):
    return create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")


def pytest_configure(config):
    """Give each xdist worker its own PostgreSQL database before any test module reads TEST_DATABASE_URL."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        url = f"{url}_{worker}"
        os.environ["TEST_DATABASE_URL"] = url
    name = url.rsplit("/", 1)[1]
    admin = _postgres_admin(url)
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


# Test files that run no SQL (the matching engine, the fair scheduler, catalogue checks …): marked ``nodb``
# so the PostgreSQL pass (scripts/test.sh) skips them; db_session below fails any of them that runs SQL.
NODB_PATHS = ("tests/matching/", "tests/fairs/test_scheduler.py")


def pytest_collection_modifyitems(config, items):
    root = Path(str(config.rootpath))
    for item in items:
        path = Path(str(item.path)).relative_to(root).as_posix()
        if path.startswith(NODB_PATHS):
            item.add_marker(pytest.mark.nodb)


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
        # (tests/indexing/test_index_jobs.py covers the thread and `matchmaker worker` on committed data)
        "MATCHMAKER_INDEX_WORKER": "inline",
        # inline jobs would rank every open need after each publish; tests/suggestions/test_shared_ranking.py
        # turns the warm-up on where it is the subject
        "RANKING_WARM": 0,
    })
    app.test_client_class = IsolatedClient
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.drop_all()


@pytest.fixture(autouse=True)
def db_session(app, request):
    """Everything a test (and the requests it makes) writes lives in one transaction, rolled back after.

    A test marked ``nodb`` (skipped on the PostgreSQL pass) fails here if it runs any SQL after all.
    """
    with app.app_context():
        # the rollback below takes the data versions back too: pages and values cached by an earlier test
        # must go
        pagecache.store().clear()
        sharedcache.clear()
        engines = db.engines  # Flask-SQLAlchemy picks binds from here, ignoring a session-level bind
        engine = engines[None]
        connection = engine.connect()
        outer = connection.begin()
        engines[None] = connection
        original = db.session
        db.session = db._make_scoped_session({"join_transaction_mode": "create_savepoint"})
        statements: list[str] = []
        nodb = request.node.get_closest_marker("nodb") is not None

        def seen(conn, cursor, statement, *args):
            statements.append(statement)

        if nodb:
            event.listen(engine, "before_cursor_execute", seen)
        try:
            yield db.session
        finally:
            if nodb:
                event.remove(engine, "before_cursor_execute", seen)
            db.session.remove()
            db.session = original
            engines[None] = engine
            if outer.is_active:
                outer.rollback()
            connection.close()
        if statements:
            pytest.fail(f"marked nodb, so the PostgreSQL pass skips it, but it ran SQL: {statements[0][:200]!r}")


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make():
    return Factory()


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


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """A cheap argon2 profile: the production one costs ~0.1-1 s a hash and most tests make several users.
    tests/accounts/ keeps the production profile (its conftest overrides this fixture)."""
    import matchmaker.accounts.models as account_models
    monkeypatch.setattr(account_models, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def api_as(app, world):
    """``api_as('enterprise')`` → a bearer-token client for that role's user."""
    return lambda role: Api(app, make_token(world[role]))


# -- the real matching engine ------------------------------------------------------------------------------

@pytest.fixture
def matching(app, tmp_path):
    """Matching switched on for this test, with its own empty index folder (the model is shared per process).
    The confidence floor stays off: a handful of listings is no pool the confidence is calibrated on (a true
    match scores "possible" or even "weak" there); ``floor`` switches it on."""
    saved = {k: app.config[k] for k in ("MATCHMAKER_MATCHING", "MATCHMAKER_INDEX_DIR", "MATCHMAKER_MATCH_FLOOR")}
    app.config.update(MATCHMAKER_MATCHING=True, MATCHMAKER_INDEX_DIR=str(tmp_path / "embeddings"),
                      MATCHMAKER_MATCH_FLOOR=False)
    app.extensions[ms.EXTENSION_KEY] = None
    yield
    app.config.update(saved)
    app.extensions[ms.EXTENSION_KEY] = None


@pytest.fixture
def floor(app, matching):
    """Matching with the confidence floor on, as in production."""
    app.config["MATCHMAKER_MATCH_FLOOR"] = True


@pytest.fixture
def docking(make, world):
    """A Chinese battery need, the right English capability from another city, and off-topic ones."""
    need = make.need(world["enterprise"], **BATTERY_NEED)
    right = make.capability(world["expert"], **BATTERY_CAP_EN)
    others = [make.capability(world["expert"], **kw) for kw in OFF_TOPIC_CAPS]
    own_org = make.capability(world["enterprise"], title="本公司储能电池低温电解液", field="new_energy",
                              summary="低温电解液", description="-20℃放电容量保持率90%")
    return {"need": need, "right": right, "others": others, "own_org": own_org}


# -- databases of their own, for code that must commit for real ---------------------------------------------

def _fresh_url(tmp_path, label):
    """An empty database of the suite's kind: a SQLite file, or a throwaway PostgreSQL database."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base or not base.startswith("postgresql"):
        return f"sqlite:///{tmp_path / (label + '.sqlite')}", None
    name = f"mm_bak_{label}_{uuid.uuid4().hex[:8]}"
    admin = _postgres_admin(base)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return base.rsplit("/", 1)[0] + f"/{name}", drop


@pytest.fixture
def fresh_app(tmp_path):
    """``fresh_app(label)`` → an app on a new, migrated, empty database (dropped afterwards)."""
    cleanups, apps = [], []

    def make_app(label):
        url, drop = _fresh_url(tmp_path, label)
        if drop:
            cleanups.append(drop)
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "MATCHMAKER_MATCHING": False,
                          "SECRET_KEY": "x" * 40, "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
                          "MATCHMAKER_INDEX_DIR": str(tmp_path / f"index-{label}")})
        with app.app_context():
            upgrade()
        apps.append(app)
        return app

    yield make_app
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    for drop in cleanups:
        drop()


@pytest.fixture
def fresh_db_url(tmp_path):
    """An empty database of the same kind the suite runs on (SQLite file, or a new PostgreSQL database)."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base or not base.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'migrations.sqlite'}"
        return
    name = f"mm_mig_{uuid.uuid4().hex[:8]}"
    admin = _postgres_admin(base)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def separate_app():
    """A second app on its own database (SQLite file, or a throwaway PostgreSQL schema) so two sessions can
    commit for real while the test's own transaction is rolled back."""
    url = os.environ.get("TEST_DATABASE_URL")
    config = {"TESTING": True, "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
              "MATCHMAKER_MATCHING": False, "WTF_CSRF_ENABLED": False}
    schema = None
    if url and url.startswith("postgresql"):
        schema = f"voucher_race_{os.getpid()}"
        config["SQLALCHEMY_DATABASE_URI"] = url
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"options": f"-csearch_path={schema}"}}
    else:
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(tempfile.mkdtemp()) / 'race.sqlite'}"
    app = create_app(config)
    with app.app_context():
        if schema:
            with db.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {schema}"))
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        if schema:
            with db.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        db.engine.dispose()
