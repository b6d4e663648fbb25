"""Per-process memo of the match page's ranking, so a need's matches are computed once per state, not per view.

Ranking a need encodes its text with the embedding model and builds sentence-pair evidence: tens to hundreds
of milliseconds of CPU, the same result for every viewer until something it depends on changes. The key holds
everything the ranking reads: the need (id, version, updated_at), the index versions of both kinds (feedback
reads need vectors), the filters and k, a token of the pairing records that feed back into the ranking and of the
memberships the pairing rules read, and the experts the pairing rules exclude for the need (affiliation,
declared conflicts: ``pairings.eligibility.excluded_expert_ids``), and whether the confidence floor is on.
Only ids, scores and evidence are kept; rows are loaded fresh from the database on every request, and a
capability unpublished after the ranking (before its index update) is dropped on the way out.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..core.enums import ListingStatus
from ..extensions import db
from ..matching_service import get_engine
from ..pairings.eligibility import excluded_expert_ids
from .queries import ExpertSuggestion, Suggestion, capabilities_for_need, experts_for_need, floor_on

MAX_ENTRIES = 512


@dataclass(frozen=True)
class RankedNeed:
    """A need's ranking without ORM rows: (capability id, match) pairs and expert groups."""

    capabilities: tuple
    experts: tuple  # (expert id, score, ((capability id, match), ...))


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
            return None

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_cache = _LRU(MAX_ENTRIES)


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


def _key(need, k: int, experts_k: int, filters: dict, engine) -> tuple:
    versions = tuple(sorted((kind, info["version"]) for kind, info in engine.status().items()))
    return (need.id, need.version, need.updated_at, versions, k, experts_k, tuple(sorted(filters.items())),
            _pairings_token(), excluded_expert_ids(need), floor_on())


def _rank(need, k: int, experts_k: int, filters: dict) -> RankedNeed:
    capabilities = capabilities_for_need(need, k=k, **filters)
    experts = experts_for_need(need, k=experts_k) if experts_k else []
    return RankedNeed(
        capabilities=tuple((s.listing.id, s.match) for s in capabilities),
        experts=tuple((e.expert.id, e.score, tuple((s.listing.id, s.match) for s in e.capabilities))
                      for e in experts))


def need_matches(need, k: int, experts_k: int = 0, filters: dict | None = None):
    """(capability suggestions, expert suggestions) for ``need``, as suggestions.queries returns them."""
    from ..accounts.models import ExpertProfile
    from ..listings.models import Capability

    filters = {name: value for name, value in (filters or {}).items() if value}
    engine = get_engine()
    if engine is None:
        return [], []
    key = _key(need, k, experts_k, filters, engine)
    ranked = _cache.get(key)
    if ranked is None:
        ranked = _rank(need, k, experts_k, filters)
        _cache.put(key, ranked)
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


def clear() -> None:
    _cache.clear()
