"""Password reset by emailed link: no account enumeration, one-hour single-use links, sessions ended."""
from __future__ import annotations

import email
import re

import pytest
from sqlalchemy import func, select

from matchmaker.accounts import operations as ops
from matchmaker.accounts.models import User
from matchmaker.accounts.tokens import ApiToken
from matchmaker.api import auth
from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from tests.helpers import PASSWORD, login

NEW_PASSWORD = "Quiet-Harbour-Lantern-42"


@pytest.fixture
def outbox(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    return tmp_path / "outbox"


@pytest.fixture
def english(app, monkeypatch):
    monkeypatch.setitem(app.config, "BABEL_DEFAULT_LOCALE", "en")


def _mails(outbox) -> list[str]:
    """Each mail in the outbox as "To: …" plus its decoded body."""
    mails = []
    for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
        message = email.message_from_bytes(path.read_bytes())
        mails.append(f"To: {message['To']}\n" + message.get_payload(decode=True).decode("utf-8"))
    return mails


def _link(mail: str) -> str:
    return re.search(r"(/password/reset/[A-Za-z0-9._-]+)", mail).group(1)


def _ask(client, address: str):
    return client.post("/password/forgot?lang=en", data={"email": address}, follow_redirects=True)


def test_the_answer_does_not_reveal_whether_an_account_exists(client, make, outbox):
    """Do a known and an unknown address get the same page, and only the known one an email?"""
    user = make.user(Role.EXPERT, email="known@example.test")
    known, unknown = _ask(client, "Known@Example.test"), _ask(client, "nobody@example.test")
    assert known.status_code == unknown.status_code == 200
    flash = "If an account uses this address"
    assert flash in known.get_data(as_text=True) and flash in unknown.get_data(as_text=True)
    mails = _mails(outbox)
    assert len(mails) == 1 and user.email in mails[0] and "/password/reset/" in mails[0]
    assert db.session.scalars(db.select(AuditEvent.action).filter_by(target_id=user.id, target_type="users")
                              ).all().count("auth.password_reset_requested") == 1


def test_a_deactivated_account_gets_no_link(client, make, outbox):
    make.user(Role.EXPERT, email="gone@example.test", active=False)
    _ask(client, "gone@example.test")
    assert _mails(outbox) == []


def test_the_link_sets_a_new_password_once_and_ends_every_session(app, client, make, outbox):
    """Does the emailed link set a new password, end the account's other sessions, and stop working after?"""
    user = make.user(Role.EXPERT, email="reset@example.test")
    elsewhere = login(app.test_client(), user)
    assert elsewhere.get("/profile").status_code == 200
    _ask(client, user.email)
    link = _link(_mails(outbox)[0])
    assert client.get(link).status_code == 200
    done = client.post(link, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    db.session.refresh(user)
    assert user.check_password(NEW_PASSWORD) and not user.check_password(PASSWORD)
    assert elsewhere.get("/profile").status_code == 302  # the old session's token was rotated
    again = client.get(link)
    assert again.status_code == 302 and again.headers["Location"].endswith("/password/forgot")
    assert "auth.password_reset" in db.session.scalars(db.select(AuditEvent.action)).all()
    signed_in = client.post("/login", data={"email": user.email, "password": NEW_PASSWORD})
    assert signed_in.status_code == 302


def test_a_weak_new_password_is_refused_and_nothing_changes(client, make, outbox, english):
    user = make.user(Role.EXPERT, email="weak@example.test")
    _ask(client, user.email)
    link = _link(_mails(outbox)[0])
    refused = client.post(link + "?lang=en", data={"password": "short", "confirm": "short"})
    assert refused.status_code == 400 and "12" in refused.get_data(as_text=True)
    db.session.refresh(user)
    assert user.check_password(PASSWORD)


def test_forged_and_expired_links_are_refused(client, make, monkeypatch):
    """Is a link with a changed signature, or one older than an hour, refused without touching anything?"""
    user = make.user(Role.EXPERT, email="old@example.test")
    with client.application.test_request_context():
        token = ops.password_reset_token(user)
    forged = client.get(f"/password/reset/{token[:-2]}xx")
    assert forged.status_code == 302 and forged.headers["Location"].endswith("/password/forgot")
    monkeypatch.setattr(ops, "RESET_MAX_AGE", -1)  # every link is now older than allowed
    expired = client.post(f"/password/reset/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert expired.status_code == 302
    db.session.refresh(user)
    assert user.check_password(PASSWORD)
    assert db.session.get(User, user.id).session_token == user.session_token


def test_the_link_never_takes_its_host_from_the_request_in_production(client, make, outbox, monkeypatch):
    """With a forged Host header, does the mailed link still point at PUBLIC_URL (no reset-link poisoning),
    and carry no host at all in production when PUBLIC_URL is unset?"""
    user = make.user(Role.EXPERT, email="victim@example.test")
    monkeypatch.setitem(client.application.config, "ENV_NAME", "production")
    monkeypatch.setitem(client.application.config, "PUBLIC_URL", "https://match.example.cn")
    client.post("/password/forgot", data={"email": user.email}, headers={"Host": "evil.example"})
    [with_base] = _mails(outbox)
    for path in outbox.glob("*.eml"):
        path.unlink()
    monkeypatch.setitem(client.application.config, "PUBLIC_URL", "")
    client.post("/password/forgot", data={"email": user.email}, headers={"Host": "evil.example"})
    [without] = _mails(outbox)
    assert "https://match.example.cn/password/reset/" in with_base
    assert "evil.example" not in with_base + without and "/password/reset/" in without


# -- accounts review (2026-12-01): superseded reset links, API tokens revoked by a reset ---------------------


def test_a_newer_reset_link_supersedes_the_older_one(client, make, outbox):
    """Regression (2026-12-01): Once a second link is asked for, does the first stop working while the newest one works?"""
    user = make.user(Role.EXPERT, email="twice@example.test")
    _ask(client, user.email)
    [first] = [_link(m) for m in _mails(outbox)]
    for mail in outbox.glob("*.eml"):  # the outbox's file names do not order two mails of one second
        mail.unlink()
    _ask(client, user.email)
    [second] = [_link(m) for m in _mails(outbox)]
    assert first != second
    assert client.get(first).status_code == 302  # back to the form, with the reason
    assert client.get(second).status_code == 200


def test_a_password_reset_revokes_the_accounts_api_tokens(client, make, outbox):
    """Regression (2026-12-01): Does resetting the password revoke every API token of the account (an intruder's included), audited,
    and say so?"""
    user = make.user(Role.EXPERT, email="tokens@example.test")
    auth.create_token(user, "intruder")
    db.session.commit()
    _ask(client, user.email)
    link = _link(_mails(outbox)[0])
    r = client.post(link + "?lang=en", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
                    follow_redirects=True)
    assert r.status_code == 200 and "1 API token was revoked" in r.get_data(as_text=True)
    assert db.session.scalar(select(func.count(ApiToken.id)).where(ApiToken.user_id == user.id,
                                                                   ApiToken.revoked_at.is_(None))) == 0
