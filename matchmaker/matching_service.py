"""The web app's matching engine (``matchmaker.matching``): one per process, built on first use.

The SQL database is the source of truth: the engine's indexes are reconciled with the published listings
when the engine is first used in a process (missing, corrupt, stale or other-model indexes are rebuilt,
``indexing.documents``), kept current by index jobs (``indexing.sync``, ``indexing.worker``) written with
each publish/edit/close/delete and processed in the background, and `matchmaker reindex` rebuilds them from
scratch. Whoever writes index files holds the index folder's write lock; other processes pick new versions up
in `get_engine()`. The pages' queries are ``suggestions.queries``; who may be matched with whom is
``pairings.eligibility``.
"""
from __future__ import annotations

import logging
import threading

from flask import current_app

from .core.signals import signals
from .indexing.documents import reconcile
from .indexing.lock import index_write_lock

log = logging.getLogger(__name__)
_engine_lock = threading.Lock()
EXTENSION_KEY = "matchmaker.engine"

#: this process loaded its engine: ``engine_loaded.send(app)`` (the index worker's thread starts with it)
engine_loaded = signals.signal("engine-loaded", doc="A process loaded its matching engine.")


def init_matching(app) -> None:
    # The engine (and its model, seconds to load) is built on first use, not at import or app start.
    app.extensions[EXTENSION_KEY] = None


def enabled() -> bool:
    return bool(current_app.config.get("MATCHMAKER_MATCHING", True))


def get_engine(reconcile_db: bool = True):
    """This process's engine, created and reconciled with the database on first use."""
    if not enabled():
        return None
    engine = current_app.extensions.get(EXTENSION_KEY)
    if engine is None:
        with _engine_lock:
            engine = current_app.extensions.get(EXTENSION_KEY)
            if engine is None:
                from .matching.engine import MatchEngine
                engine = MatchEngine(current_app.config["MATCHMAKER_INDEX_DIR"])
                if reconcile_db:
                    with index_write_lock(engine.index_dir):
                        engine.refresh_if_changed()  # another process may have saved while the model loaded
                        reconcile(engine)
                current_app.extensions[EXTENSION_KEY] = engine
                engine_loaded.send(current_app._get_current_object())
    elif engine.refresh_if_changed() and engine.needs_rebuild():
        # another process saved a version this one cannot load (another model, a damaged file): rebuild
        # from the database rather than serve, and later save, an empty index
        with index_write_lock(engine.index_dir):
            engine.refresh_if_changed()
            reconcile(engine)
    return engine


def index_versions() -> tuple:
    """The versions of the match indexes this process has loaded (the page cache keys match pages on them)."""
    engine = current_app.extensions.get(EXTENSION_KEY)
    if engine is None:  # not loaded in this process yet: the first render loads it, under a key without it
        return ("unloaded",)
    engine.refresh_if_changed()  # another worker or `matchmaker reindex` may have saved a newer version
    return engine.versions()
