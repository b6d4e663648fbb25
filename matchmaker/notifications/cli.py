"""`matchmaker mail-worker`: send the queued mail (MATCHMAKER_MAIL_WORKER=external; any mode may run it)."""
from __future__ import annotations

import signal
import threading

import click
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from . import mail


@click.command("mail-worker")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option("--max-seconds", type=click.FloatRange(min=0), default=None,
              help="Exit after about this many seconds (default: run until SIGTERM/SIGINT).")
@click.option("--poll", type=click.FloatRange(min=0.05, max=60), default=mail.POLL_SECONDS, show_default=True,
              help="Seconds between looks at the outbox when idle.")
@click.option("--retry-delay", type=click.FloatRange(min=0), default=mail.RETRY_DELAY_SECONDS,
              show_default=True, help="Seconds before the first retry of a failed send (doubles each time).")
@click.option("--retry-given-up", is_flag=True,
              help=f"First put messages that failed {mail.MAX_ATTEMPTS} times back in line.")
@with_appcontext
def mail_worker_command(once: bool, max_seconds: float | None, poll: float, retry_delay: float,
                        retry_given_up: bool) -> None:
    """Send queued mail (SMTP or the file outbox), retrying failed sends with back-off."""
    from ..extensions import db
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # finish the message in hand, then exit
        signal.signal(sig, lambda signum, frame: stop.set())
    if retry_given_up:
        with Session(db.engine) as session:
            click.echo(f"back in line: {mail.retry_given_up(session)}")
    name = mail.runner_name("worker")
    click.echo(f"mail worker {name} started")
    sent = mail.run_until(stop, name, poll=poll, once=once, max_seconds=max_seconds, retry_delay=retry_delay)
    with Session(db.engine) as session:
        left = mail.queue_depth(session)
    click.echo(f"claimed {sent} messages; unsent {left}")
