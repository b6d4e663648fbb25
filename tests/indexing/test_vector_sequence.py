"""Is the listing-vector sequence safe for readers when writers commit concurrently: does a number become
visible only after every smaller one, so a reader that applies up to the counter never skips a row?

Real commits on a database of its own (SQLite file, or a new PostgreSQL database next to TEST_DATABASE_URL),
two writer sessions and a reader, as two workers and a web process would be.
"""
from __future__ import annotations

import threading
import time

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from matchmaker.extensions import db
from matchmaker.indexing import vectors
from matchmaker.indexing.models import ListingVector


def _row(session: Session, seq: int, listing_id: int) -> None:
    v = np.ones(2, np.float32).tobytes()
    session.add(ListingVector(model_id="m", kind="capability", listing_id=listing_id, seq=seq, removed=False,
                              text_hash="h", text="t", lang="en", dim=2, vector=v, query_vector=v,
                              sentence_count=0, sentences=b""))
    session.flush()


def _visible(session: Session, after: int) -> tuple[int, list[int]]:
    """What a reader applies: the counter, then the rows numbered above ``after`` and up to it."""
    top = vectors.current_seq(session)
    seqs = list(session.scalars(select(ListingVector.seq).where(ListingVector.seq > after, ListingVector.seq <= top)
                                .order_by(ListingVector.seq)))
    session.rollback()
    return top, seqs


def test_a_later_writer_waits_for_the_earlier_one_so_readers_never_skip_a_row(fresh_app):
    """With writer A holding number 1 uncommitted, does writer B wait (not take 2 and commit first), does a
    reader meanwhile see neither row nor a counter past them, and after both commit see 1 then 2?"""
    app = fresh_app("vecseq")
    with app.app_context():
        a, b, reader = Session(db.engine), Session(db.engine), Session(db.engine)
        try:
            first_a = vectors._take_numbers(a, 1)
            _row(a, first_a, 1)
            got: dict = {}

            def writer_b():
                try:
                    got["b"] = vectors._take_numbers(b, 1)
                    _row(b, got["b"], 2)
                    got["b_done"] = time.monotonic()
                    b.commit()
                except Exception as exc:  # reported below
                    got["error"] = exc

            thread = threading.Thread(target=writer_b)
            thread.start()
            time.sleep(1.0)
            assert "b" not in got, "writer B took a number while A's was uncommitted"
            assert _visible(reader, 0) == (0, [])
            committed_a = time.monotonic()
            a.commit()
            thread.join(30)
            assert "error" not in got, got.get("error")
            assert got["b"] == first_a + 1 and got["b_done"] >= committed_a
            assert _visible(reader, 0) == (first_a + 1, [first_a, first_a + 1])
        finally:
            for session in (a, b, reader):
                session.close()


def test_a_rolled_back_write_gives_its_numbers_back(fresh_app):
    """Does a writer that rolls back leave the counter as it was, so the next writer numbers on from the
    committed counter and a reader finds exactly its row?"""
    app = fresh_app("vecgap")
    with app.app_context():
        with Session(db.engine) as a:
            _row(a, vectors._take_numbers(a, 3), 1)
            a.rollback()
        with Session(db.engine) as b:
            first = vectors._take_numbers(b, 1)
            _row(b, first, 2)
            b.commit()
        with Session(db.engine) as reader:
            assert _visible(reader, 0) == (first, [first])
