"""`matchmaker worker`: process index jobs in a separate process (MATCHMAKER_INDEX_WORKER=external)."""
from __future__ import annotations

import threading

import click
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from . import queue
from .worker import BATCH_SIZE, POLL_SECONDS, install_stop_signals, run_until, warm_up, worker_name


@click.command("worker")
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@click.option("--max-seconds", type=click.FloatRange(min=0), default=None,
              help="Exit after about this many seconds (default: run until SIGTERM/SIGINT).")
@click.option("--poll", type=click.FloatRange(min=0.05, max=60), default=POLL_SECONDS, show_default=True,
              help="Seconds between looks at the job table when idle.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=BATCH_SIZE, show_default=True,
              help="Jobs claimed (and embedded) together.")
@click.option("--stale-after", type=click.FloatRange(min=1), default=queue.STALE_AFTER_SECONDS,
              show_default=True,
              help="SQLite: seconds after which another worker's claim counts as abandoned (on PostgreSQL a "
                   "claim is a lease that ends with its worker's connection, whatever its age).")
@with_appcontext
def worker_command(once: bool, max_seconds: float | None, poll: float, batch: int, stale_after: float) -> None:
    """Embed published, edited, closed and deleted listings into the matching index (index jobs)."""
    from ..extensions import db
    stop = threading.Event()
    install_stop_signals(stop)
    name = worker_name("worker")
    warm_up()
    click.echo(f"index worker {name} started")
    processed = run_until(stop, name, poll=poll, once=once, max_seconds=max_seconds, limit=batch,
                          stale_after=stale_after)
    with Session(db.engine) as session:
        left = queue.counts(session)
    click.echo(f"processed {processed} jobs; pending {left['pending']}, failing {left['failing']}")
