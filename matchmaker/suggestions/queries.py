"""The pages' match queries: the engine ranks, SQL filters (published, visibility, facets, and the pairing
rules of ``pairings.eligibility``), so nothing is suggested that a pairing would refuse. Every query drops
results below the confidence floor (band "weak", ``matching.confidence``): no surface presents them as matches."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app, g
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from ..core.enums import ListingStatus
from ..extensions import db
from ..indexing.documents import _indexable
from ..matching.confidence import BANDS
from ..matching_service import get_engine
from ..pairings.eligibility import matchable_capabilities, matchable_needs


@dataclass
class Suggestion:
    listing: object
    match: object
    #: for a need suggested to an expert: the expert's capability it was found for (None: their bio)
    via: object = None

    @property
    def score(self) -> float:
        return self.match.score

    @property
    def confidence(self) -> float:
        return self.match.confidence

    @property
    def band(self) -> str:
        return self.match.band


@dataclass
class ExpertSuggestion:
    expert: object
    score: float
    capabilities: list = field(default_factory=list)  # Suggestions behind the score, best first

    @property
    def confidence(self) -> float:
        """The best confidence among the expert's capabilities (and ``band`` its band)."""
        return max((s.confidence for s in self.capabilities), default=0.0)

    @property
    def band(self) -> str:
        return min((s.band for s in self.capabilities), key=BANDS.index, default="weak")  # BANDS: best first


def floor_on() -> bool:
    """Whether results below the confidence floor are left out (``MATCHMAKER_MATCH_FLOOR``, on unless a
    test's tiny index switches it off) and "no good match yet" is a state the pages show."""
    return bool(current_app.config.get("MATCHMAKER_MATCH_FLOOR", True))


def above_floor(matches) -> list:
    """``matches`` (engine Matches or Suggestions) without those below the confidence floor."""
    return [m for m in matches if m.band != "weak"] if floor_on() else list(matches)


def has_strong(suggestions) -> bool:
    """Whether any suggestion is a strong match: otherwise the pages say "no good match yet"."""
    return any(s.band == "strong" for s in suggestions)


def capabilities_for_need(need, k: int = 10, hub_city: str | None = None, coop_mode: str | None = None,
                          field_code: str | None = None, language: str | None = None,
                          evidence: bool = True) -> list[Suggestion]:
    """Ranked published capabilities for ``need``; never one the pairing rules refuse (``matchable_capabilities``:
    the need's own organization, its experts, experts with a declared conflict of interest with it)."""
    from ..listings.models import Capability
    engine = get_engine()
    if engine is None:
        return []
    allowed = _capability_pool(need, hub_city, coop_mode, field_code, language)
    if not allowed:
        return []
    matches = engine.search("capability", [need.matching_text()], k=k, allowed_ids=allowed, evidence=evidence)
    from ..pairings.feedback import apply_feedback  # declines and contracts adjust the ranking, visibly
    matches = apply_feedback(need, matches, engine)
    return _attach(Capability, above_floor(matches))


def match_for_pair(need, capability):
    """The engine's Match (score, components, confidence, band, evidence) of ``capability`` for ``need``,
    ranked among the capabilities the match page would rank for the need, with the feedback adjustment; for
    a pairing proposed by hand (a firm's, an expert's) or one whose snapshot predates the confidence. None when
    matching is off or the index does not hold the capability."""
    engine = get_engine()
    if engine is None or capability is None:
        return None
    text = need.matching_text()
    # several proposals for one need in one request (bulk assignment) encode and rank its text once
    memo = g.setdefault("need_rankings", {})
    if text not in memo:
        vectors = engine.embedder.encode_queries([text])
        memo[text] = (vectors, engine.ranking("capability", text, _capability_pool(need), query_vectors=vectors))
    vectors, ranked = memo[text]
    if all(m.doc_id != capability.id for m in ranked):
        ranked = None   # not in the pool (another hub city's filter …): explain ranks it among the pool itself
    match = engine.explain("capability", text, capability.id, allowed_ids=_capability_pool(need),
                           query_vectors=vectors, ranked=ranked)
    if match is None:
        return None
    from ..pairings.feedback import apply_feedback
    return apply_feedback(need, [match], engine)[0]


def _capability_pool(need, hub_city=None, coop_mode=None, field_code=None, language=None) -> list[int]:
    """Ids of the published capabilities the pairing rules allow for ``need``, filtered by the page's facets."""
    from ..listings.models import Capability
    stmt = select(Capability.id).where(Capability.status == ListingStatus.PUBLISHED,
                                        Capability.deleted_at.is_(None), matchable_capabilities(need))
    if hub_city:
        stmt = stmt.where(Capability.hub_city == hub_city)
    if field_code:
        stmt = stmt.where(Capability.field == field_code)
    if language:
        stmt = stmt.where(Capability.language == language)
    allowed = db.session.scalars(stmt).all()
    if coop_mode:
        modes = dict(db.session.execute(select(Capability.id, Capability.coop_modes)
                                        .where(Capability.id.in_(allowed))).all())
        allowed = [i for i in allowed if coop_mode in (modes.get(i) or [])]
    return allowed


def experts_for_need(need, k: int = 5, pool: int = 60) -> list[ExpertSuggestion]:
    """Experts ranked from all their matching capabilities (best two averaged, as for profiles); built on
    ``capabilities_for_need``, so never an expert the pairing rules refuse for this need."""
    by_expert: dict[int, list[Suggestion]] = {}
    for s in capabilities_for_need(need, k=pool, evidence=False):  # evidence is shown per capability
        if s.listing.expert_id is not None:
            by_expert.setdefault(s.listing.expert_id, []).append(s)
    ranked = []
    for suggestions in by_expert.values():
        top = sorted(suggestions, key=lambda s: -s.score)
        score = sum(s.score for s in top[:2]) / len(top[:2])
        ranked.append(ExpertSuggestion(expert=top[0].listing.expert, score=score, capabilities=top))
    return sorted(ranked, key=lambda e: -e.score)[:k]


def needs_for_user(user, k: int = 10, published_since=None) -> tuple[list[Suggestion], list[str]]:
    """Needs suggested for an expert (or institute member): the profile is all their published
    capabilities, falling back to the expert bio. Returns the suggestions and the profile texts used.
    Never needs of the user's organizations, of their expert affiliation or of organizations they declared a
    conflict of interest with (``matchable_needs``). ``published_since``: only needs published after it
    (the digest ranks the new ones, not the best of all time filtered afterwards)."""
    from ..listings.models import Capability, Need
    from ..listings.queries import visible_listings
    engine = get_engine()
    if engine is None:
        return [], []
    caps = db.session.scalars(_indexable(Capability).where(_owned_by(Capability, user))).all()
    texts = [c.matching_text() for c in caps]
    if not texts and user.expert_profile is not None and user.expert_profile.bio:
        texts = [user.expert_profile.bio]
    if not texts:
        return [], []
    from ..pairings.feedback import apply_dismissals
    from ..pairings.models import NeedDismissal
    stmt = visible_listings(Need, user).with_only_columns(Need.id).where(
        matchable_needs(user),  # and never a need they marked "not for me"
        Need.id.not_in(select(NeedDismissal.need_id).where(NeedDismissal.user_id == user.id)))
    if published_since is not None:
        stmt = stmt.where(Need.published_at > published_since)
    allowed = db.session.scalars(stmt).all()
    if not allowed:
        return [], texts
    matches = apply_dismissals(user, engine.search("need", texts, k=k, allowed_ids=allowed), engine)
    suggestions = _attach(Need, above_floor(matches))
    for s in suggestions:  # which of their capabilities the need was found for ("interested" pairs it)
        index = s.match.evidence.query_text_index if s.match.evidence is not None else None
        s.via = caps[index] if index is not None and index < len(caps) else None
    return suggestions, texts


def similar_needs(text: str, user, exclude_id: int | None = None, k: int = 5) -> list[Suggestion]:
    """Published needs the user may see that resemble ``text`` (the posting assistant's duplicates)."""
    from ..listings.models import Need
    from ..listings.queries import visible_listings
    engine = get_engine()
    if engine is None or not (text or "").strip():
        return []
    allowed = [i for i in db.session.scalars(visible_listings(Need, user).with_only_columns(Need.id))
               if i != exclude_id]
    if not allowed:
        return []
    return _attach(Need, engine.search("need", [text], k=k, allowed_ids=allowed))


#: longest search-box text handed to the engine (embedding time grows with it; a query is a few words)
MAX_RELATED_QUERY = 200


def related_listings(model, text: str, allowed_ids, k: int = 10) -> list:
    """Listings of ``model`` among ``allowed_ids`` (the caller's visibility and facet filters) that the
    engine ranks for the free text ``text``, in any language, best first, without evidence: the browse
    pages' "related across languages". Only results above the confidence floor (the confidence, unlike the
    score, does not depend on the pool): nothing rather than unrelated padding."""
    engine = get_engine()
    text = (text or "").strip()[:MAX_RELATED_QUERY]
    allowed = list(allowed_ids)
    if engine is None or not text or not allowed:
        return []
    kind = "need" if model.__name__ == "Need" else "capability"
    matches = engine.search(kind, [text], k=k, allowed_ids=allowed, evidence=False)
    return [s.listing for s in _attach(model, above_floor(matches))]


def _owned_by(model, user):
    conds = [model.created_by_id == user.id]
    if user.expert_profile is not None:
        conds.append(model.expert_id == user.expert_profile.id)
    return or_(*conds)


def _attach(model, matches) -> list[Suggestion]:
    stmt = select(model).where(model.id.in_([m.doc_id for m in matches]))
    if model.__name__ == "Capability":  # every page names the expert behind a capability: load them with it
        from ..accounts.models import ExpertProfile
        stmt = stmt.options(selectinload(model.expert).selectinload(ExpertProfile.user))
    rows = {r.id: r for r in db.session.scalars(stmt).unique()}
    return [Suggestion(rows[m.doc_id], m) for m in matches if m.doc_id in rows]
