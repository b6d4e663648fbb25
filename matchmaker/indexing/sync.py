"""Bringing the stored listing vectors (``indexing.vectors``) in line with the database: the index jobs' work
(``sync_listings``, run by ``indexing.worker``) and `matchmaker reindex` (``rebuild_from_db``). Ranking
processes apply the rows they write (``matching_service.catch_up``); no index file is written per change."""
from __future__ import annotations

from flask import current_app

from ..matching_service import EXTENSION_KEY, _build, configured_spec, enabled, new_engine, writer_engines
from . import vectors

#: listings embedded and written per transaction by `matchmaker reindex`
REINDEX_BATCH = 256


def sync_listings(keys: set[tuple[str, int]], finish=None) -> int:
    """Index jobs' work: for each model being written, embed each listing as it is in the database now and
    write its row (published) or tombstone (anything else), then ``finish(session)`` (mark the jobs done) in the
    same transaction. Returns rows written. With matching off only ``finish`` runs."""
    engines = writer_engines() if enabled() else []
    docs = vectors.current_docs(keys) if engines else {}
    embedded = []
    for engine in engines:
        with vectors._session() as session:
            current = vectors.live_hashes(session, engine.embedder.model_id)
        todo = [(key[0], docs[key][0]) for key in sorted(keys) if key in docs and current.get(key) != docs[key][1]]
        embedded.append(vectors.embed(engine, todo))
    with vectors._session() as session:
        written = vectors.write(session, keys, embedded)
        for engine in engines:
            vectors.note_model(session, engine.embedder.model_id, engine.spec)
        if finish is not None:
            finish(session)
        session.commit()
    return written


def backfill(limit: int = 64) -> int:
    """After a model change: embed with the configured model up to ``limit`` published listings that have no
    current row of it yet (the old model's rows keep serving meanwhile), and mark the model complete once none
    is left. Returns listings embedded; 0 costs one primary-key read once the model is complete."""
    from .models import VectorModel
    if not enabled():
        return 0
    engine = writer_engines()[0]
    model_id = engine.embedder.model_id
    with vectors._session() as session:
        known = session.get(VectorModel, model_id)
        if known is not None and known.complete_at is not None:
            return 0
        current = vectors.live_hashes(session, model_id)
        pending = vectors.pending_keys(session)
    docs = vectors.current_docs()
    missing = sorted(key for key, (_doc, h) in docs.items() if current.get(key) != h and key not in pending)[:limit]
    if missing:
        embedded = vectors.embed(engine, [(key[0], docs[key][0]) for key in missing])
        with vectors._session() as session:
            vectors.write(session, set(missing), [embedded])
            vectors.note_model(session, model_id, engine.spec)
            session.commit()
        return len(missing)
    with vectors._session() as session:
        vectors.note_model(session, model_id, engine.spec)
        vectors.mark_complete_if_done(session, model_id)
        session.commit()
    return 0


def rebuild_from_db(progress: bool = True) -> dict:
    """`matchmaker reindex`: embed every published listing again with the configured model and write its row
    (tombstones for the rest), batch by batch; the model is then complete. Index jobs committed before the
    listings were read are covered and marked done. Ranking processes pick the rows up like any others; this
    process's index folder gets a fresh snapshot."""
    from . import queue
    spec = configured_spec()
    engine = new_engine(spec)
    with vectors._session() as session:
        covered = queue.pending_ids(session)  # read before the listings: their changes are visible below
        stored = set(vectors.live_hashes(session, engine.embedder.model_id))
    docs = vectors.current_docs()
    keys = sorted(set(docs) | stored)
    bar = _progress(len(keys), progress)
    for start in range(0, len(keys), REINDEX_BATCH):
        chunk = keys[start:start + REINDEX_BATCH]
        embedded = vectors.embed(engine, [(key[0], docs[key][0]) for key in chunk if key in docs])
        with vectors._session() as session:
            vectors.write(session, set(chunk), [embedded], force=True)
            session.commit()
        bar.update(len(chunk))
    bar.close()
    with vectors._session() as session:
        vectors.note_model(session, engine.embedder.model_id, spec)
        vectors.mark_complete_if_done(session, engine.embedder.model_id)
        queue.settle(session, covered)  # commits
    serving = _build(current_app.config["MATCHMAKER_INDEX_DIR"], reconcile_db=False)
    current_app.extensions[EXTENSION_KEY] = serving
    return serving.status()


def _progress(total: int, enabled: bool):
    from ..matching.engine import _progress as bar
    return bar(total, "embedding listings", enabled)
