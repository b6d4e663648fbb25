"""The memo of a need's ranking, shared by every viewer, process and machine (core.sharedcache: Redis when
``REDIS_URL`` is set), so a need's matches are computed once per state, not per view or per person.

Ranking a need encodes its text with the embedding model and builds sentence-pair evidence: tens to hundreds
of milliseconds of CPU, the same result for every viewer until something it depends on changes. The key holds
everything the ranking reads, none of it the viewer's: the need (id, version, updated_at), the versions of the
match indexes (``matching_service.index_versions``; feedback reads need vectors), the filters and k, a token of
the pairing records that feed back into the ranking and of the memberships the pairing rules read, and the
experts the pairing rules exclude for the need (affiliation, declared conflicts:
``pairings.eligibility.excluded_expert_ids``), and whether the confidence floor is on.
Only ids, scores and evidence are kept; rows are loaded fresh from the database on every request, and a
capability unpublished after the ranking (before its index update) is dropped on the way out.

Rankings are computed ahead of the first view: after each batch of index jobs (a listing published, edited
or closed: the index versions, and so every key, are new) the process that ran it ranks the affected open
needs for the match page (``warm``, up to ``RANKING_WARM`` needs: the batch's own needs first, then the most
recently published), so viewers find them in the memo. (`matchmaker worker` without Redis skips it: its memo
would be its own.)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..core import sharedcache
from ..core.enums import ListingStatus
from ..core.metrics import RANKINGS
from ..extensions import db
from ..indexing.signals import listings_indexed
from ..matching_service import get_engine, index_versions
from ..pairings.eligibility import excluded_expert_ids
from .queries import ExpertSuggestion, Suggestion, capabilities_for_need, experts_for_need, floor_on

log = logging.getLogger(__name__)
CACHE = "ranking"
#: what the match page asks for: (k, experts_k, filters) of the full page and of the need page's preview
PAGE_RANKINGS = ((20, 8), (5, 0))


@dataclass(frozen=True)
class RankedNeed:
    """A need's ranking without ORM rows: (capability id, match) pairs and expert groups."""

    capabilities: tuple
    experts: tuple  # (expert id, score, ((capability id, match), ...))


def _pairings_token() -> tuple:
    """Changes whenever a pairing or a pairing response is added, changed or removed, and whenever someone
    joins or leaves an organization (the pairing rules exclude people on both sides by membership), and whenever
    an expert marks a need "not for me" or takes it back (dismissals demote their capabilities: ``feedback``)."""
    from ..accounts.models import Membership
    from ..pairings.models import NeedDismissal, Pairing, PairingResponse
    return tuple(db.session.execute(select(
        select(func.count(Pairing.id)).scalar_subquery(),
        select(func.max(Pairing.updated_at)).scalar_subquery(),
        select(func.count(PairingResponse.id)).scalar_subquery(),
        select(func.max(PairingResponse.id)).scalar_subquery(),
        select(func.count()).select_from(Membership).scalar_subquery(),
        select(func.max(Membership.created_at)).scalar_subquery(),
        # SQLite may give a removed last row's id to the next one: the time tells them apart
        select(func.count(NeedDismissal.id)).scalar_subquery(),
        select(func.sum(NeedDismissal.id)).scalar_subquery(),
        select(func.max(NeedDismissal.created_at)).scalar_subquery())).one())


def _key(need, k: int, experts_k: int, filters: dict) -> tuple:
    return (need.id, need.version, need.updated_at, index_versions(), k, experts_k,
            tuple(sorted(filters.items())), _pairings_token(), excluded_expert_ids(need), floor_on())


def _rank(need, k: int, experts_k: int, filters: dict) -> RankedNeed:
    capabilities = capabilities_for_need(need, k=k, **filters)
    RANKINGS.labels("capabilities_for_need").inc()
    experts = experts_for_need(need, k=experts_k) if experts_k else []
    if experts_k:
        RANKINGS.labels("experts_for_need").inc()
    return RankedNeed(
        capabilities=tuple((s.listing.id, s.match) for s in capabilities),
        experts=tuple((e.expert.id, e.score, tuple((s.listing.id, s.match) for s in e.capabilities))
                      for e in experts))


def need_matches(need, k: int, experts_k: int = 0, filters: dict | None = None):
    """(capability suggestions, expert suggestions) for ``need``, as suggestions.queries returns them."""
    from ..accounts.models import ExpertProfile
    from ..listings.models import Capability

    filters = {name: value for name, value in (filters or {}).items() if value}
    if get_engine() is None:
        return [], []
    ranked = sharedcache.lookup(CACHE, _key(need, k, experts_k, filters),
                                lambda: _rank(need, k, experts_k, filters))
    ids = {i for i, _m in ranked.capabilities} | {i for _e, _s, caps in ranked.experts for i, _m in caps}
    expert = joinedload(Capability.expert)  # the page shows each expert's name and affiliation: no N+1
    rows = {c.id: c for c in db.session.scalars(select(Capability).options(
        expert.joinedload(ExpertProfile.user), expert.joinedload(ExpertProfile.affiliation)).where(
        Capability.id.in_(ids), Capability.status == ListingStatus.PUBLISHED, Capability.deleted_at.is_(None)))}
    capabilities = [Suggestion(rows[i], m) for i, m in ranked.capabilities if i in rows]
    experts = []
    for _expert_id, score, caps in ranked.experts:
        suggestions = [Suggestion(rows[i], m) for i, m in caps if i in rows]
        if suggestions:
            experts.append(ExpertSuggestion(expert=suggestions[0].listing.expert, score=score,
                                            capabilities=suggestions))
    return capabilities, experts


def warm(sender=None, keys=frozenset()) -> list[int]:
    """Receiver of ``listings_indexed``: rank the match page of the open needs these index jobs affect, so no
    viewer waits for it. A changed capability (or any change of the index versions) touches every need's
    ranking: the batch's needs first, then the most recently published, ``RANKING_WARM`` in all. Returns the
    needs ranked or found ranked; a failure is logged, never raised (the jobs are done)."""
    from ..listings.models import Need
    limit = int(current_app.config.get("RANKING_WARM", 0))
    if limit <= 0 or not sharedcache.enabled():
        return []
    if current_app.config.get("MATCHMAKER_INDEX_WORKER") == "external" and not current_app.config.get("REDIS_URL"):
        return []  # `matchmaker worker` without Redis: an in-process memo no web process would ever read
    if get_engine() is None:
        return []
    open_needs = select(Need).where(Need.status == ListingStatus.PUBLISHED, Need.deleted_at.is_(None))
    batch_ids = sorted(i for kind, i in keys if kind == "need")
    needs = list(db.session.scalars(open_needs.where(Need.id.in_(batch_ids)))) if batch_ids else []
    if len(needs) < limit:
        needs += db.session.scalars(open_needs.where(Need.id.not_in(batch_ids)).order_by(
            Need.published_at.desc(), Need.id.desc()).limit(limit - len(needs))).all()
    warmed = []
    for need in needs[:limit]:
        try:
            for k, experts_k in PAGE_RANKINGS:
                need_matches(need, k=k, experts_k=experts_k)
        except Exception:  # noqa: BLE001 — a view computes it on demand instead
            log.exception("ranking warm-up failed for need %s", need.id)
            db.session.rollback()
            break
        warmed.append(need.id)
    return warmed


listings_indexed.connect(warm, weak=False)


def clear() -> None:
    """Forget every shared entry (rankings, counts, page parts: they share one store)."""
    sharedcache.clear()
