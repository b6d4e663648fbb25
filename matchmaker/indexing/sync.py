"""Bringing the matching indexes in line with the database: the index jobs' work (``sync_listings``, run by
``indexing.worker``) and `matchmaker reindex` (``rebuild_from_db``). Whoever writes index files holds the
index folder's write lock."""
from __future__ import annotations

from flask import current_app

from ..extensions import db
from ..matching_service import EXTENSION_KEY, get_engine
from .documents import _published_docs, reconcile
from .lock import index_write_lock


def rebuild_from_db(progress: bool = True) -> dict:
    """`matchmaker reindex`: rebuild every kind from the database and save it atomically. Index jobs
    committed before the rows were read are covered by the rebuild and marked done."""
    from sqlalchemy.orm import Session

    from . import queue
    from ..matching.engine import MatchEngine
    index_dir = current_app.config["MATCHMAKER_INDEX_DIR"]
    with index_write_lock(index_dir):
        engine = current_app.extensions.get(EXTENSION_KEY) or MatchEngine(index_dir)
        with Session(db.engine, join_transaction_mode="create_savepoint") as session:
            covered = queue.pending_ids(session)  # read before the listings: their changes are visible below
        for kind, docs in _published_docs().items():
            engine.rebuild(kind, list(docs.values()), progress=progress)
        current_app.extensions[EXTENSION_KEY] = engine
    with Session(db.engine, join_transaction_mode="create_savepoint") as session:
        queue.settle(session, covered)
    return engine.status()


def sync_listings(keys: set[tuple[str, int]]) -> None:
    """Index jobs' work: make the index hold each listing as it is in the database now (published →
    embedded and added or replaced, anything else → removed). The state is read under the write lock,
    so of two workers the later writer always writes the later state."""
    engine = get_engine()  # loads and reconciles on first use; outside the lock, which it takes itself
    if engine is None:
        return
    with index_write_lock(engine.index_dir):
        engine.refresh_if_changed()
        if engine.needs_rebuild():  # an unloadable file on disk: never save the jobs' few docs over it
            reconcile(engine)
        published = _published_docs(only=keys)
        for kind in sorted({kind for kind, _ in keys}):
            docs = list(published[kind].values())
            gone = [i for k, i in keys if k == kind and i not in published[kind]]
            engine.upsert_many(kind, docs, save=False)
            removed = [i for i in gone if engine.remove(kind, i, save=False)]
            if docs or removed:
                engine.save(kind)
