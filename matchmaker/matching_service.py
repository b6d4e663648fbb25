"""Glue between the web app and the matching engine (``matchmaker.matching``).

The SQL database is the source of truth: the engine's indexes are reconciled with the published listings
when the engine is first used in a process (missing, corrupt, stale or other-model indexes are rebuilt),
kept current by index jobs (``matchmaker.indexing``) written with each publish/edit/close/delete and
processed in the background, and `matchmaker reindex` rebuilds them from scratch. Whoever writes index
files holds the index folder's write lock; other processes pick new versions up in `get_engine()`.
Hard filters (published, visibility, facets, never a need's own organization, its experts, experts with a
declared conflict of interest, or one person on both sides: ``matchable_capabilities`` / ``matchable_needs``)
are SQL; the engine ranks.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import and_, literal, or_, select, union
from sqlalchemy.orm import selectinload

from .core.enums import ListingStatus
from .extensions import db
from .indexing.lock import index_write_lock

log = logging.getLogger(__name__)
_engine_lock = threading.Lock()
EXTENSION_KEY = "matchmaker.engine"


def init_matching(app) -> None:
    # The engine (and its model, seconds to load) is built on first use, not at import or app start.
    from .indexing.worker import MODES
    app.extensions[EXTENSION_KEY] = None
    if app.config.get("MATCHMAKER_INDEX_WORKER", "thread") not in MODES:
        raise RuntimeError(f"MATCHMAKER_INDEX_WORKER must be one of {', '.join(MODES)}, "
                           f"not {app.config['MATCHMAKER_INDEX_WORKER']!r}")


def enabled() -> bool:
    return bool(current_app.config.get("MATCHMAKER_MATCHING", True))


def get_engine(reconcile_db: bool = True):
    """This process's engine, created and reconciled with the database on first use."""
    if not enabled():
        return None
    engine = current_app.extensions.get(EXTENSION_KEY)
    if engine is None:
        with _engine_lock:
            engine = current_app.extensions.get(EXTENSION_KEY)
            if engine is None:
                from .matching.engine import MatchEngine
                engine = MatchEngine(current_app.config["MATCHMAKER_INDEX_DIR"])
                if reconcile_db:
                    with index_write_lock(engine.index_dir):
                        engine.refresh_if_changed()  # another process may have saved while the model loaded
                        reconcile(engine)
                current_app.extensions[EXTENSION_KEY] = engine
                from .indexing.worker import start_thread_if_serving
                start_thread_if_serving(current_app._get_current_object())
    elif engine.refresh_if_changed() and engine.needs_rebuild():
        # another process saved a version this one cannot load (another model, a damaged file): rebuild
        # from the database rather than serve, and later save, an empty index
        with index_write_lock(engine.index_dir):
            engine.refresh_if_changed()
            reconcile(engine)
    return engine


def index_versions() -> tuple:
    """The versions of the match indexes this process has loaded (the page cache keys match pages on them)."""
    engine = current_app.extensions.get(EXTENSION_KEY)
    if engine is None:  # not loaded in this process yet: the first render loads it, under a key without it
        return ("unloaded",)
    engine.refresh_if_changed()  # another worker or `matchmaker reindex` may have saved a newer version
    return engine.versions()


# -- listings as engine documents ---------------------------------------------------------------

def _models():
    from .listings.models import Capability, Need
    return {"need": Need, "capability": Capability}


def listing_doc(listing):
    from .matching.engine import Doc
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


def reconcile(engine, progress: bool = False) -> dict[str, dict[str, int]]:
    """Make the index hold exactly the published listings; returns what changed per kind."""
    report = {}
    stale = set(engine.needs_rebuild())
    for kind, wanted in _published_docs().items():
        if kind in stale:
            engine.rebuild(kind, list(wanted.values()), progress=progress)
            report[kind] = {"rebuilt": len(wanted)}
            continue
        in_index = engine.doc_texts(kind)
        missing = [doc for i, doc in wanted.items() if i not in in_index]
        # edited while matching was off, or a job given up: the database's text wins
        changed = [doc for i, doc in wanted.items() if i in in_index and in_index[i] != doc.full_text]
        extra = [i for i in in_index if i not in wanted]
        if missing or changed:
            engine.upsert_many(kind, missing + changed, save=False, progress=progress)
        for doc_id in extra:
            engine.remove(kind, doc_id, save=False)
        if missing or changed or extra:
            engine.save(kind)
        report[kind] = {"added": len(missing), "updated": len(changed), "removed": len(extra)}
    engine.refresh_query_means()  # an index saved by an older version may lack them
    return report


def rebuild_from_db(progress: bool = True) -> dict:
    """`matchmaker reindex`: rebuild every kind from the database and save it atomically. Index jobs
    committed before the rows were read are covered by the rebuild and marked done."""
    from sqlalchemy.orm import Session

    from .indexing import queue
    from .matching.engine import MatchEngine
    index_dir = current_app.config["MATCHMAKER_INDEX_DIR"]
    with index_write_lock(index_dir):
        engine = current_app.extensions.get(EXTENSION_KEY) or MatchEngine(index_dir)
        with Session(db.engine, join_transaction_mode="create_savepoint") as session:
            covered = queue.pending_ids(session)  # read before the listings: their changes are visible below
        for kind, docs in _published_docs().items():
            engine.rebuild(kind, list(docs.values()), progress=progress)
        current_app.extensions[EXTENSION_KEY] = engine
    with Session(db.engine, join_transaction_mode="create_savepoint") as session:
        queue.settle(session, covered)
    return engine.status()


def sync_listings(keys: set[tuple[str, int]]) -> None:
    """Index jobs' work: make the index hold each listing as it is in the database now (published →
    embedded and added or replaced, anything else → removed). The state is read under the write lock,
    so of two workers the later writer always writes the later state."""
    engine = get_engine()  # loads and reconciles on first use; outside the lock, which it takes itself
    if engine is None:
        return
    with index_write_lock(engine.index_dir):
        engine.refresh_if_changed()
        if engine.needs_rebuild():  # an unloadable file on disk: never save the jobs' few docs over it
            reconcile(engine)
        published = _published_docs(only=keys)
        for kind in sorted({kind for kind, _ in keys}):
            docs = list(published[kind].values())
            gone = [i for k, i in keys if k == kind and i not in published[kind]]
            engine.upsert_many(kind, docs, save=False)
            removed = [i for i in gone if engine.remove(kind, i, save=False)]
            if docs or removed:
                engine.save(kind)


# -- queries used by the pages --------------------------------------------------------------------

@dataclass
class Suggestion:
    listing: object
    match: object

    @property
    def score(self) -> float:
        return self.match.score


@dataclass
class ExpertSuggestion:
    expert: object
    score: float
    capabilities: list = field(default_factory=list)  # Suggestions behind the score, best first


def capabilities_for_need(need, k: int = 10, hub_city: str | None = None, coop_mode: str | None = None,
                          field_code: str | None = None, language: str | None = None,
                          evidence: bool = True) -> list[Suggestion]:
    """Ranked published capabilities for ``need``; never one the pairing rules refuse (``matchable_capabilities``:
    the need's own organization, its experts, experts with a declared conflict of interest with it)."""
    from .listings.models import Capability
    engine = get_engine()
    if engine is None:
        return []
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
    if not allowed:
        return []
    matches = engine.search("capability", [need.matching_text()], k=k, allowed_ids=allowed, evidence=evidence)
    from .pairings.feedback import apply_feedback  # declines and contracts adjust the ranking, visibly
    matches = apply_feedback(need, matches, engine)
    return _attach(Capability, matches)


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
    from .listings.models import Capability, Need
    from .listings.queries import visible_listings
    engine = get_engine()
    if engine is None:
        return [], []
    caps = db.session.scalars(_indexable(Capability).where(_owned_by(Capability, user))).all()
    texts = [c.matching_text() for c in caps]
    if not texts and user.expert_profile is not None and user.expert_profile.bio:
        texts = [user.expert_profile.bio]
    if not texts:
        return [], []
    stmt = visible_listings(Need, user).with_only_columns(Need.id).where(matchable_needs(user))
    if published_since is not None:
        stmt = stmt.where(Need.published_at > published_since)
    allowed = db.session.scalars(stmt).all()
    if not allowed:
        return [], texts
    return _attach(Need, engine.search("need", texts, k=k, allowed_ids=allowed)), texts


def similar_needs(text: str, user, exclude_id: int | None = None, k: int = 5) -> list[Suggestion]:
    """Published needs the user may see that resemble ``text`` (the posting assistant's duplicates)."""
    from .listings.models import Need
    from .listings.queries import visible_listings
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
    pages' "related across languages". No score floor: scores are relative to the pool (in a small pool a
    good match can score below 0), so the section always shows the engine's best k."""
    engine = get_engine()
    text = (text or "").strip()[:MAX_RELATED_QUERY]
    allowed = list(allowed_ids)
    if engine is None or not text or not allowed:
        return []
    kind = "need" if model.__name__ == "Need" else "capability"
    matches = engine.search(kind, [text], k=k, allowed_ids=allowed, evidence=False)
    return [s.listing for s in _attach(model, matches)]


# -- who may be matched with whom -----------------------------------------------------------------
# The pairing rules (pairings.assignment.build_candidates "same_org"/"conflict", pairings.operations.
# check_pairable) as SQL, so that nothing is suggested that a pairing would refuse: a need is never matched
# with a capability of its own organization, nor with an expert who works for that organization (affiliation)
# or declared a conflict of interest with it, nor where one person could answer for both sides.
# tests/test_matching_app.py checks both sides agree.

def experts_excluded_for(organization_id: int):
    """SELECT of the expert profile ids that may not be matched or paired with this organization's needs."""
    from .accounts.models import ExpertProfile
    from .pairings.models import ConflictOfInterest
    return union(
        select(ExpertProfile.id).where(ExpertProfile.affiliation_id == organization_id),
        select(ConflictOfInterest.expert_id).where(ConflictOfInterest.organization_id == organization_id))


def organizations_excluded_for(expert_id: int):
    """SELECT of the organization ids whose needs this expert may not be matched or paired with."""
    from .accounts.models import ExpertProfile
    from .pairings.models import ConflictOfInterest
    return union(
        select(ExpertProfile.affiliation_id).where(ExpertProfile.id == expert_id,
                                                   ExpertProfile.affiliation_id.is_not(None)),
        select(ConflictOfInterest.organization_id).where(ConflictOfInterest.expert_id == expert_id))


def excluded_expert_ids(need) -> tuple[int, ...]:
    """The experts ``matchable_capabilities(need)`` leaves out (sorted): part of the match memo's key."""
    if need.organization_id is None:
        return ()
    return tuple(sorted(db.session.scalars(experts_excluded_for(need.organization_id))))


def need_side_user_ids(need):
    """SELECT of everyone who may answer for ``need``: its poster and its organization's members
    (``pairings.operations.need_side_people``)."""
    from .accounts.models import Membership
    poster = select(literal(need.created_by_id or 0).label("user_id"))
    if need.organization_id is None:
        return poster
    return union(poster, select(Membership.user_id).where(Membership.organization_id == need.organization_id))


def matchable_capabilities(need):
    """SQL condition on ``Capability``: it may be matched with (and proposed for) ``need``."""
    from .accounts.models import ExpertProfile, Membership
    from .listings.models import Capability
    people = need_side_user_ids(need)
    # nobody may answer for both sides: not the poster of the capability, its expert, or a member of its
    # organization (pairings.operations.check_pairable, "same person")
    conds = [or_(Capability.created_by_id.is_(None), Capability.created_by_id.not_in(people)),
             or_(Capability.expert_id.is_(None), Capability.expert_id.not_in(
                 select(ExpertProfile.id).where(ExpertProfile.user_id.in_(people)))),
             or_(Capability.organization_id.is_(None), Capability.organization_id.not_in(
                 select(Membership.organization_id).where(Membership.user_id.in_(people))))]
    if need.organization_id is not None:
        # NOT IN is NULL (false) for a NULL column: capabilities without an organization or expert stay in
        conds += [or_(Capability.organization_id.is_(None), Capability.organization_id != need.organization_id),
                  or_(Capability.expert_id.is_(None),
                      Capability.expert_id.not_in(experts_excluded_for(need.organization_id)))]
    return and_(*conds)


def matchable_needs(user):
    """SQL condition on ``Need``: it may be suggested to ``user`` (as a member of their organizations and as
    the expert they are)."""
    from .accounts.models import Membership
    from .listings.models import Need
    # the user and the members of their organizations answer for the user's capabilities: a need whose firm
    # has one of them as a member (or that one of them posted) would pair someone with themselves
    people = union(select(literal(user.id).label("user_id")),
                   select(Membership.user_id).where(Membership.organization_id.in_(user.organization_ids or [0])))
    conds = [Need.organization_id.not_in(select(Membership.organization_id).where(Membership.user_id.in_(people)))]
    if user.expert_profile is not None and user.expert_profile.id is not None:
        conds.append(Need.organization_id.not_in(organizations_excluded_for(user.expert_profile.id)))
    return and_(or_(Need.created_by_id.is_(None), Need.created_by_id.not_in(people)),
                or_(Need.organization_id.is_(None), and_(*conds)))


def _owned_by(model, user):
    conds = [model.created_by_id == user.id]
    if user.expert_profile is not None:
        conds.append(model.expert_id == user.expert_profile.id)
    return or_(*conds)


def _attach(model, matches) -> list[Suggestion]:
    stmt = select(model).where(model.id.in_([m.doc_id for m in matches]))
    if model.__name__ == "Capability":  # every page names the expert behind a capability: load them with it
        from .accounts.models import ExpertProfile
        stmt = stmt.options(selectinload(model.expert).selectinload(ExpertProfile.user))
    rows = {r.id: r for r in db.session.scalars(stmt).unique()}
    return [Suggestion(rows[m.doc_id], m) for m in matches if m.doc_id in rows]
