"""Rate limits (Flask-Limiter) on login, registration and API token creation: per client address, per
submitted email for failed logins, a 429 with the reason, the refusals audited; memory and Redis storage."""
from __future__ import annotations

import socket

import pytest

from matchmaker.core.audit import AuditEvent
from matchmaker.extensions import db, limiter

from tests.helpers import PASSWORD, login

REDIS_URI = "redis://127.0.0.1:6379/15"  # a database number no one else uses; flushed by the test


@pytest.fixture(autouse=True)
def english(app, monkeypatch):
    """Messages in English, whatever the catalogue holds."""
    monkeypatch.setattr(app.extensions["babel"], "locale_selector", lambda: "en")


@pytest.fixture
def limits_on(app, monkeypatch):
    """Limits on, with small numbers so a test reaches them quickly; counters start empty."""
    monkeypatch.setitem(app.config, "MATCHMAKER_RATE_LIMITS", True)
    monkeypatch.setitem(app.config, "RATELIMIT_LOGIN", "100 per minute")
    monkeypatch.setitem(app.config, "RATELIMIT_LOGIN_FAILURES", "3 per 15 minutes")
    limiter.reset()
    yield app
    limiter.reset()


def actions(name: str) -> list[AuditEvent]:
    return db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == name)).all()


def signed_in(client) -> bool:
    with client.session_transaction() as session:
        return "_user_id" in session


def wrong_login(client, email, **kw):
    return client.post("/login", data={"email": email, "password": "not the password 1"}, **kw)


def test_failed_logins_per_email_limited_then_even_right_password_refused(client, make, limits_on):
    """After 3 failures for one email, is the right password refused with 429 and the form's message, the
    failures and the refusal audited, while another email still logs in?"""
    make.user(email="target@example.com")
    other = make.user(email="other@example.com")
    for _ in range(3):
        assert wrong_login(client, "target@example.com").status_code == 401
    response = client.post("/login", data={"email": "Target@Example.com ", "password": PASSWORD})
    assert response.status_code == 429 and not signed_in(client)
    page = response.get_data(as_text=True)
    assert "Too many attempts. Wait a few minutes and try again." in page and 'name="password"' in page
    assert "Retry-After" in response.headers
    assert len(actions("auth.login_failed")) == 3
    assert [e.comment for e in actions("auth.login_throttled")] == ["target@example.com"]
    fresh = client.application.test_client()
    assert fresh.post("/login", data={"email": other.email, "password": PASSWORD}).status_code == 302


def test_successful_logins_do_not_count_as_failures(app, make, limits_on):
    """Only wrong passwords use up the per-email budget: five good logins in a row all succeed."""
    user = make.user(email="busy@example.com")
    for _ in range(5):
        client = app.test_client()
        assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302


def test_login_submissions_limited_per_client_address(app, make, limits_on, monkeypatch):
    """Is one address refused after its budget of login posts (whatever the emails), while another address
    is not affected?"""
    monkeypatch.setitem(app.config, "RATELIMIT_LOGIN", "4 per minute")
    attacker = app.test_client()
    for n in range(4):
        assert wrong_login(attacker, f"guess{n}@example.com").status_code == 401
    assert wrong_login(attacker, "guess9@example.com").status_code == 429
    assert attacker.get("/login").status_code == 200  # showing the form is not limited
    user = make.user()
    elsewhere = app.test_client()
    response = elsewhere.post("/login", data={"email": user.email, "password": PASSWORD},
                              environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert response.status_code == 302


def test_registration_limited_per_client_address(app, limits_on, monkeypatch):
    """Is a burst of registrations from one address refused (429, the form again) and nothing created?"""
    from matchmaker.accounts.models import User
    monkeypatch.setitem(app.config, "RATELIMIT_REGISTER", "2 per hour")
    client = app.test_client()
    bad = {"name": "x", "email": "not-an-email", "password": "short", "confirm": "short",
           "account_type": "expert"}
    assert client.post("/register", data=bad).status_code == 400
    assert client.post("/register", data=bad).status_code == 400
    before = db.session.scalar(db.select(db.func.count(User.id)))
    good = {"name": "张三", "email": "new-person@example.com", "password": PASSWORD, "confirm": PASSWORD,
            "account_type": "expert", "fields": ["new_energy"], "locale": "en"}
    response = client.post("/register", data=good)
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(User.id))) == before


def test_api_token_creation_limited_per_user_with_json_reason(app, make, limits_on, monkeypatch):
    """Is token creation limited per user, answering JSON with a reason to a JSON client?"""
    monkeypatch.setitem(app.config, "RATELIMIT_API_TOKENS", "2 per hour")
    client = login(app.test_client(), make.user())
    for n in range(2):
        assert client.post("/profile/tokens", data={"name": f"script {n}", "expires_in": "30"}).status_code == 201
    response = client.post("/profile/tokens", data={"name": "one more", "expires_in": "30"},
                           headers={"Accept": "application/json"})
    assert response.status_code == 429
    body = response.get_json()
    assert body["status"] == 429 and "Wait an hour" in body["reason"]


def test_limits_off_by_config(client, make, app, monkeypatch):
    """With MATCHMAKER_RATE_LIMITS off (the test suite's default), many failures are never refused."""
    monkeypatch.setitem(app.config, "RATELIMIT_LOGIN_FAILURES", "1 per hour")
    assert app.config["MATCHMAKER_RATE_LIMITS"] is False
    make.user(email="free@example.com")
    statuses = {wrong_login(client, "free@example.com").status_code for _ in range(4)}
    assert statuses == {401}


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_reachable(), reason="no Redis on 127.0.0.1:6379")
def test_failed_logins_counted_in_redis(app, make, limits_on, monkeypatch):
    """With RATELIMIT_STORAGE_URI=redis://…, are the counters kept in Redis (shared by all workers) and
    the limit enforced?"""
    import redis

    store = redis.Redis.from_url(REDIS_URI)
    store.flushdb()
    monkeypatch.setitem(app.config, "RATELIMIT_STORAGE_URI", REDIS_URI)
    limiter.init_app(app)  # re-reads the storage from the config (the hooks are installed once)
    try:
        make.user(email="shared@example.com")
        client = app.test_client()
        for _ in range(3):
            assert wrong_login(client, "shared@example.com").status_code == 401
        assert any(b"login-email:shared@example.com" in key for key in store.keys("*"))
        assert client.post("/login", data={"email": "shared@example.com",
                                           "password": PASSWORD}).status_code == 429
    finally:
        store.flushdb()
        monkeypatch.setitem(app.config, "RATELIMIT_STORAGE_URI", "memory://")
        limiter.init_app(app)


def test_password_reset_requests_are_limited(client, make, limits_on, monkeypatch, tmp_path):
    """Can one client send one address more than the allowed reset emails (a mail bomb), and is the refusal a 429
    with the form and its message?"""
    monkeypatch.setitem(limits_on.config, "RATELIMIT_PASSWORD_RESET", "2 per hour")
    monkeypatch.setitem(limits_on.config, "MAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    make.user(email="bombed@example.com")
    for _ in range(2):
        assert client.post("/password/forgot", data={"email": "bombed@example.com"}).status_code == 302
    refused = client.post("/password/forgot", data={"email": "Bombed@example.com"})
    assert refused.status_code == 429 and "Too many attempts" in refused.get_data(as_text=True)
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2
