"""Processing index jobs: one batch (`run_batch`), the in-process thread, and the `matchmaker worker` loop."""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

from flask import current_app, has_request_context
from sqlalchemy.orm import Session

from ..extensions import db
from ..matching_service import enabled, engine_loaded, writer_engines
from . import queue
from .signals import listings_indexed
from .sync import backfill, sync_listings

log = logging.getLogger(__name__)
MODES = ("thread", "external", "inline")
BATCH_SIZE = 64
POLL_SECONDS = 0.5
RUNNER_KEY = "matchmaker.index_worker"


def worker_name(role: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{role}"


def run_batch(worker_id: str, limit: int = BATCH_SIZE, stale_after: float = queue.STALE_AFTER_SECONDS,
              max_attempts: int = queue.MAX_ATTEMPTS, retry_delay: float = queue.RETRY_DELAY_SECONDS,
              leases: queue.Leases | None = None) -> int:
    """Claim due jobs, bring the index in line with their listings, mark them done; returns jobs claimed.

    Needs an app context. Its own session (create_savepoint: inside the test suite's outer transaction a
    failure rolls back only this work), so it also runs from a post-commit hook. ``leases``: the worker's
    own (``run_until`` keeps one for the worker's life); without, one held for this batch only.
    """
    if leases is None:
        leases = queue.Leases(db.engine)
        try:
            return run_batch(worker_id, limit, stale_after, max_attempts, retry_delay, leases)
        finally:
            leases.close()
    with Session(db.engine, join_transaction_mode="create_savepoint") as session:
        jobs = queue.claim(session, worker_id, limit, stale_after, max_attempts, leases)
        if not jobs:
            return 0
        keys, claimed = {(job.kind, job.listing_id) for job in jobs}, len(jobs)
        try:
            # the vectors and the jobs' completion commit together
            sync_listings(keys, finish=lambda tx: queue.finish(tx, jobs, worker_id, commit=False))
        except Exception as exc:
            session.rollback()
            given_up = [job.id for job in jobs if job.attempts >= max_attempts]
            log.exception("index jobs %s failed (attempt %s)%s", [job.id for job in jobs],
                          max(job.attempts for job in jobs),
                          f"; giving up on {given_up} until the next reindex" if given_up else "")
            queue.fail(session, jobs, worker_id, f"{type(exc).__name__}: {exc}", retry_delay, leases)
            return len(jobs)
        leases.release([job.id for job in jobs])  # only now that their outcome has committed
    _announce(keys)
    return claimed


def _announce(keys: set[tuple[str, int]]) -> None:
    """Tell the domains which listings are indexed now; a receiver's failure never fails the (done) jobs."""
    try:
        listings_indexed.send(None, keys=keys)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("index worker: a receiver of listings-indexed failed for %s", sorted(keys))


def warm_up() -> None:
    """Load the models jobs embed with and run one embedding each (the first call is several times slower),
    so the first job waits for none of it."""
    if not enabled():
        return
    for engine in writer_engines():
        engine.embedder.encode_documents(["warm-up"])


def run_until(stop: threading.Event, worker_id: str, poll: float = POLL_SECONDS, once: bool = False,
              max_seconds: float | None = None, wake: threading.Event | None = None, **batch_options) -> int:
    """Process batches until ``stop`` is set, the time is up, or (``once``) nothing is due; returns jobs claimed."""
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    waiter = wake or stop  # whoever sets ``stop`` in the thread also sets ``wake``
    leases = queue.Leases(db.engine)  # this worker's claims: they live (at most) as long as the worker
    try:
        return _loop(stop, worker_id, poll, once, deadline, waiter, wake, leases, batch_options)
    finally:
        leases.close()


def _loop(stop, worker_id, poll, once, deadline, waiter, wake, leases, batch_options) -> int:
    total = failures = 0
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        try:
            claimed = run_batch(worker_id, leases=leases, **batch_options)
            failures = 0
        except Exception:  # e.g. the database is unreachable: keep the worker alive, back off, keep logging
            failures += 1
            log.exception("index worker %s: batch failed (%d in a row)", worker_id, failures)
            leases.close()  # whatever this batch had claimed is free for any worker (this one included)
            claimed = 0
        finally:
            db.session.remove()
        total += claimed
        if claimed:
            continue
        if not once and _backfill_step(worker_id):  # a model change: re-embed in the background
            continue
        if once or (deadline is not None and time.monotonic() >= deadline):
            break
        pause = poll * 2 ** min(failures, 6)
        waiter.wait(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
    return total


def _backfill_step(worker_id: str) -> bool:
    """One batch of a new model's background re-embedding when idle; True if it embedded anything."""
    try:
        return backfill() > 0
    except Exception:
        log.exception("index worker %s: background re-embedding failed", worker_id)
        return False
    finally:
        db.session.remove()


class ThreadRunner:
    """The daemon thread of ``thread`` mode: one per process (started again in a forked child)."""

    def __init__(self, app) -> None:
        self.app = app
        self.wake = threading.Event()
        self.stop_event = threading.Event()
        self.ready = threading.Event()  # set once warmed up
        self.thread: threading.Thread | None = None
        self.pid: int | None = None
        self._guard = threading.Lock()

    def ensure_started(self) -> None:
        with self._guard:
            if self.thread is not None and self.thread.is_alive() and self.pid == os.getpid():
                return
            self.pid = os.getpid()
            self.stop_event = threading.Event()
            self.thread = threading.Thread(target=self._run, name="matchmaker-index-worker", daemon=True)
            self.thread.start()

    def notify(self) -> None:
        self.ensure_started()
        self.wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        with self.app.app_context():
            try:
                warm_up()
            except Exception:  # the batches report (and retry) whatever keeps failing here
                log.exception("index worker thread: warm-up failed")
            self.ready.set()
            run_until(self.stop_event, worker_name("thread"), wake=self.wake)


def mode(app=None) -> str:
    return (app or current_app).config.get("MATCHMAKER_INDEX_WORKER", "thread")


def runner(app) -> ThreadRunner:
    found = app.extensions.get(RUNNER_KEY)
    if found is None:
        found = app.extensions.setdefault(RUNNER_KEY, ThreadRunner(app))
    return found


def check_mode(app) -> None:
    """At app start: refuse a MATCHMAKER_INDEX_WORKER that is none of ``MODES``."""
    if app.config.get("MATCHMAKER_INDEX_WORKER", "thread") not in MODES:
        raise RuntimeError(f"MATCHMAKER_INDEX_WORKER must be one of {', '.join(MODES)}, "
                           f"not {app.config['MATCHMAKER_INDEX_WORKER']!r}")


def start_thread_if_serving(app, serving: bool = False) -> None:
    """In ``thread`` mode, a serving process starts its worker as soon as it loads the engine (at process
    start: ``serving``; or on a request's first use)."""
    if mode(app) == "thread" and (serving or has_request_context()):
        runner(app).ensure_started()


engine_loaded.connect(start_thread_if_serving, weak=False)


def after_enqueue_commit(app) -> None:
    """Post-commit: hand the new jobs to whoever processes them in this configuration."""
    current = mode(app)
    if current == "inline":
        with app.app_context():
            run_until(threading.Event(), worker_name("inline"), once=True)
    elif current == "thread" and has_request_context():
        # only serving processes run the thread; CLI commands (seed, import) leave jobs to the worker/reindex
        runner(app).notify()


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM/SIGINT finish the current batch, then the worker exits."""
    def handler(signum, frame):
        log.info("index worker: signal %s, stopping after this batch", signum)
        stop.set()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
