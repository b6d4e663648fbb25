"""Listing vectors in the database: written by whoever embeds a listing, applied by every process that ranks.

**Rows.** ``listing_vectors`` holds, per embedding model and listing, what the model made of the listing's
text (``matching.engine.DocVectors``) or a tombstone (``removed``) once the listing left the index. A write
replaces the row in place and gives it the next sequence number, so the table stays one row per model and
listing, and "everything that changed since sequence n" is ``seq > n``, tombstones included.

**Why a reader never skips a row.** Sequence numbers come from the single row of ``vector_sequence``, moved
on with ``UPDATE … SET value = value + k`` as the *first* statement of the writing transaction, which then
writes its rows and commits at once. The UPDATE holds that row's lock until the commit, so a second writer
waits at its own UPDATE until the first has committed, and then (READ COMMITTED re-reads the updated row)
numbers from the first writer's value onwards. Numbers therefore become visible in the order they were
handed out: when a reader sees the counter at ``n`` (committed with the rows it numbered), every row numbered
``<= n`` is committed and visible too. A reader reads the counter first, then the rows ``last < seq <= n``,
and records ``n`` as applied; a transaction still in flight holds numbers above ``n`` only. (A bare PostgreSQL
sequence would not do: two writers take 7 and 8, 8 commits first, a reader applies up to 8 and skips 7 for
ever.) On SQLite the database's write lock gives the same order. The lock is held only for the short write
itself (embedding happens before it), and taking it first is also what makes a stale write impossible:
under it the writer re-reads each listing and drops any embedding whose text is no longer the listing's
current text (the change that made it stale committed its own index job, which writes the newer text).

**Models.** Rows are keyed by model id. ``vector_models`` lists the models being written and when each first
held a row for every published listing (``complete_at``); a process serves the model it is configured with
once that is complete, and until then the newest complete one (``served_model``), while index jobs write
rows for both (``target_models``) and the background backfill (``backfill``) embeds what the new model lacks.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from ..core.time import utcnow
from ..extensions import db
from .documents import _models, _published_docs
from .models import IndexJob, ListingVector, VectorModel, VectorSequence

log = logging.getLogger(__name__)
KINDS = ("need", "capability")
_SEQ = VectorSequence.__table__
_ROWS = ListingVector.__table__


def text_hash(text: str, lang: str) -> str:
    return hashlib.sha256(f"{lang}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()


def _session() -> Session:
    # its own session; inside the test suite's outer transaction a savepoint, so a failure undoes only this.
    # Beside a request's transaction, not part of it: on SQLite it must not wait for the request's write lock
    from ..extensions import SEPARATE_TRANSACTION
    return Session(db.engine.execution_options(**{SEPARATE_TRANSACTION: True}),
                   join_transaction_mode="create_savepoint")


def current_seq(session: Session) -> int:
    """The newest sequence number committed (0 for an empty table, or a schema without the row)."""
    return int(session.execute(select(_SEQ.c.value).where(_SEQ.c.id == 1)).scalar_one_or_none() or 0)


def _take_numbers(session: Session, count: int) -> int:
    """Lock the counter for the rest of ``session``'s transaction and hand out ``count`` numbers; returns the
    first. Must be the transaction's first statement (see the module docstring)."""
    first = session.execute(update(_SEQ).where(_SEQ.c.id == 1).values(value=_SEQ.c.value + count)
                            .returning(_SEQ.c.value)).scalar_one_or_none()
    if first is None:  # a schema made before the migration's row (never on a migrated database)
        raise RuntimeError("vector_sequence has no row: run `matchmaker init-db`")
    return int(first) - count + 1


# -- rows <-> vectors -----------------------------------------------------------------------------------

def _pack(items, dim: int) -> dict:
    return {"vector": np.asarray(items.vector, np.float32).tobytes(),
            "query_vector": np.asarray(items.query_vector, np.float32).tobytes(),
            "sentence_count": 0 if items.sentences is None else len(items.sentences),
            "sentences": (np.zeros((0, dim), np.float16) if items.sentences is None
                          else np.asarray(items.sentences, np.float16)).tobytes()}


def _unpack(row):
    from ..matching.engine import DocVectors
    dim = row.dim
    return DocVectors(id=int(row.listing_id), text=row.text, lang=row.lang,
                      vector=np.frombuffer(row.vector, np.float32).reshape(dim).copy(),
                      query_vector=np.frombuffer(row.query_vector, np.float32).reshape(dim).copy(),
                      sentences=np.frombuffer(row.sentences, np.float16).reshape(row.sentence_count, dim).copy())


_ROW_COLUMNS = (_ROWS.c.kind, _ROWS.c.listing_id, _ROWS.c.seq, _ROWS.c.removed, _ROWS.c.text, _ROWS.c.lang,
                _ROWS.c.dim, _ROWS.c.vector, _ROWS.c.query_vector, _ROWS.c.sentence_count, _ROWS.c.sentences)


# -- reading: applying rows to an engine --------------------------------------------------------------

def apply_new_rows(engine, model_id: str, after: int, session: Session | None = None) -> tuple[int, int]:
    """Apply to ``engine`` every row of ``model_id`` numbered above ``after`` and at most the committed counter;
    returns (the counter, rows applied). No model call."""
    own = session is None
    session = session or _session()
    try:
        top = current_seq(session)
        if top <= after:
            return top, 0
        rows = session.execute(select(*_ROW_COLUMNS).where(
            _ROWS.c.model_id == model_id, _ROWS.c.seq > after, _ROWS.c.seq <= top).order_by(_ROWS.c.seq)).all()
    finally:
        if own:
            session.close()
    for kind in KINDS:
        mine = [r for r in rows if r.kind == kind]
        live = {r.listing_id: r for r in mine if not r.removed}
        engine.apply(kind, [_unpack(r) for r in live.values()],
                     removed=[r.listing_id for r in mine if r.removed and r.listing_id not in live])
    engine.mark_applied(top)
    return top, len(rows)


def live_hashes(session: Session, model_id: str) -> dict[tuple[str, int], str]:
    """(kind, listing id) → text hash of every live row of ``model_id``."""
    return {(r.kind, r.listing_id): r.text_hash for r in session.execute(
        select(_ROWS.c.kind, _ROWS.c.listing_id, _ROWS.c.text_hash)
        .where(_ROWS.c.model_id == model_id, _ROWS.c.removed.is_(False)))}


def engine_hashes(engine) -> dict[tuple[str, int], str]:
    out = {}
    for kind in KINDS:
        langs = engine.doc_langs(kind)
        out.update({(kind, i): text_hash(text, langs[i]) for i, text in engine.doc_texts(kind).items()})
    return out


# -- writing ------------------------------------------------------------------------------------------

@dataclass
class Embedded:
    """What one model made of listings read at one moment: their vectors, keyed by (kind, id)."""
    model_id: str
    dim: int
    vectors: dict[tuple[str, int], object]  # DocVectors


def current_docs(keys: set[tuple[str, int]] | None = None) -> dict[tuple[str, int], tuple[object, str]]:
    """(kind, id) → (engine Doc, text hash) of the published listings (of ``keys``), as committed now."""
    from ..matching.engine import detect_lang
    out = {}
    for kind, docs in _published_docs(only=keys).items():
        for doc in docs.values():
            text = doc.full_text
            lang = doc.lang or detect_lang(text)
            doc.lang = lang
            out[(kind, int(doc.id))] = (doc, text_hash(text, lang))
    return out


def embed(engine, docs) -> Embedded:
    """Model calls: ``engine.embed`` for each kind's docs (a list of (kind, Doc))."""
    vectors = {}
    for kind in KINDS:
        mine = [d for k, d in docs if k == kind]
        for start in range(0, len(mine), 256):
            for dv in engine.embed(mine[start:start + 256]):
                vectors[(kind, dv.id)] = dv
    return Embedded(engine.embedder.model_id, engine.embedder.dim, vectors)


def write(session: Session, keys: set[tuple[str, int]], embedded: list[Embedded], force: bool = False) -> int:
    """In ``session``'s transaction (nothing else written in it yet), under the counter's lock: for each of
    ``keys``, per model, a row with the new vectors if the listing is published with exactly the embedded text,
    a tombstone if it is not published (and has a live row); nothing if the row is already current or the
    listing changed since it was read (its own job writes the newer text); ``force`` rewrites current rows too
    (a full reindex). The caller commits. Returns rows written."""
    if not keys or not embedded:
        return 0
    # the lock first: numbers are handed out in commit order, and the listings below are read after any
    # writer before us committed (we take as many numbers as we may need; unused ones are gaps, harmless)
    first = _take_numbers(session, len(keys) * len(embedded))
    now = {key: h for key, (_doc, h) in _current_in(session, keys).items()}
    written = 0
    for emb in embedded:
        existing = {(r.kind, r.listing_id): (r.id, r.removed, r.text_hash) for r in session.execute(
            select(_ROWS.c.id, _ROWS.c.kind, _ROWS.c.listing_id, _ROWS.c.removed, _ROWS.c.text_hash)
            .where(_ROWS.c.model_id == emb.model_id, _keys_clause(keys)))}
        for key in sorted(keys):
            row = existing.get(key)
            if key in now:
                dv = emb.vectors.get(key)
                if dv is None or text_hash(dv.text, dv.lang) != now[key]:
                    continue  # not embedded here, or changed since: the newer job writes it
                if not force and row is not None and not row[1] and row[2] == now[key]:
                    continue  # already current
                values = dict(seq=first + written, removed=False, text_hash=now[key], text=dv.text,
                              lang=dv.lang, dim=emb.dim, written_at=utcnow(), **_pack(dv, emb.dim))
            else:
                if row is None or row[1]:
                    continue  # never indexed, or already removed
                values = dict(seq=first + written, removed=True, text_hash=None, text=None, lang=None,
                              vector=None, query_vector=None, sentences=None, sentence_count=0,
                              written_at=utcnow())
            if row is None:
                session.execute(_ROWS.insert().values(model_id=emb.model_id, kind=key[0], listing_id=key[1],
                                                      **values))
            else:
                session.execute(update(_ROWS).where(_ROWS.c.id == row[0]).values(**values))
            written += 1
    return written


def _keys_clause(keys):
    from sqlalchemy import or_
    by_kind: dict[str, list[int]] = {}
    for kind, i in keys:
        by_kind.setdefault(kind, []).append(i)
    return or_(*(and_(_ROWS.c.kind == kind, _ROWS.c.listing_id.in_(sorted(ids))) for kind, ids in by_kind.items()))


def _current_in(session: Session, keys: set[tuple[str, int]]) -> dict[tuple[str, int], tuple[object, str]]:
    """Like ``current_docs`` but read in ``session`` (inside the writer's locked transaction)."""
    from ..matching.engine import detect_lang
    from .documents import _indexable, listing_doc
    out = {}
    for kind, model in _models().items():
        ids = sorted(i for k, i in keys if k == kind)
        if not ids:
            continue
        for listing in session.scalars(_indexable(model).where(model.id.in_(ids))
                                       .execution_options(populate_existing=True)):
            doc = listing_doc(listing)
            text = doc.full_text
            doc.lang = doc.lang or detect_lang(text)
            out[(kind, listing.id)] = (doc, text_hash(text, doc.lang))
    return out


def pending_keys(session: Session) -> set[tuple[str, int]]:
    """Listings with an index job not done yet (a worker will write their rows)."""
    return {(r.kind, r.listing_id) for r in session.execute(
        select(IndexJob.kind, IndexJob.listing_id).where(IndexJob.done_at.is_(None)))}


# -- models -------------------------------------------------------------------------------------------

def note_model(session: Session, model_id: str, spec: str) -> None:
    """Record that ``model_id`` is being written (idempotent; the caller commits). Processes starting together
    all find no row: the insert does nothing for all but one of them instead of failing on the key."""
    if session.get(VectorModel, model_id) is not None:
        return
    table = VectorModel.__table__
    values = {"model_id": model_id, "spec": spec}
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=["model_id"]))


def mark_complete_if_done(session: Session, model_id: str) -> bool:
    """Set ``complete_at`` once every published listing has a current live row of ``model_id``; the caller
    commits. Returns whether the model is complete."""
    found = session.get(VectorModel, model_id)
    if found is None:
        return False
    if found.complete_at is not None:
        return True
    rows = live_hashes(session, model_id)
    docs = current_docs()
    if all(rows.get(key) == h for key, (_doc, h) in docs.items()):
        found.complete_at = utcnow()
        session.flush()
        return True
    return False


def served_model(session: Session, configured_id: str) -> tuple[str, str | None]:
    """(model id, spec) a ranking process serves: the configured model once complete (or when no model is
    complete yet: a new database), else the newest complete one; spec is None for the configured model."""
    models = session.scalars(select(VectorModel)).all()
    mine = next((m for m in models if m.model_id == configured_id), None)
    complete = sorted((m for m in models if m.complete_at is not None), key=lambda m: m.complete_at)
    if (mine is not None and mine.complete_at is not None) or not complete:
        return configured_id, None
    return complete[-1].model_id, complete[-1].spec
