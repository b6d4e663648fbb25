"""The web app's matching engine (``matchmaker.matching``): one per process, loaded at process start.

The SQL database is the source of truth, and the listings' vectors live there too (``indexing.vectors``):
whoever embeds a listing (the index worker, its thread, or the inline mode) writes its vectors with the next
sequence number in the transaction that completes the index job. A ranking process builds its FAISS and
BM25 indexes from those rows with no model call (the files in ``MATCHMAKER_INDEX_DIR`` are only a snapshot of
a known sequence to start from), and before it ranks applies the rows numbered above the last it applied
(one primary-key read of the counter per request when nothing changed). A listing published while no job
recorded it (matching was off, an old database) is embedded once at start (``_reconcile``). The pages'
queries are ``suggestions.queries``; who may be matched with whom is ``pairings.eligibility``.

Process start: ``start_loading(app)`` loads the model and the engine in a background thread (gunicorn's
``post_worker_init`` in ``gunicorn.conf.py``, `matchmaker run`); ``readiness()`` says when it can rank
(``/readyz``).
"""
from __future__ import annotations

import logging
import os
import threading
import time

from flask import current_app, g, has_request_context

from .core.metrics import EMBEDDED_TEXTS, INDEX_SEQUENCE_LAG
from .core.signals import signals
from .indexing.lock import index_write_lock

log = logging.getLogger(__name__)
_engine_lock = threading.Lock()
EXTENSION_KEY = "matchmaker.engine"
LOADER_KEY = "matchmaker.engine_loader"
WRITERS_KEY = "matchmaker.vector_writers"
#: a snapshot is saved again at start once this many rows were applied on top of it
SNAPSHOT_AFTER_ROWS = 200
#: how often a process serving an older model looks whether the configured one is complete
MODEL_CHECK_SECONDS = 10.0

#: this process loaded its engine: ``engine_loaded.send(app, serving=…)`` (the index worker's thread starts)
engine_loaded = signals.signal("engine-loaded", doc="A process loaded its matching engine.")


def init_matching(app) -> None:
    # The engine (and its model, seconds to load) is built at process start by start_loading, or on first use.
    app.extensions[EXTENSION_KEY] = None


def enabled() -> bool:
    return bool(current_app.config.get("MATCHMAKER_MATCHING", True))


def configured_spec() -> str:
    from .matching.embedders import DEFAULT_MODEL, ENV_MODEL
    return (current_app.config.get("MATCHMAKER_EMBEDDING_MODEL") or os.environ.get(ENV_MODEL)
            or DEFAULT_MODEL).strip()


def counted(embedder):
    """``embedder`` whose every text passed to the model counts in ``matchmaker_embedded_texts_total``."""
    from .matching.embedders import CountingEmbedder
    return CountingEmbedder(embedder, EMBEDDED_TEXTS.inc)


def new_engine(spec: str, index_dir=None):
    from .matching.embedders import load_embedder
    from .matching.engine import MatchEngine
    engine = MatchEngine(index_dir, embedder=counted(load_embedder(spec)), stored_vectors=True)
    engine.spec = spec
    return engine


def get_engine(reconcile_db: bool = True):
    """This process's engine, brought up to the newest committed vector rows; built on first use if
    ``start_loading`` has not built it yet."""
    if not enabled():
        return None
    engine = current_app.extensions.get(EXTENSION_KEY)
    if engine is None:
        with _engine_lock:
            engine = current_app.extensions.get(EXTENSION_KEY)
            if engine is None:
                engine = _build(current_app.config["MATCHMAKER_INDEX_DIR"], reconcile_db)
                current_app.extensions[EXTENSION_KEY] = engine
                engine_loaded.send(current_app._get_current_object(), serving=False)
        return engine
    catch_up(engine)
    return engine


def _build(index_dir, reconcile_db: bool = True):
    from .indexing import vectors
    configured = configured_spec()
    probe = counted_model_id(configured)
    with vectors._session() as session:
        model_id, spec = vectors.served_model(session, probe)
    engine = new_engine(spec or configured, index_dir)
    engine.configured_model = probe
    engine.checked_model_at = time.monotonic()
    with index_write_lock(engine.index_dir) if engine.index_dir is not None else _nothing():
        start = _usable_snapshot(engine)
        _, applied = vectors.apply_new_rows(engine, engine.embedder.model_id, start)
        with vectors._session() as session:
            rows = vectors.live_hashes(session, engine.embedder.model_id)
        if vectors.engine_hashes(engine) != rows:  # a snapshot of another database, or damaged: from rows
            log.warning("matching: the index snapshot disagrees with the stored vectors; building from rows")
            engine.reset()
            _, applied = vectors.apply_new_rows(engine, engine.embedder.model_id, 0)
            start = 0
        if reconcile_db:
            _reconcile(engine, rows)
        if engine.index_dir is not None and (start == 0 or applied >= SNAPSHOT_AFTER_ROWS):
            try:
                for kind in engine.kinds():
                    engine.save(kind)
            except OSError:
                log.exception("matching: could not save the index snapshot (serving from memory)")
    return engine


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def counted_model_id(spec: str) -> str:
    from .matching.embedders import load_embedder
    return load_embedder(spec).model_id


def _usable_snapshot(engine) -> int:
    """The sequence the loaded snapshot files stand for, or 0 (and an empty engine) if there is none to use."""
    from .indexing import vectors
    seqs = [engine.kind_seq(kind) for kind in engine.kinds()]
    with vectors._session() as session:
        top = vectors.current_seq(session)
    if engine.needs_rebuild() or not seqs or min(seqs) == 0 or len(set(seqs)) != 1 or seqs[0] > top:
        engine.reset()
        return 0
    engine.mark_applied(seqs[0])
    return seqs[0]


def _reconcile(engine, rows: dict) -> None:
    """Published listings with no current row of the served model are embedded and written now; live rows of
    listings no longer published are tombstoned. With an external worker, listings whose index job is still
    pending are left to it (a node starting while jobs wait embeds nothing the worker is about to)."""
    from .indexing import vectors
    pending = set()
    if current_app.config.get("MATCHMAKER_INDEX_WORKER", "thread") == "external":
        with vectors._session() as session:
            pending = vectors.pending_keys(session)
    docs = vectors.current_docs()
    stale = {key for key, (_doc, h) in docs.items() if rows.get(key) != h} - pending
    gone = {key for key in rows if key not in docs} - pending
    if stale or gone:
        log.info("matching: %d listings to embed, %d to remove (no index job recorded them)", len(stale), len(gone))
        store(engine, stale | gone, docs)
        catch_up(engine, force=True)
    with vectors._session() as session:
        vectors.note_model(session, engine.embedder.model_id, engine.spec)
        vectors.mark_complete_if_done(session, engine.embedder.model_id)
        session.commit()


def store(engine, keys: set, docs: dict | None = None, finish=None) -> int:
    """Embed ``keys`` with ``engine``'s model and write their rows (one transaction, see indexing.vectors);
    ``finish(session)`` runs in that transaction before the commit (the index jobs' completion)."""
    from .indexing import vectors
    docs = vectors.current_docs(keys) if docs is None else docs
    with vectors._session() as session:
        current = vectors.live_hashes(session, engine.embedder.model_id)
    todo = [(key[0], docs[key][0]) for key in sorted(keys) if key in docs and current.get(key) != docs[key][1]]
    embedded = vectors.embed(engine, todo)
    with vectors._session() as session:
        written = vectors.write(session, set(keys), [embedded])
        if finish is not None:
            finish(session)
        session.commit()
    return written


def catch_up(engine, force: bool = False) -> int:
    """Apply the rows committed since this engine's last look (at most one look per request unless
    ``force``); returns the sequence applied."""
    from .indexing import vectors
    if not force and has_request_context():
        if g.get("_matchmaker_caught_up") is engine:
            return engine.applied_seq
        g._matchmaker_caught_up = engine
    with engine.apply_lock:
        before = engine.applied_seq
        top, _ = vectors.apply_new_rows(engine, engine.embedder.model_id, before)
    INDEX_SEQUENCE_LAG.set(max(0, top - before))  # what this look found unapplied
    _maybe_switch_model(engine)
    return engine.applied_seq


def _maybe_switch_model(engine) -> None:
    """Serving an older model than configured: once the configured one is complete, build an engine for it
    in the background and swap it in (requests keep the old one meanwhile)."""
    if engine.embedder.model_id == getattr(engine, "configured_model", engine.embedder.model_id):
        return
    now = time.monotonic()
    if now - engine.checked_model_at < MODEL_CHECK_SECONDS:
        return
    engine.checked_model_at = now
    from .indexing import vectors
    with vectors._session() as session:
        model_id, _spec = vectors.served_model(session, engine.configured_model)
    if model_id != engine.configured_model:
        return
    app = current_app._get_current_object()
    started = app.extensions.get(LOADER_KEY + ".switch")
    if started is not None and started.is_alive():
        return

    def switch():
        with app.app_context():
            fresh = _build(app.config["MATCHMAKER_INDEX_DIR"])
            app.extensions[EXTENSION_KEY] = fresh
            log.info("matching: switched to model %s at sequence %s", fresh.embedder.model_id, fresh.applied_seq)

    thread = threading.Thread(target=switch, name="matchmaker-model-switch", daemon=True)
    app.extensions[LOADER_KEY + ".switch"] = thread
    thread.start()


def writer_engines() -> list:
    """The engines index jobs embed with: the configured model, and the served one while it differs (so the
    vectors that serve stay current until the new model takes over)."""
    from .indexing import vectors
    app = current_app._get_current_object()
    cache = app.extensions.setdefault(WRITERS_KEY, {})
    configured = configured_spec()
    specs = [configured]
    with vectors._session() as session:
        model_id, spec = vectors.served_model(session, counted_model_id(configured))
    if spec is not None:
        specs.append(spec)
    out = []
    for spec in specs:
        if spec not in cache:
            cache[spec] = new_engine(spec)
        out.append(cache[spec])
    return out


def index_versions() -> tuple:
    """What the match indexes of this process hold: (model id, the vector sequence applied). Every process
    caught up to the same committed rows gives the same tuple (page cache and ranking memo keys)."""
    engine = current_app.extensions.get(EXTENSION_KEY)
    if engine is None:  # not loaded in this process yet: the first render loads it, under a key without it
        return ("unloaded",)
    catch_up(engine)
    return ("vectors", engine.embedder.model_id, engine.applied_seq)


# -- process start and readiness -------------------------------------------------------------------------

class Loader:
    """The background load of a serving process's engine (model included)."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.error: str | None = None
        self.seconds: float | None = None
        self.pid: int | None = None


def start_loading(app) -> Loader:
    """Load the model and the engine now, in a background thread, so no user's request waits for them;
    in ``thread`` mode the index worker thread starts with it. Returns at once; idempotent per process."""
    loader = app.extensions.get(LOADER_KEY)
    if loader is not None and loader.thread is not None and loader.pid == os.getpid():
        return loader
    loader = Loader()
    loader.pid = os.getpid()
    app.extensions[LOADER_KEY] = loader

    def load():
        began = time.monotonic()
        with app.app_context():
            try:
                if enabled():
                    get_engine()
                    engine_loaded.send(app, serving=True)
            except Exception as exc:
                loader.error = f"{type(exc).__name__}: {exc}"
                log.exception("matching: loading the engine at start failed")
        loader.seconds = time.monotonic() - began
        log.info("matching: engine loaded in %.1f s", loader.seconds)

    loader.thread = threading.Thread(target=load, name="matchmaker-engine-loader", daemon=True)
    loader.thread.start()
    return loader


def readiness() -> tuple[bool, dict]:
    """(ready, details): ready once this process can rank (engine loaded and caught up with the stored
    vectors), or when matching is off."""
    if not enabled():
        return True, {"matching": "off"}
    loader = current_app.extensions.get(LOADER_KEY)
    engine = current_app.extensions.get(EXTENSION_KEY)
    if engine is None:
        if loader is not None and loader.error:
            return False, {"reason": "engine failed to load", "error": loader.error}
        return False, {"reason": "engine loading" if loader is not None else "engine not loaded"}
    from .indexing import vectors
    catch_up(engine, force=True)
    with vectors._session() as session:
        top = vectors.current_seq(session)
    lag = max(0, top - engine.applied_seq)
    details = {"model": engine.embedder.model_id, "seq": engine.applied_seq, "lag": lag}
    if lag:
        return False, {"reason": "catching up", **details}
    return True, details
