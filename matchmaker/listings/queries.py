"""Queries that encode who may see which listing, so every list view applies the same rule."""
from __future__ import annotations

from sqlalchemy import Select, or_, select

from ..core.enums import ListingStatus, Visibility
from ..core.scope import coordinator_scope_of
from .models import Need


def visibility_scope(model, user) -> tuple | None:
    """What decides which published listings ``user`` sees: None = all of them, else the organization ids
    whose coordinators-only needs are visible besides the public ones."""
    if model is not Need or (getattr(user, "is_authenticated", False) and user.is_coordinator):
        return None
    return tuple(sorted(user.organization_ids)) if getattr(user, "is_authenticated", False) else ()


def visible_listings(model, user) -> Select:
    """Published, not deleted listings ``user`` may see (coordinators-only needs need a coordinator or owner)."""
    stmt = select(model).where(model.status == ListingStatus.PUBLISHED, model.deleted_at.is_(None))
    own = visibility_scope(model, user)
    if own is not None:
        stmt = stmt.where(or_(Need.visibility == Visibility.PUBLIC, Need.organization_id.in_(own)))
    return stmt


def owned_listings(model, user) -> Select:
    """Listings created by ``user`` or by one of their organizations, deleted ones excluded."""
    conds = [model.created_by_id == user.id]
    if user.organization_ids:
        conds.append(model.organization_id.in_(list(user.organization_ids)))
    return select(model).where(or_(*conds), model.deleted_at.is_(None)).order_by(model.updated_at.desc())


# --- browse, search and moderation ------------------------------------------------------------------

from sqlalchemy import String, case, cast, func  # noqa: E402
from sqlalchemy.orm import selectinload  # noqa: E402

from ..core.enums import CapabilityKind, CoopMode, HubCity, Industry, Language  # noqa: E402
from .models import Capability  # noqa: E402

#: text columns searched by the keyword box
SEARCH_COLUMNS = {
    Need: ("title", "background", "problems", "targets", "region"),
    Capability: ("title", "summary", "description", "ip", "region"),
}

#: facet name → (query argument, column attribute, enum) per model; coop modes are handled apart (JSON list)
FACETS = {
    Need: (("industry", "industry", Industry), ("hub_city", "hub_city", HubCity),
           ("language", "language", Language)),
    Capability: (("kind", "kind", CapabilityKind), ("field", "field", Industry),
                 ("hub_city", "hub_city", HubCity), ("language", "language", Language)),
}

MAX_TERMS = 6


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_terms(q: str | None) -> list[str]:
    """Whitespace-separated keywords (at most MAX_TERMS, each at most 50 characters)."""
    return [t[:50] for t in (q or "").split()][:MAX_TERMS]


def keyword_filter(model, q: str | None):
    """Every term must appear (case-insensitively, any substring, Chinese included) in some text column."""
    conds = []
    for term in search_terms(q):
        pattern = f"%{_like_escape(term)}%"
        conds.append(or_(*(getattr(model, col).ilike(pattern, escape="\\")
                           for col in SEARCH_COLUMNS[model])))
    return conds


def coop_mode_filter(model, mode: str):
    """Listings whose JSON list of cooperation modes contains ``mode`` (portable SQLite / PostgreSQL)."""
    return cast(model.coop_modes, String).like(f'%"{mode}"%')


def apply_filters(stmt: Select, model, filters: dict[str, str], q: str | None = None,
                  skip: str | None = None) -> Select:
    """Add the keyword search and every facet filter except ``skip`` (used for facet counts)."""
    conds = keyword_filter(model, q)
    for arg, column, _enum in FACETS[model]:
        if arg != skip and filters.get(arg):
            conds.append(getattr(model, column) == filters[arg])
    if skip != "coop" and filters.get("coop"):
        conds.append(coop_mode_filter(model, filters["coop"]))
    return stmt.where(*conds) if conds else stmt


def facet_counts(base: Select, model, filters: dict[str, str], q: str | None) -> dict[str, dict[str, int]]:
    """For each facet, how many listings each value would give with the other filters kept."""
    from ..extensions import db

    counts: dict[str, dict[str, int]] = {}
    for arg, column, _enum in FACETS[model]:
        sub = apply_filters(base, model, filters, q, skip=arg).subquery()
        col = sub.c[column]
        rows = db.session.execute(select(col, func.count()).group_by(col)).all()
        counts[arg] = {value: n for value, n in rows if value is not None}
    sub = apply_filters(base, model, filters, q, skip="coop").subquery()
    text = cast(sub.c.coop_modes, String)
    sums = [func.coalesce(func.sum(case((text.like(f'%"{m.value}"%'), 1), else_=0)), 0) for m in CoopMode]
    row = db.session.execute(select(*sums)).one()
    counts["coop"] = {m.value: int(n) for m, n in zip(CoopMode, row, strict=True)}
    return counts


def browse_counts(model, user, filters: dict[str, str], q: str | None) -> tuple[int, dict[str, dict[str, int]]]:
    """The number of results and the facet counts of a browse page, computed once per state of the table for
    every visitor with the same visibility scope, in every process (core.sharedcache: Redis when configured).

    Counting runs one aggregate per facet over every visible listing; the key holds the table's write counter
    (core.data_version.tables), read before counting, so a write to this table (and only to it) makes it new.
    """
    from ..core import data_version, sharedcache
    from ..extensions import db

    def count():
        base = visible_listings(model, user)
        total = db.session.scalar(select(func.count()).select_from(apply_filters(base, model, filters, q).subquery()))
        return total, facet_counts(base, model, filters, q)

    version = data_version.tables(model.__tablename__)
    if version is None:
        return count()
    key = (model.__tablename__, visibility_scope(model, user), tuple(sorted(filters.items())), q or "", version)
    return sharedcache.lookup("counts", key, count)


def moderation_queue(model, user) -> Select:
    """Submitted, not deleted listings ``user`` may moderate (same rule as ``can_moderate``), oldest first."""
    stmt = select(model).where(model.status == ListingStatus.SUBMITTED, model.deleted_at.is_(None),
                               coordinator_scope_of(user).where(model.hub_city))
    # the queue names each listing's owner: one query for all of them, not one per row
    return stmt.options(selectinload(model.created_by)).order_by(model.submitted_at.asc(), model.id.asc())
