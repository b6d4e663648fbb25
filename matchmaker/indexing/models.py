from __future__ import annotations

from datetime import datetime

from sqlalchemy import (DDL, BigInteger, Boolean, CheckConstraint, Index, LargeBinary, String, Text,
                        UniqueConstraint, event)
from sqlalchemy.orm import Mapped, mapped_column

from ..core.time import UTCDateTime, utcnow
from ..extensions import db


class IndexJob(db.Model):
    """"Bring listing (kind, listing_id) in the index in line with the database". Idempotent: the worker
    reads the listing's current state, so duplicates and re-runs are harmless."""

    __tablename__ = "index_jobs"
    __table_args__ = (
        CheckConstraint("kind IN ('need', 'capability')", name="known_kind"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_index_jobs_pending", "done_at", "available_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    # no foreign key: the id refers to needs or capabilities depending on kind
    listing_id: Mapped[int] = mapped_column(nullable=False)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    #: not claimable before this time (set later after a failure, as a back-off)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)


class ListingVector(db.Model):
    """What one embedding model made of one listing: the listing's vector, its query-side vector, its evidence
    sentences' vectors and the text they were computed from — or, with ``removed``, a tombstone saying the
    listing left the index. One row per (model, kind, listing); each write gives it the next ``seq``
    (``indexing.vectors``), so a process that has applied every row up to ``seq = n`` applies ``seq > n`` to
    catch up, tombstones included. Written by the process that embeds the listing, in the transaction that
    completes its index job."""

    __tablename__ = "listing_vectors"
    __table_args__ = (
        CheckConstraint("kind IN ('need', 'capability')", name="known_kind"),
        CheckConstraint("removed OR (vector IS NOT NULL AND query_vector IS NOT NULL AND sentences IS NOT NULL"
                        " AND text IS NOT NULL AND lang IS NOT NULL)", name="live_row_complete"),
        CheckConstraint("dim > 0 AND sentence_count >= 0", name="sizes_positive"),
        UniqueConstraint("model_id", "kind", "listing_id", name="uq_listing_vectors_model_listing"),
        Index("ix_listing_vectors_model_seq", "model_id", "seq", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[str] = mapped_column(String(300), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    listing_id: Mapped[int] = mapped_column(nullable=False)  # needs or capabilities, by kind (no foreign key)
    #: position in the single sequence of vector writes (``vector_sequence``), unique per model
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    removed: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    #: sha256 of the language and the text embedded: an unchanged listing is not embedded again
    text_hash: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(16))
    dim: Mapped[int] = mapped_column(nullable=False)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary)        # float32 × dim
    query_vector: Mapped[bytes | None] = mapped_column(LargeBinary)  # float32 × dim (the text as a query)
    sentence_count: Mapped[int] = mapped_column(default=0, nullable=False)
    sentences: Mapped[bytes | None] = mapped_column(LargeBinary)     # float16 × sentence_count × dim
    written_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class VectorSequence(db.Model):
    """The single row (id 1) holding the last ``listing_vectors.seq`` handed out. A writer moves it on in
    its own transaction right before committing: the row lock serialises writers, so sequence numbers
    become visible in the order they were given (see ``indexing.vectors``)."""

    __tablename__ = "vector_sequence"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)


class VectorModel(db.Model):
    """An embedding model whose vectors are (being) written: ``complete_at`` is set once it held a row for
    every published listing; processes serve the newest complete model (the old one serves meanwhile)."""

    __tablename__ = "vector_models"

    model_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    #: what ``load_embedder`` builds it from (MATCHMAKER_EMBEDDING_MODEL's value)
    spec: Mapped[str] = mapped_column(String(300), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    complete_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# create_all (tests, fresh schemas) gets the row as the migration does
event.listen(VectorSequence.__table__, "after_create", DDL("INSERT INTO vector_sequence (id, value) VALUES (1, 0)"))
