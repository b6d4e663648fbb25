from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, Text
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
