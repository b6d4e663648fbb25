"""Coordinator moderation: the queue of submitted listings and a review page with Publish / Return.

Two coordinators may open the same listing; the first decision wins. The form carries the version the
coordinator saw, and the optimistic lock (StaleDataError) catches the race between check and commit.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from babel.dates import format_timedelta  # flask_babel's has no format=: "38秒钟" read oddly
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from ..core.access import coordinator_required
from ..core.audit import AuditEvent
from ..core.enums import HubCity, Industry, ListingStatus
from ..core.scope import coordinator_scope_of
from ..core.time import utcnow
from ..core.transaction import STAY, LostRace, commit, transaction
from ..extensions import db
from ..listings import operations as ops
from ..listings.views import KINDS, listing_url, load_listing
from ..listings.queries import moderation_queue
from .forms import PublishForm, ReturnForm

bp = Blueprint("review", __name__, url_prefix="/review")

#: waiting longer than this is highlighted in the queue
LONG_WAIT_DAYS = 3


@bp.get("/")
@coordinator_required
def queue():
    """Submitted needs and capabilities this coordinator may moderate, oldest first."""
    hub_city = request.args.get("hub_city") if request.args.get("hub_city") in HubCity.values() else None
    industry = request.args.get("industry") if request.args.get("industry") in Industry.values() else None
    now = utcnow()
    rows = []
    for slug, kind in KINDS.items():
        model = kind.model
        stmt = moderation_queue(model, current_user)
        if hub_city:
            stmt = stmt.where(model.hub_city == hub_city)
        if industry:
            stmt = stmt.where((model.industry if slug == "needs" else model.field) == industry)
        for listing in db.session.scalars(stmt):
            waited = now - (listing.submitted_at or listing.updated_at)
            rows.append({"listing": listing, "kind": kind, "waited": waited,
                         "waited_text": format_timedelta(waited, threshold=1.1, format="short", locale=get_locale()),
                         "long": waited.days >= LONG_WAIT_DAYS})
    rows.sort(key=lambda r: (r["listing"].submitted_at or r["listing"].updated_at))
    scope = coordinator_scope_of(current_user)  # the city filter offers only the cities this user moderates
    cities = [(v, label) for v, label in HubCity.choices() if scope.covers(v)]
    return render_template("review/queue.html", rows=rows, hub_city=hub_city, industry=industry, cities=cities,
                           long_wait_days=LONG_WAIT_DAYS)


def _load_for_review(kind: str, listing_id: int):
    k = KINDS[kind]
    listing = load_listing(k.model, listing_id)
    if not listing.can_moderate(current_user):
        abort(403, _("You may not moderate listings of this hub city."))
    return k, listing


def _history(listing):
    return db.session.scalars(select(AuditEvent).where(
        AuditEvent.target_type == listing.__tablename__, AuditEvent.target_id == listing.id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(20)).all()


def _render(k, listing, publish_form=None, return_form=None, status=200):
    publish_form = publish_form or PublishForm(version=listing.version)
    return_form = return_form or ReturnForm(version=listing.version)
    return render_template("review/review.html", kind=k, listing=listing, publish_form=publish_form,
                           return_form=return_form, history=_history(listing)), status


@bp.get("/<any(needs, capabilities):kind>/<int:listing_id>")
@coordinator_required
def review(kind: str, listing_id: int):
    k, listing = _load_for_review(kind, listing_id)
    return _render(k, listing)


def _conflict(k, listing_id: int):
    """The listing changed since the page was loaded: show it as it is now, with 409."""
    listing = load_listing(k.model, listing_id)
    if listing.status == ListingStatus.SUBMITTED:
        flash(_("The owner changed this listing while you were reviewing it. Nothing was decided; "
                "please look at the current version."), "warning")
    elif listing.status == ListingStatus.CLOSED:
        flash(_("This listing was closed while you were reviewing it. Nothing was decided."), "warning")
    else:
        flash(_("Someone else has already reviewed this listing. Nothing was changed; here is its current "
                "state."), "warning")
    return _render(k, listing, status=409)


#: the optimistic lock caught a decision made since the check; ``_conflict`` says what happened
DECIDED_MEANWHILE = LostRace(errors=(StaleDataError,))


def _decide(kind: str, listing_id: int, form_cls, operation, done: str):
    k, listing = _load_for_review(kind, listing_id)
    form = form_cls()
    if not form.validate_on_submit():
        forms = {"publish_form": form} if form_cls is PublishForm else {"return_form": form}
        return _render(k, listing, status=400, **forms)
    if form.version.data != str(listing.version):  # missing counts as stale: decide only on what was seen
        return _conflict(k, listing_id)
    if listing.status in (ListingStatus.PUBLISHED, ListingStatus.RETURNED):
        return _conflict(k, listing_id)  # decided by someone else since the page was loaded
    with transaction("review.review", lost=DECIDED_MEANWHILE, lost_back=STAY, abort_on=(403,)) as tx:
        operation(listing, form)
        commit()
    if tx.failed:
        return _conflict(k, listing_id)
    flash(done, "success")
    return redirect(url_for("review.queue"), code=303)


@bp.post("/<any(needs, capabilities):kind>/<int:listing_id>/publish")
@coordinator_required
def publish(kind: str, listing_id: int):
    return _decide(kind, listing_id, PublishForm,
                   lambda listing, form: ops.publish_listing(listing, current_user, form.comment.data or None),
                   _("Published. The listing is now visible and will be matched."))


@bp.post("/<any(needs, capabilities):kind>/<int:listing_id>/return")
@coordinator_required
def send_back(kind: str, listing_id: int):
    return _decide(kind, listing_id, ReturnForm,
                   lambda listing, form: ops.return_listing(listing, current_user, form.reason.data),
                   _("Returned to the owner with your reason."))


__all__ = ["bp", "listing_url"]
