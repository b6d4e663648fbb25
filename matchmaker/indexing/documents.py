"""Listings as the matching engine's documents: what the index jobs embed (``indexing.vectors``) and what a
ranking process compares its stored vectors with at start (``matching_service``)."""
from __future__ import annotations

from sqlalchemy import select

from ..core.enums import ListingStatus
from ..extensions import db


def _models():
    from ..listings.models import Capability, Need
    return {"need": Need, "capability": Capability}


def listing_doc(listing):
    from ..matching.engine import Doc
    return Doc(id=listing.id, title=listing.title, text=_body(listing), lang=listing.language)


def _body(listing) -> str:
    # The title is added by the engine; the body is everything a match may be found in.
    return "\n".join(p for p in listing.matching_text().split("\n")[1:] if p)


def _indexable(model):
    return select(model).where(model.status == ListingStatus.PUBLISHED, model.deleted_at.is_(None))


def _published_docs(only: set[tuple[str, int]] | None = None) -> dict[str, dict[int, object]]:
    """Every published listing (or those of ``only``'s (kind, id) keys) as an engine document, per kind,
    read in a short session of its own.

    Embedding takes seconds to minutes; holding a read transaction open meanwhile would block every
    writer on SQLite, so the rows are copied out and the session closed first.
    """
    from sqlalchemy.orm import Session
    out: dict[str, dict[int, object]] = {}
    with Session(db.engine, join_transaction_mode="create_savepoint") as session:
        for kind, model in _models().items():
            stmt = _indexable(model)
            if only is not None:
                stmt = stmt.where(model.id.in_(sorted(i for k, i in only if k == kind)))
            out[kind] = {r.id: listing_doc(r) for r in session.scalars(stmt)}
    return out
