"""Does mail go through the durable outbox to a real SMTP server (aiosmtpd on loopback, in this process), with
login and TLS, retried after a failed send, never lost and never sent twice?"""
from __future__ import annotations

import socket
import subprocess
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from matchmaker.core.enums import Role
from matchmaker.core.time import utcnow
from matchmaker.extensions import db
from matchmaker.notifications import mail
from matchmaker.notifications.models import MailMessage
from matchmaker.notifications.operations import notify

USER, SECRET = "mailer", "s3cret-pass"


class Recorder:
    """An SMTP handler that keeps what it accepted and answers the first ``fail_first`` DATA with a 451."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.attempts: list[bytes] = []
        self.accepted: list = []

    async def handle_DATA(self, server, session, envelope):
        self.attempts.append(envelope.content)
        if len(self.attempts) <= self.fail_first:
            return "451 4.3.0 try again later"
        self.accepted.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), SECRET.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers a failure with 535


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(app, monkeypatch):
    """A plain SMTP server requiring login; the app configured for it; mail sent only when a test says."""
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port(), authenticator=_authenticate,
                            auth_required=True, auth_require_tls=False,
                            auth_exclude_mechanism=["LOGIN"])  # smtplib then logs in with PLAIN
    controller.start()
    for key, value in {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": controller.port, "MAIL_USERNAME": USER,
                       "MAIL_PASSWORD": SECRET, "MAIL_USE_TLS": False, "MAIL_USE_SSL": False,
                       "MAIL_WORKER": "external"}.items():
        monkeypatch.setitem(app.config, key, value)
    yield handler
    controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (openssl), which the client trusts via MAIL_CA_FILE."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    return key, cert


def _tls_context(certificate):
    import ssl
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[1]), str(certificate[0]))
    return context


def _rows():
    return db.session.scalars(select(MailMessage).order_by(MailMessage.id).execution_options(
        populate_existing=True)).all()


def test_a_notification_mail_reaches_the_smtp_server_once_with_login(make, smtp):
    """Does a committed notification's mail reach a real SMTP server that requires login, carrying the
    Message-ID its outbox row was given, and is the row then marked sent so a second pass sends nothing?"""
    user = make.user(Role.EXPERT)
    notify([user], "pairing.proposed", "新的配对建议", "请查看", link="/pairings/1")
    db.session.commit()
    assert smtp.accepted == []  # MAIL_WORKER=external: the commit only queued it
    [row] = _rows()
    assert row.sent_at is None and row.to_addr == user.email
    assert mail.send_batch("test") == 1
    [got] = smtp.accepted
    assert got["Message-ID"] == row.message_id and got["To"] == user.email and got["Subject"] == "新的配对建议"
    assert "/pairings/1" in got.get_content()
    [row] = _rows()
    assert row.sent_at is not None and row.attempts == 1 and row.last_error is None
    assert mail.send_batch("test") == 0 and len(smtp.accepted) == 1


def test_a_failed_send_is_kept_and_retried_after_its_back_off(make, smtp):
    """When the server answers the first send with a temporary failure (451), is the message kept with its
    error, left alone until its back-off has passed, and then sent exactly once with the same Message-ID?"""
    smtp.fail_first = 1
    user = make.user(Role.EXPERT)
    notify([user], "pairing.proposed", "配对建议")
    db.session.commit()
    assert mail.send_batch("test", retry_delay=60) == 1
    [row] = _rows()
    assert row.sent_at is None and row.attempts == 1 and "451" in row.last_error
    assert row.available_at > utcnow() + timedelta(seconds=50) and row.claimed_by is None
    assert mail.send_batch("test") == 0  # still backing off
    row.available_at = utcnow()  # the back-off has passed
    db.session.commit()
    assert mail.send_batch("test") == 1
    assert len(smtp.attempts) == 2 and len(smtp.accepted) == 1
    [row] = _rows()
    assert row.sent_at is not None and row.attempts == 2
    assert smtp.accepted[0]["Message-ID"] == row.message_id
    assert message_from_bytes(smtp.attempts[0], policy=policy.default)["Message-ID"] == row.message_id


def test_a_wrong_password_keeps_the_mail_and_gives_up_only_after_max_attempts(make, smtp, app, monkeypatch):
    """With a password the server refuses, is every attempt recorded, is the message left aside (unsent, with
    its error) after the last allowed attempt instead of dropped, and does --retry-given-up put it back?"""
    monkeypatch.setitem(app.config, "MAIL_PASSWORD", "wrong")
    user = make.user(Role.EXPERT)
    notify([user], "pairing.proposed", "配对建议")
    db.session.commit()
    for _ in range(3):
        assert mail.send_batch("test", retry_delay=0, max_attempts=3) == 1
    assert mail.send_batch("test", retry_delay=0, max_attempts=3) == 0  # given up
    [row] = _rows()
    assert row.sent_at is None and row.attempts == 3 and "Authentication" in row.last_error
    assert smtp.accepted == []
    monkeypatch.setitem(app.config, "MAIL_PASSWORD", SECRET)
    assert mail.retry_given_up(db.session, max_attempts=3) == 1
    assert mail.send_batch("test", retry_delay=0, max_attempts=3) == 1
    assert len(smtp.accepted) == 1


def test_a_claimed_message_is_not_sent_by_a_second_runner(make, smtp):
    """While one runner holds a fresh claim on a message (it is sending it), does another runner leave it
    alone, and take it over only once the claim is older than the stale limit (the first runner died)?"""
    user = make.user(Role.EXPERT)
    notify([user], "pairing.proposed", "配对建议")
    db.session.commit()
    [row] = _rows()
    row.claimed_by, row.claimed_at, row.attempts = "dead-runner", utcnow(), 1
    db.session.commit()
    assert mail.send_batch("second") == 0 and smtp.accepted == []
    row.claimed_at = utcnow() - timedelta(seconds=mail.STALE_AFTER_SECONDS + 1)
    db.session.commit()
    assert mail.send_batch("second") == 1
    [row] = _rows()
    assert row.claimed_by == "second" and row.sent_at is not None and len(smtp.accepted) == 1


def test_a_rolled_back_change_queues_no_mail(make, smtp):
    """Does a notification whose transaction rolls back leave no message in the outbox (and send none)?"""
    user = make.user(Role.EXPERT)
    db.session.commit()
    notify([user], "pairing.proposed", "配对建议")
    db.session.rollback()
    assert _rows() == [] and mail.send_batch("test") == 0 and smtp.accepted == []


def test_starttls_with_login(make, smtp, app, monkeypatch, certificate):
    """Against a server that requires STARTTLS before login (its certificate trusted through MAIL_CA_FILE), is
    the mail sent over the upgraded connection?"""
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port(), authenticator=_authenticate,
                            auth_required=True, require_starttls=True, tls_context=_tls_context(certificate),
                            auth_exclude_mechanism=["LOGIN"])
    controller.start()
    try:
        monkeypatch.setitem(app.config, "MAIL_PORT", controller.port)
        monkeypatch.setitem(app.config, "MAIL_CA_FILE", str(certificate[1]))
        user = make.user(Role.EXPERT)
        notify([user], "pairing.proposed", "配对建议")
        db.session.commit()
        assert mail.send_batch("test", retry_delay=0) == 1
        assert handler.accepted == [] and "AUTH" in _rows()[0].last_error  # no login in clear text
        monkeypatch.setitem(app.config, "MAIL_USE_TLS", True)
        assert mail.send_batch("test", retry_delay=0) == 1
        assert len(handler.accepted) == 1 and _rows()[0].sent_at is not None
    finally:
        controller.stop()


def test_implicit_tls_with_login(make, smtp, app, monkeypatch, certificate):
    """With MAIL_USE_SSL (TLS from the first byte, port 465 style), is the mail sent to a TLS-only server?"""
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port(), authenticator=_authenticate,
                            auth_required=True, ssl_context=_tls_context(certificate), auth_require_tls=False,
                            auth_exclude_mechanism=["LOGIN"])
    controller.start()
    try:
        for key, value in {"MAIL_PORT": controller.port, "MAIL_CA_FILE": str(certificate[1]),
                           "MAIL_USE_SSL": True}.items():
            monkeypatch.setitem(app.config, key, value)
        user = make.user(Role.EXPERT)
        notify([user], "pairing.proposed", "配对建议")
        db.session.commit()
        assert mail.send_batch("test") == 1
        assert len(handler.accepted) == 1 and _rows()[0].sent_at is not None
    finally:
        controller.stop()


def test_inline_mode_sends_right_after_the_commit(make, smtp, app, monkeypatch):
    """In inline mode, has the server received the mail as soon as the commit returns, one message for a
    transaction that notified two people?"""
    monkeypatch.setitem(app.config, "MAIL_WORKER", "inline")
    first, second = make.user(Role.EXPERT), make.user(Role.EXPERT)
    notify([first, second], "pairing.proposed", "配对建议")
    db.session.commit()
    assert sorted(m["To"] for m in smtp.accepted) == sorted([first.email, second.email])
    assert all(row.sent_at is not None for row in _rows())


def test_a_sender_with_a_chinese_display_name(make, smtp, app, monkeypatch):
    """With MAIL_FROM as "科创对接 <matchmaker@example.cn>", is the mail accepted with that sender and a
    Message-ID of the sender's domain?"""
    monkeypatch.setitem(app.config, "MAIL_FROM", "科创对接 <matchmaker@example.cn>")
    notify([make.user(Role.EXPERT)], "pairing.proposed", "配对建议")
    db.session.commit()
    assert mail.send_batch("test") == 1
    [got] = smtp.accepted
    assert got["From"].addresses[0].display_name == "科创对接"
    assert got["From"].addresses[0].addr_spec == "matchmaker@example.cn"
    assert got["Message-ID"].endswith("@example.cn>")


def test_an_unknown_mail_worker_mode_is_refused_at_start(app, monkeypatch):
    """Does the app refuse to start with a MATCHMAKER_MAIL_WORKER it does not know, instead of never sending?"""
    monkeypatch.setitem(app.config, "MAIL_WORKER", "cron")
    with pytest.raises(RuntimeError, match="MATCHMAKER_MAIL_WORKER"):
        mail.check_mode(app)


def test_the_mail_worker_command_sends_what_is_due_and_reports_what_is_left(make, smtp, app):
    """Does `matchmaker mail-worker --once` send the queued mail and say how many messages are left unsent?"""
    user = make.user(Role.EXPERT)
    notify([user], "pairing.proposed", "配对建议")
    db.session.commit()
    from matchmaker.notifications.cli import mail_worker_command
    result = app.test_cli_runner().invoke(mail_worker_command, ["--once"])
    assert result.exit_code == 0, result.output
    assert "claimed 1 messages; unsent 0" in result.output and len(smtp.accepted) == 1
