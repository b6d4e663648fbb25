"""The listing workflow. Every state change goes through here and leaves an audit entry.

draft → submitted → published | returned (reason) → closed; returned listings are edited and resubmitted;
editing a published listing sends it back for review. Functions flush but never commit: the caller
(one request, one CLI command) owns the transaction.
"""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..core import audit
from ..core.enums import ListingStatus as S
from ..core.statemachine import StateMachine
from ..core.time import utcnow
from ..core.workflow import WorkflowError, after_commit
from ..extensions import db
from ..matching.text import detect_lang
from .models import Capability, Need
from .signals import listing_withdrawn

#: allowed transitions: from → to
TRANSITIONS: dict[str, set[str]] = {
    S.DRAFT: {S.SUBMITTED, S.CLOSED},
    S.SUBMITTED: {S.PUBLISHED, S.RETURNED, S.CLOSED},
    S.RETURNED: {S.SUBMITTED, S.CLOSED},
    S.PUBLISHED: {S.SUBMITTED, S.CLOSED},
    S.CLOSED: set(),
}

NEED_FIELDS = ("title", "industry", "background", "problems", "targets", "budget_min", "budget_max",
               "deadline", "hub_city", "region", "coop_modes", "visibility", "contact_name",
               "contact_phone", "contact_email")
CAPABILITY_FIELDS = ("title", "kind", "summary", "description", "field", "trl", "ip", "coop_modes",
                     "hub_city", "region")


def _fields(listing) -> tuple[str, ...]:
    return NEED_FIELDS if isinstance(listing, Need) else CAPABILITY_FIELDS


MACHINE = StateMachine(TRANSITIONS, labels=S, noun=lambda listing: listing.kind_name,
                       params=lambda listing: {"kind": listing.kind_name},
                       refusal=_l("A %(kind)s cannot go from “%(frm)s” to “%(to)s”."))


def _check(listing, to: str) -> None:
    """Refuse an illegal transition before anything on the listing is touched (no half-written row)."""
    if listing.is_deleted:
        raise WorkflowError(_("This listing was deleted."), 409)
    MACHINE.check(listing, to)


def _transition(listing, to: str, actor, comment: str | None = None) -> None:
    _check(listing, to)
    MACHINE.move(listing, to, actor, comment)
    _queue_index_job(listing)


def _queue_index_job(listing) -> None:
    """Queue an index job in this transaction (it commits or rolls back with the change); the model
    never runs in the request."""
    from flask import current_app

    from ..indexing.queue import enqueue
    from ..indexing.worker import after_enqueue_commit
    from ..matching_service import enabled
    if not enabled():
        return  # the first engine use reconciles with the database anyway
    app = current_app._get_current_object()
    enqueue(db.session, listing.kind_name, listing.id)
    after_commit(db.session(), lambda: after_enqueue_commit(app))


def _apply(listing, data: dict) -> bool:
    """Copy whitelisted fields only (no mass assignment of status, owner or ids). True if any value changed."""
    changed = False
    for name in _fields(listing):
        if name in data and getattr(listing, name) != data[name]:
            setattr(listing, name, data[name])
            changed = True
    listing.language = detect_lang(listing.matching_text())
    return changed


def create_listing(model, user, data: dict, organization=None):
    """A new draft owned by ``user`` (and their organization)."""
    if model is Need and organization is None:
        raise WorkflowError(_("Only members of an enterprise can post technology needs."), 403)
    listing = model(status=S.DRAFT, created_by_id=user.id,
                    organization_id=organization.id if organization else None)
    if model is Capability and user.expert_profile is not None:
        listing.expert_id = user.expert_profile.id
    _apply(listing, data)
    db.session.add(listing)
    db.session.flush()
    audit.record(f"{listing.kind_name}.create", actor=user, target=listing, to_state=S.DRAFT)
    return listing


def update_listing(listing, user, data: dict) -> bool:
    """Apply an edit; a published listing goes back to review. Returns False (and records nothing) when no
    value changed: re-saving an unchanged form must not take a live listing off the platform."""
    if not listing.can_edit(user):
        raise WorkflowError(_("You cannot edit this listing."), 403)
    if not _apply(listing, data):
        return False
    audit.record(f"{listing.kind_name}.edit", actor=user, target=listing)
    if listing.status == S.PUBLISHED:
        listing.submitted_at = utcnow()
        _transition(listing, S.SUBMITTED, user, comment="edited after publication")
    return True


#: what a listing must have before review (a draft may be saved without them): attribute → label
REQUIRED_FOR_REVIEW = {
    "need": {"problems": _l("Key technical problems"), "targets": _l("Targets and indicators"),
             "coop_modes": _l("Cooperation modes"), "hub_city": _l("Hub city"),
             "contact_name": _l("Contact person")},
    "capability": {"summary": _l("Summary"), "description": _l("Description"),
                   "coop_modes": _l("Cooperation modes"), "hub_city": _l("Hub city")},
}


def missing_for_review(listing) -> list[str]:
    """Labels of what the listing still lacks before it can be submitted."""
    missing = [str(label) for name, label in REQUIRED_FOR_REVIEW[listing.kind_name].items()
               if getattr(listing, name) in (None, "", [])]
    if listing.kind_name == "need" and not (listing.contact_phone or listing.contact_email):
        missing.append(str(_l("Contact phone")) + " / " + str(_l("Contact email")))
    return missing


def submit_listing(listing, user) -> None:
    if not listing.can_submit(user):
        raise WorkflowError(_("Only a draft or returned listing can be submitted, by its owner."), 403
                            if not listing.is_owned_by(user) else 409)
    missing = missing_for_review(listing)
    if missing:
        raise WorkflowError(_("Fill in before submitting: %(fields)s.", fields=", ".join(missing)), 400)
    _check(listing, S.SUBMITTED)
    listing.submitted_at = utcnow()
    listing.return_reason = None
    _transition(listing, S.SUBMITTED, user)


def publish_listing(listing, moderator, comment: str | None = None) -> None:
    if not listing.can_moderate(moderator):
        raise WorkflowError(_("You may not moderate listings of this hub city."), 403)
    if listing.is_owned_by(moderator) and not moderator.is_admin:
        raise WorkflowError(_("You cannot approve your own listing."), 403)
    _check(listing, S.PUBLISHED)
    # the first publication date is what browse, KPIs and "new needs" digests mean: a re-publication
    # after an edit keeps it (resetting it made first approvals precede "publication")
    if listing.published_at is None:
        listing.published_at = utcnow()
    listing.reviewed_by_id = moderator.id
    _transition(listing, S.PUBLISHED, moderator, comment)


def return_listing(listing, moderator, reason: str) -> None:
    reason = (reason or "").strip()
    if not reason:
        raise WorkflowError(_("A reason is required to return a listing."), 400)
    if not listing.can_moderate(moderator):
        raise WorkflowError(_("You may not moderate listings of this hub city."), 403)
    _check(listing, S.RETURNED)
    listing.return_reason = reason
    listing.reviewed_by_id = moderator.id
    _transition(listing, S.RETURNED, moderator, reason)


def close_listing(listing, user, comment: str | None = None) -> None:
    if not listing.can_close(user):
        raise WorkflowError(_("You cannot close this listing."), 403)
    _check(listing, S.CLOSED)
    listing.closed_at = utcnow()
    _transition(listing, S.CLOSED, user, comment)
    _end_open_work(listing, user)


def delete_listing(listing, user) -> None:
    """Soft delete: the row stays for the audit trail and disappears from every list and index."""
    if not listing.can_delete(user):
        raise WorkflowError(_("You cannot delete this listing."), 403)
    listing.deleted_at = utcnow()
    audit.record(f"{listing.kind_name}.delete", actor=user, target=listing, from_state=listing.status)
    _queue_index_job(listing)
    _end_open_work(listing, user)


def _end_open_work(listing, user) -> None:
    """A withdrawn listing takes its pairings not docked yet and, for a need, its live challenges with it."""
    # pairings and challenges build on listings, not the other way round: they react to the signal
    listing_withdrawn.send(listing, actor=user)
