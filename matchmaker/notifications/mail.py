"""Mail through a durable outbox: ``queue_mail`` writes a ``mail_messages`` row in the caller's transaction;
a mail runner claims due rows, sends them and marks them sent.

* **Never lost**: the row exists exactly when the change that caused it commits; a failed send releases it
  with its error, due again after an exponential back-off, up to ``MAX_ATTEMPTS`` (then it stays, unsent, with
  its last error: ``matchmaker mail-worker --retry-given-up`` puts it back in line).
* **Never sent twice**: a row is claimed by one runner (``core/jobs.py``: ``FOR UPDATE SKIP LOCKED``) and
  marked sent right after the server accepted it. Only a runner that dies between the server's answer and
  that mark leaves a claim that another runner retakes after ``STALE_AFTER_SECONDS``; the repeat carries the
  same Message-ID (fixed when the row is written), which receiving servers and clients treat as one message.
* **Who sends** (``MATCHMAKER_MAIL_WORKER``, default: the same as ``MATCHMAKER_INDEX_WORKER``): ``inline``
  right after the commit in the committing process (the test suite), ``thread`` a background thread of each
  web process woken by the commit, ``external`` only ``matchmaker mail-worker`` (production).
* **Where to**: SMTP when ``MAIL_SERVER`` is set (stdlib ``smtplib``: implicit TLS with ``MAIL_USE_SSL``,
  STARTTLS with ``MAIL_USE_TLS``, login with ``MAIL_USERNAME``/``MAIL_PASSWORD``), otherwise one ``.eml`` file
  per message in ``MAIL_OUTBOX_DIR`` (development; tests read them).

Why smtplib and not Flask-Mailman: one message per connection attempt, with the failure raised to the caller
so the row can be released, is all the runner needs; a mail library would add its own connection handling
and error swallowing (``fail_silently``) around the same smtplib calls and one more dependency to pin.
"""
from __future__ import annotations

import logging
import os
import re
import smtplib
import socket
import ssl
import threading
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

from flask import current_app, has_request_context
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from ..core import jobs
from ..core.time import utcnow
from ..core.workflow import after_commit
from ..extensions import db
from .models import MailMessage

log = logging.getLogger(__name__)

MODES = ("thread", "external", "inline")
#: a claim older than this belongs to a runner that died mid-send and may be taken over
STALE_AFTER_SECONDS = 300.0
#: sends tried before a message is left aside (kept, with its error) for an operator
MAX_ATTEMPTS = 8
#: first retry delay after a failed send; doubles with each attempt (30 s … 64 min: ~2 h in all)
RETRY_DELAY_SECONDS = 30.0
BATCH_SIZE = 20
POLL_SECONDS = 2.0
RUNNER_KEY = "matchmaker.mail_runner"
_FINISHED = "sent_at"


def queue_mail(to: str, subject: str, body: str) -> MailMessage:
    """Add a message to the current transaction's outbox; it is handed to the runner once that commits."""
    cfg = current_app.config
    sender = cfg.get("MAIL_FROM") or "matchmaker@localhost"
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"  # "名称 <a@b.cn>" or "a@b.cn"
    row = MailMessage(message_id=make_msgid(domain=domain), to_addr=to,
                      subject=" ".join(str(subject).split())[:500],  # a title's line break: one header line
                      body=body)
    db.session.add(row)
    session = db.session()
    tx = session.get_nested_transaction() or session.get_transaction() or session.begin()
    hooked = session.info.setdefault("mail_hooked", [])  # the transactions themselves (ids could be reused)
    if not any(t is tx for t in hooked):  # one hand-over per transaction, however many messages it queues
        hooked.append(tx)
        app, bind = current_app._get_current_object(), session.get_bind()
        after_commit(session, lambda: after_mail_commit(app, bind))
    return row


@event.listens_for(Session, "after_transaction_end")
def _forget_hooks(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop("mail_hooked", None)


# -- sending ------------------------------------------------------------------------------------------------

def build(row: MailMessage | tuple, cfg) -> EmailMessage:
    message_id, to, subject, body, created_at = (
        (row.message_id, row.to_addr, row.subject, row.body, row.created_at)
        if isinstance(row, MailMessage) else row)
    msg = EmailMessage()
    msg["From"] = cfg.get("MAIL_FROM") or "matchmaker@localhost"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(created_at)
    msg.set_content(body)
    return msg


def deliver(msg: EmailMessage, cfg, instance_path: str) -> None:
    """Hand one message to the SMTP server (raising on any refusal) or write it to the file outbox."""
    if cfg.get("MAIL_SERVER"):
        host, port, timeout = cfg["MAIL_SERVER"], int(cfg.get("MAIL_PORT") or 25), float(cfg.get("MAIL_TIMEOUT", 20))
        context = ssl.create_default_context(cafile=cfg.get("MAIL_CA_FILE") or None)
        if cfg.get("MAIL_USE_SSL"):
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if cfg.get("MAIL_USE_TLS") and not cfg.get("MAIL_USE_SSL"):
                smtp.starttls(context=context)
                smtp.ehlo()
            if cfg.get("MAIL_USERNAME"):
                smtp.login(cfg["MAIL_USERNAME"], cfg.get("MAIL_PASSWORD") or "")
            refused = smtp.send_message(msg)
            if refused:  # some recipients refused (we send to one, so this is that one)
                raise smtplib.SMTPRecipientsRefused(refused)
        return
    outbox = Path(cfg.get("MAIL_OUTBOX_DIR") or Path(instance_path) / "outbox")
    outbox.mkdir(parents=True, exist_ok=True)
    # named after the message: a repeat overwrites the same file
    stamp = re.sub(r"[^A-Za-z0-9]", "", msg["Message-ID"])[:60]
    name = f"{utcnow():%Y%m%dT%H%M%S}-{stamp}.eml"
    for old in outbox.glob(f"*-{stamp}.eml"):
        name = old.name
    tmp = outbox / f".{name}.tmp"
    tmp.write_bytes(bytes(msg))
    tmp.replace(outbox / name)  # atomic: a reader never sees half a message


def send_batch(worker_id: str, limit: int = BATCH_SIZE, stale_after: float = STALE_AFTER_SECONDS,
               max_attempts: int = MAX_ATTEMPTS, retry_delay: float = RETRY_DELAY_SECONDS, bind=None) -> int:
    """Claim due messages, send each, mark it sent (or release it with its error); returns messages claimed.

    Needs an app context. Its own session (create_savepoint: inside the test suite's outer transaction this
    work stays its own), so it also runs from a post-commit hook.
    """
    app = current_app._get_current_object()
    cfg = app.config
    with Session(bind or db.engine, join_transaction_mode="create_savepoint") as session:
        rows = jobs.claim(session, MailMessage, _FINISHED, worker_id, limit, stale_after, max_attempts,
                          columns=(MailMessage.message_id, MailMessage.to_addr, MailMessage.subject,
                                   MailMessage.body, MailMessage.created_at))
        for job_id, attempts, *fields in rows:
            try:
                deliver(build(tuple(fields), cfg), cfg, app.instance_path)
            except Exception as exc:
                session.rollback()
                last = attempts >= max_attempts
                log.log(logging.ERROR if last else logging.WARNING,
                        "mail %s to %s: attempt %d failed: %s%s", job_id, fields[1], attempts, exc,
                        "; giving up (kept unsent: matchmaker mail-worker --retry-given-up)" if last else "")
                jobs.fail(session, MailMessage, _FINISHED, job_id, attempts, worker_id,
                          f"{type(exc).__name__}: {exc}", retry_delay)
                continue
            jobs.finish(session, MailMessage, _FINISHED, [job_id], worker_id)
        return len(rows)


def run_until(stop: threading.Event, worker_id: str, poll: float = POLL_SECONDS, once: bool = False,
              max_seconds: float | None = None, wake: threading.Event | None = None, **batch_options) -> int:
    """Send batches until ``stop`` is set, the time is up, or (``once``) nothing is due; returns messages
    claimed. A database outage is logged and waited out with a growing pause."""
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    waiter = wake or stop
    total = failures = 0
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        try:
            claimed = send_batch(worker_id, **batch_options)
            failures = 0
        except Exception:
            failures += 1
            log.exception("mail runner %s: batch failed (%d in a row)", worker_id, failures)
            claimed = 0
        finally:
            db.session.remove()
        total += claimed
        if claimed:
            continue
        if once or (deadline is not None and time.monotonic() >= deadline):
            break
        pause = poll * 2 ** min(failures, 5)
        waiter.wait(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
    return total


def retry_given_up(session: Session, max_attempts: int = MAX_ATTEMPTS) -> int:
    """Put messages left aside after ``max_attempts`` failures back in line; returns how many."""
    count = session.execute(update(MailMessage)
                            .where(MailMessage.sent_at.is_(None), MailMessage.attempts >= max_attempts)
                            .values(attempts=0, available_at=utcnow(), claimed_at=None, claimed_by=None)
                            .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return count


def queue_depth(session: Session) -> int:
    return jobs.depth(session, MailMessage, _FINISHED)


# -- who runs it ----------------------------------------------------------------------------------------------

def runner_name(role: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:mail-{role}"


def mode(app) -> str:
    return app.config.get("MAIL_WORKER") or app.config.get("MATCHMAKER_INDEX_WORKER", "thread")


def check_mode(app) -> None:
    """At app start: refuse a MATCHMAKER_MAIL_WORKER that is none of ``MODES``."""
    if mode(app) not in MODES:
        raise RuntimeError(f"MATCHMAKER_MAIL_WORKER must be one of {', '.join(MODES)}, not {mode(app)!r}")


class MailThread:
    """The daemon thread of ``thread`` mode: one per process (started again in a forked child)."""

    def __init__(self, app) -> None:
        self.app = app
        self.wake = threading.Event()
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.pid: int | None = None
        self._guard = threading.Lock()

    def notify(self) -> None:
        with self._guard:
            if self.thread is None or not self.thread.is_alive() or self.pid != os.getpid():
                self.pid, self.stop_event = os.getpid(), threading.Event()
                self.thread = threading.Thread(target=self._run, name="matchmaker-mail", daemon=True)
                self.thread.start()
        self.wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        with self.app.app_context():
            run_until(self.stop_event, runner_name("thread"), wake=self.wake)


def thread_runner(app) -> MailThread:
    found = app.extensions.get(RUNNER_KEY)
    if found is None:
        found = app.extensions.setdefault(RUNNER_KEY, MailThread(app))
    return found


def after_mail_commit(app, bind=None) -> None:
    """Post-commit: hand the new messages to whoever sends them in this configuration (inline: on the engine
    or connection of the session that committed them)."""
    current = mode(app)
    if current == "inline":
        with app.app_context():
            run_until(threading.Event(), runner_name("inline"), once=True, bind=bind)
    elif current == "thread":
        if has_request_context():  # a serving process: its thread sends, the response does not wait
            thread_runner(app).notify()
        else:  # a command (digest, expiries …) is short-lived: it sends before it exits
            with app.app_context():
                run_until(threading.Event(), runner_name("command"), once=True, bind=bind)
