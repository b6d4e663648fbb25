""""No good match yet" as a state of a need: asking the hub city's coordinators, and telling the firm and
those coordinators once when a strong match for it is published (``Need.strong_match_notified_at``)."""
from __future__ import annotations

from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from ..core import audit
from ..core.enums import ListingStatus
from ..core.time import utcnow
from ..extensions import db
from ..indexing.signals import listings_indexed
from ..matching_service import get_engine
from .queries import capabilities_for_need

#: needs the engine ranks for a newly indexed capability that are checked for a first strong match
NEEDS_PER_CAPABILITY = 10
#: capabilities ranked per checked need: a strong match outside them would not be shown first anyway
CAPABILITIES_PER_NEED = 10
#: a firm's request for help reaches the coordinators at most once in this time
ASK_AGAIN_AFTER = timedelta(days=7)


def hub_coordinators(hub_city: str | None) -> list:
    """Active coordinators whose scope covers ``hub_city`` (scoped to it, or unscoped)."""
    from ..accounts.queries import coordinators
    return [u for u in coordinators() if u.active and u.coordinator_scope.covers(hub_city)]


def firm_users(need) -> list:
    """Who speaks for the need: its poster and the members of its organization."""
    from ..accounts.models import Membership, User
    users = [need.created_by] if need.created_by is not None else []
    if need.organization_id is not None:
        users += db.session.scalars(select(User).join(Membership, Membership.user_id == User.id).where(
            Membership.organization_id == need.organization_id).order_by(User.id)).all()
    return users


def can_ask_coordinators(need, user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and need.is_published and need.is_owned_by(user)


def asked_recently(need) -> bool:
    """Whether the coordinators were asked about this need within ``ASK_AGAIN_AFTER`` (once is enough)."""
    from ..core.audit import AuditEvent
    return db.session.scalar(select(AuditEvent.id).where(
        AuditEvent.action == "need.ask_coordinators", AuditEvent.target_type == "needs",
        AuditEvent.target_id == need.id, AuditEvent.created_at > utcnow() - ASK_AGAIN_AFTER).limit(1)) is not None


def ask_coordinators(need, user) -> int:
    """The firm asks its hub city's coordinators to look for a match by hand; returns how many were told."""
    from ..notifications.operations import notify
    notes = notify(hub_coordinators(need.hub_city), "need.no_match",
                   _l("No good match yet: %(title)s", title=need.title),
                   _l("The enterprise asks the hub city's coordinators to help find a partner for this need: "
                      "the matching engine found no strong match."),
                   link=f"/needs/{need.id}")
    audit.record("need.ask_coordinators", actor=user, target=need, comment=f"{len(notes)} coordinators")
    db.session.flush()
    return len(notes)


def notify_first_strong_matches(sender=None, keys=frozenset()) -> list[int]:
    """Receiver of ``listings_indexed``: for each open need that had no strong match and now has one among
    the newly indexed capabilities, tell the firm and the hub city's coordinators, once. Returns the needs."""
    from ..listings.models import Capability, Need
    cap_ids = {i for kind, i in keys if kind == "capability"}
    engine = get_engine()
    if not cap_ids or engine is None:
        return []
    caps = db.session.scalars(select(Capability).where(
        Capability.id.in_(cap_ids), Capability.status == ListingStatus.PUBLISHED,
        Capability.deleted_at.is_(None))).all()
    open_ids = db.session.scalars(select(Need.id).where(
        Need.status == ListingStatus.PUBLISHED, Need.deleted_at.is_(None),
        Need.strong_match_notified_at.is_(None))).all()
    if not caps or not open_ids:
        return []
    need_ids = {m.doc_id for c in caps for m in engine.search(
        "need", [c.matching_text()], k=NEEDS_PER_CAPABILITY, allowed_ids=open_ids, evidence=False)}
    first_strong = {}
    for need in db.session.scalars(select(Need).where(Need.id.in_(need_ids)).order_by(Need.id)):
        strong = [s for s in capabilities_for_need(need, k=CAPABILITIES_PER_NEED, evidence=False)
                  if s.band == "strong"]
        # every strong match is new: before these capabilities the need had none
        if strong and all(s.listing.id in cap_ids for s in strong):
            first_strong[need.id] = strong[0].listing.id
    # the ranking above only read: end that read before writing, so the claims start a short write of their
    # own (on SQLite a read transaction that later writes fails at once if a page committed meanwhile)
    db.session.commit()
    told = []
    for need_id, capability_id in first_strong.items():
        # claimed by one UPDATE (only while unset): two workers never both tell; the need's version and
        # updated_at stay, as this is no edit of the need
        claimed = db.session.execute(update(Need).where(
            Need.id == need_id, Need.strong_match_notified_at.is_(None)).values(
            strong_match_notified_at=utcnow(), updated_at=Need.updated_at)
            .execution_options(synchronize_session=False)).rowcount
        if claimed:
            _tell(db.session.get(Need, need_id), db.session.get(Capability, capability_id))
            told.append(need_id)
    return told


def _tell(need, capability) -> None:
    from ..notifications.operations import notify
    notify(firm_users(need) + hub_coordinators(need.hub_city), "need.strong_match",
           _l("A strong match was published: %(title)s", title=need.title),
           _l("“%(capability)s” was just published and is a strong match for this need, which had none so far.",
              capability=capability.title),
           link=f"/needs/{need.id}/matches")
    audit.record("need.strong_match_notified", target=need, comment=f"capability {capability.id}")


listings_indexed.connect(notify_first_strong_matches, weak=False)
