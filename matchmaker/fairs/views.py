"""Docking fair pages: list, fair page (register, request, answer, my schedule), coordinator management,
schedule grid and exports. Views are thin: ``operations`` decides, each request commits once."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import or_, select

from ..accounts.models import Organization
from ..core.access import MAX_ID, coordinator_required
from ..core.enums import ListingStatus
from ..core.time import utcnow
from ..core.transaction import LostRace, commit, transaction
from ..extensions import db
from ..listings.models import Capability, Need
from . import exports
from . import operations as ops
from .forms import FairForm, from_utc
from .models import SESSION_END, SESSION_START, Fair, FairStatus, Meeting, MeetingRequest, RequestStatus

bp = Blueprint("fairs", __name__, url_prefix="/fairs")


@bp.app_template_filter("fair_label")
def fair_label(value, enum_name: str):
    from . import models
    return getattr(models, enum_name).label_of(value)


def reason_label(code):
    from flask_babel import gettext
    texts = {
        "participant_busy": gettext("A participant has no free slot left in common with the other side."),
        "grid_full": gettext("Every slot and table is taken."),
        "no_slots": gettext("The fair has no meeting slot."),
        "same_person": gettext("Both sides are the same person."),
    }
    return texts.get(code, code or "")


def _int(value) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if 0 < n <= MAX_ID else None


def load_fair(fair_id: int) -> Fair:
    if not 0 < fair_id <= MAX_ID:
        abort(404)
    fair = db.session.get(Fair, fair_id)
    if fair is None or not fair.can_view(current_user):
        abort(404)
    return fair


def load_managed(fair_id: int) -> Fair:
    fair = load_fair(fair_id)
    if not fair.can_manage(current_user):
        abort(403, _("You may not manage this fair."))
    return fair


#: operations flush inside, so a lost race can surface during the operation as well as at the commit
FAIR_RACE = LostRace(stale=_l("Someone else changed this in the meantime. Nothing was saved; please reload."),
                     duplicate=_l("This conflicts with existing data (e.g. a duplicate). Nothing was saved."),
                     abort=True)

#: a refused operation answers with its status and reason, a lost race with 409
fair_action = transaction(lost=FAIR_RACE)


# --- list and fair page --------------------------------------------------------------------------------------

@bp.get("")
def index():
    stmt = select(Fair).order_by(Fair.starts_at.desc())
    fairs = [f for f in db.session.scalars(stmt).all() if f.can_view(current_user)]
    now = utcnow()
    upcoming = [f for f in fairs if f.ends_at >= now]
    past = [f for f in fairs if f.ends_at < now]
    return render_template("fairs/index.html", upcoming=sorted(upcoming, key=lambda f: f.starts_at), past=past,
                           may_create=getattr(current_user, "is_coordinator", False))


def _mine(model, user):
    if not getattr(user, "is_authenticated", False):
        return []
    conds = [model.created_by_id == user.id]
    if user.organization_ids:
        conds.append(model.organization_id.in_(user.organization_ids))
    if model is Capability and user.expert_profile is not None:
        conds.append(Capability.expert_id == user.expert_profile.id)
    return db.session.scalars(select(model).where(or_(*conds), model.status == ListingStatus.PUBLISHED,
                                                  model.deleted_at.is_(None)).order_by(model.id)).all()


@bp.get("/<int:fair_id>")
def detail(fair_id: int):
    fair = load_fair(fair_id)
    regs = ops.registrations(fair)
    reg_needs = [r.need for r in regs if r.need_id is not None and r.need.can_view(current_user)]
    reg_caps = [r.capability for r in regs if r.capability_id is not None and r.capability.can_view(current_user)]
    ctx = dict(fair=fair, reg_needs=reg_needs, reg_caps=reg_caps, now=utcnow(),
               can_manage=fair.can_manage(current_user), reason_label=reason_label,
               session_hours=(SESSION_START.strftime("%H:%M"), SESSION_END.strftime("%H:%M")))
    if current_user.is_authenticated:
        my_needs, my_caps = _mine(Need, current_user), _mine(Capability, current_user)
        reg_ids = {("need", r.need_id) for r in regs} | {("capability", r.capability_id) for r in regs}
        my_need_ids, my_cap_ids = {n.id for n in my_needs}, {c.id for c in my_caps}
        reqs = db.session.scalars(select(MeetingRequest).where(
            MeetingRequest.fair_id == fair.id,
            or_(MeetingRequest.need_id.in_(my_need_ids or [0]),
                MeetingRequest.capability_id.in_(my_cap_ids or [0]))).order_by(MeetingRequest.id)).all()
        mine_side = lambda r: "need" if r.need_id in my_need_ids else "capability"  # noqa: E731
        ctx.update(
            my_unregistered=[x for x in my_needs if ("need", x.id) not in reg_ids]
            + [x for x in my_caps if ("capability", x.id) not in reg_ids],
            my_reg_needs=[n for n in my_needs if ("need", n.id) in reg_ids],
            my_reg_caps=[c for c in my_caps if ("capability", c.id) in reg_ids],
            other_caps=[c for c in reg_caps if c.id not in my_cap_ids],
            other_needs=[n for n in reg_needs if n.id not in my_need_ids],
            outgoing=[r for r in reqs if r.requested_by_side == mine_side(r)],
            incoming=[r for r in reqs if r.requested_by_side != mine_side(r)],
            my_meetings=ops.meetings_of_user(fair, current_user),
        )
    return render_template("fairs/detail.html", **ctx)


# --- coordinator management ------------------------------------------------------------------------------------

def _fair_form(fair=None) -> FairForm:
    form = FairForm(obj=None)
    orgs = db.session.scalars(select(Organization).order_by(Organization.name)).all()
    form.organizer_id.choices = [(0, "—")] + [(o.id, o.name) for o in orgs]
    if fair is not None and request.method == "GET":
        for name in ("title", "description", "mode", "place", "video_url", "slot_minutes", "tables"):
            getattr(form, name).data = getattr(fair, name)
        form.hub_city.data = fair.hub_city or ""
        form.organizer_id.data = fair.organizer_id or 0
        for name in ("starts_at", "ends_at", "registration_deadline"):
            getattr(form, name).data = from_utc(getattr(fair, name))
    return form


@bp.route("/new", methods=["GET", "POST"])
@coordinator_required
@fair_action
def new():
    form = _fair_form()
    if form.validate_on_submit():
        with transaction(abort_on=(403,)) as tx:  # refused: the form again with the reason
            fair = ops.create_fair(current_user, form.data_for_ops())
        if tx.failed:
            return render_template("fairs/form.html", form=form, fair=None), 400
        commit()
        flash(_("Fair created as a draft. Open it when it is ready for registration."), "success")
        return redirect(url_for("fairs.detail", fair_id=fair.id), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template("fairs/form.html", form=form, fair=None), status


@bp.route("/<int:fair_id>/edit", methods=["GET", "POST"])
@coordinator_required
@fair_action
def edit(fair_id: int):
    fair = load_managed(fair_id)
    form = _fair_form(fair)
    if form.validate_on_submit():
        with transaction(abort_on=(403,)) as tx:
            ops.update_fair(fair, current_user, form.data_for_ops())
        if tx.failed:
            return render_template("fairs/form.html", form=form, fair=fair), 400
        commit()
        flash(_("Fair saved."), "success")
        return redirect(url_for("fairs.detail", fair_id=fair.id), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template("fairs/form.html", form=form, fair=fair), status


@bp.post("/<int:fair_id>/<any(open, close, held):action>")
@coordinator_required
@fair_action
def set_status(fair_id: int, action: str):
    fair = load_managed(fair_id)
    {"open": ops.open_fair, "close": ops.close_fair, "held": ops.mark_held}[action](fair, current_user)
    commit()
    flash(_("The fair is now “%(status)s”.", status=FairStatus.label_of(fair.status)), "success")
    return redirect(url_for("fairs.detail", fair_id=fair.id), code=303)


@bp.post("/<int:fair_id>/schedule")
@coordinator_required
@fair_action
def run_schedule(fair_id: int):
    fair = load_managed(fair_id)
    result = ops.run_scheduler(fair, current_user)
    commit()
    flash(_("%(n)s meetings scheduled, %(m)s left out.", n=result.count, m=len(result.unscheduled)), "success")
    return redirect(url_for("fairs.schedule", fair_id=fair.id), code=303)


@bp.post("/<int:fair_id>/schedule/clear")
@coordinator_required
@fair_action
def clear_schedule(fair_id: int):
    fair = load_managed(fair_id)
    n = ops.clear_schedule(fair, current_user)
    commit()
    flash(_("%(n)s meetings removed from the schedule.", n=n), "success")
    return redirect(url_for("fairs.schedule", fair_id=fair.id), code=303)


@bp.post("/<int:fair_id>/meetings/<int:meeting_id>/lock")
@coordinator_required
@fair_action
def lock(fair_id: int, meeting_id: int):
    fair = load_managed(fair_id)
    meeting = db.session.get(Meeting, meeting_id) if meeting_id <= MAX_ID else None
    if meeting is None or meeting.fair_id != fair.id:
        abort(404)
    ops.set_locked(meeting, current_user, request.form.get("locked") == "1")
    commit()
    return redirect(url_for("fairs.schedule", fair_id=fair.id), code=303)


@bp.get("/<int:fair_id>/schedule")
@coordinator_required
def schedule(fair_id: int):
    fair = load_managed(fair_id)
    meetings = ops.meetings(fair)
    grid = {(m.slot, m.table_no): m for m in meetings}
    rows = sorted(set(fair.meeting_slots) | {m.slot for m in meetings})  # no empty rows for the nights
    left = db.session.scalars(select(MeetingRequest).where(
        MeetingRequest.fair_id == fair.id, MeetingRequest.status == RequestStatus.ACCEPTED)).all()
    return render_template("fairs/schedule.html", fair=fair, grid=grid, meetings=meetings, left=left, rows=rows,
                           now=utcnow(), reason_label=reason_label, person=ops.capability_person)


# --- participants ------------------------------------------------------------------------------------------

@bp.post("/<int:fair_id>/register")
@login_required
@fair_action
def register(fair_id: int):
    fair = load_fair(fair_id)
    kind, _sep, ident = (request.form.get("listing") or "").partition(":")
    model = {"need": Need, "capability": Capability}.get(kind)
    listing_id = _int(ident)
    if model is None or listing_id is None:
        abort(400, _("Choose one of your published listings to register."))
    listing = db.session.get(model, listing_id)
    if listing is None or not listing.can_view(current_user):
        abort(404)
    ops.register_listing(fair, listing, current_user)
    commit()
    flash(_("“%(title)s” is registered for the fair.", title=listing.title), "success")
    return redirect(url_for("fairs.detail", fair_id=fair.id), code=303)


@bp.post("/<int:fair_id>/requests")
@login_required
@fair_action
def request_meeting(fair_id: int):
    fair = load_fair(fair_id)
    need_id, cap_id = _int(request.form.get("need_id")), _int(request.form.get("capability_id"))
    if need_id is None or cap_id is None:
        abort(400, _("Choose a need and a capability."))
    need, cap = db.session.get(Need, need_id), db.session.get(Capability, cap_id)
    if need is None or cap is None or not need.can_view(current_user) or not cap.can_view(current_user):
        abort(404)
    ops.request_meeting(fair, need, cap, current_user, request.form.get("message", ""))
    commit()
    flash(_("Meeting requested. You will be notified of the answer."), "success")
    return redirect(url_for("fairs.detail", fair_id=fair.id), code=303)


@bp.post("/<int:fair_id>/requests/<int:request_id>/<any(accept, decline):answer>")
@login_required
@fair_action
def answer(fair_id: int, request_id: int, answer: str):
    fair = load_fair(fair_id)
    req = db.session.get(MeetingRequest, request_id) if request_id <= MAX_ID else None
    if req is None or req.fair_id != fair.id:
        abort(404)
    mine = ops._side_owned(req.need, current_user) or ops._side_owned(req.capability, current_user)
    if not mine and not fair.can_manage(current_user):
        abort(404)
    (ops.accept_request if answer == "accept" else ops.decline_request)(req, current_user)
    commit()
    flash(_("Meeting request accepted.") if answer == "accept" else _("Meeting request declined."), "success")
    return redirect(url_for("fairs.detail", fair_id=fair.id), code=303)


# --- exports ---------------------------------------------------------------------------------------------

def _download(body: bytes, mimetype: str, filename: str) -> Response:
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.get("/<int:fair_id>/schedule.csv")
@coordinator_required
def schedule_csv(fair_id: int):
    fair = load_managed(fair_id)
    return _download(exports.schedule_csv(fair, ops.meetings(fair)), "text/csv; charset=utf-8",
                     exports.safe_filename(f"fair-{fair.id}-schedule", "csv"))


@bp.get("/<int:fair_id>/schedule.ics")
@coordinator_required
def schedule_ics(fair_id: int):
    fair = load_managed(fair_id)
    return _download(exports.calendar(fair, ops.meetings(fair), request.host), "text/calendar; charset=utf-8",
                     exports.safe_filename(f"fair-{fair.id}-schedule", "ics"))


@bp.get("/<int:fair_id>/my.ics")
@login_required
def my_ics(fair_id: int):
    fair = load_fair(fair_id)
    meetings = ops.meetings_of_user(fair, current_user)
    return _download(exports.calendar(fair, meetings, request.host, name=_("My meetings: %(title)s",
                                                                           title=fair.title)),
                     "text/calendar; charset=utf-8", exports.safe_filename(f"fair-{fair.id}-my-meetings", "ics"))
