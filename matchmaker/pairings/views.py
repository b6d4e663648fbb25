"""Pairing pages: one pairing with its history and actions, 'my pairings', the coordinator workspace."""
from __future__ import annotations

import math
from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import or_, select

from ..core.access import coordinator_required, get_or_404
from ..core.audit import AuditEvent
from ..core.enums import HubCity, Industry
from ..core.scope import coordinator_scope_of
from ..core.time import utcnow
from ..core.transaction import LostRace, commit, transaction
from ..core.workflow import WorkflowError
from ..extensions import db
from ..listings.models import Capability, Need
from . import assignment as asg
from . import operations as ops
from .forms import parse_meeting_time, parse_score
from .models import ContractType, DeclineReason, Pairing, PairingSide, PairingState as P

bp = Blueprint("pairings", __name__)

STALE_DAYS = 3


#: operations flush inside, so a lost race can surface during the operation as well as at the commit
PAIRING_RACE = LostRace(
    stale=_l("Someone else changed this pairing in the meantime (for example another coordinator judged it "
             "first). Nothing was saved; please reload the page."),
    duplicate=_l("The change conflicts with another record and was not saved."), abort=True)

#: a refused action goes back to the pairing's page; who may not act at all gets the status
pairing_action = transaction("pairings.detail", lost=PAIRING_RACE, abort_on=(401, 403))


def load_pairing(pairing_id) -> Pairing:
    """The pairing, or 404 for anyone who is neither a party nor a coordinator in scope (no IDOR)."""
    pairing = get_or_404(Pairing, pairing_id)
    if not pairing.can_view(current_user):
        abort(404)
    return pairing


def _back(pairing: Pairing):
    return redirect(url_for("pairings.detail", pairing_id=pairing.id), code=303)


# -- my pairings and one pairing -----------------------------------------------------------------

@bp.get("/pairings")
@login_required
def mine():
    conds = [Need.created_by_id == current_user.id, Capability.created_by_id == current_user.id]
    if current_user.organization_ids:
        conds += [Need.organization_id.in_(current_user.organization_ids),
                  Capability.organization_id.in_(current_user.organization_ids)]
    if current_user.expert_profile is not None:
        conds.append(Pairing.expert_id == current_user.expert_profile.id)
    stmt = (select(Pairing).join(Need, Pairing.need_id == Need.id)
            .outerjoin(Capability, Pairing.capability_id == Capability.id)
            .where(or_(*conds)).order_by(Pairing.updated_at.desc()))
    state = request.args.get("state") or None
    if state is not None:
        if state not in P.values():
            abort(400, _("Unknown state."))
        stmt = stmt.where(Pairing.state == state)
    pairings = db.session.scalars(stmt.limit(200)).unique().all()
    return render_template("pairings/mine.html", pairings=pairings, state=state, P=P)


@bp.get("/pairings/<int:pairing_id>")
@login_required
def detail(pairing_id: int):
    pairing = load_pairing(pairing_id)
    history = db.session.scalars(select(AuditEvent).where(
        AuditEvent.target_type == "pairings", AuditEvent.target_id == pairing.id).order_by(AuditEvent.id)).all()
    from ..accounts.models import User
    actors = {u.id: u for u in db.session.scalars(select(User).where(
        User.id.in_({e.actor_id for e in history if e.actor_id})))} if history else {}
    sides = [s for s in pairing.sides_of(current_user) if pairing.can_respond(current_user, s)]
    return render_template("pairings/detail.html", p=pairing, history=history, actors=actors,
                           match_view=_match_view(pairing),
                           respond_sides=sides, P=P, PairingSide=PairingSide, DeclineReason=DeclineReason,
                           ContractType=ContractType,
                           outcome_states=ops.TRANSITIONS.get(pairing.state, set()) & set(ops.OUTCOME_STATES))


def _match_view(pairing) -> dict | None:
    """What the page shows as "why this pairing": the engine's snapshot taken at the proposal, or, for a
    pairing that has none with a confidence (proposed before it existed), the engine's match computed now
    (not stored: a page view writes nothing)."""
    snapshot = pairing.match_evidence
    if snapshot and snapshot.get("band"):
        return snapshot
    if pairing.capability is not None:
        from ..suggestions.queries import match_for_pair
        match = match_for_pair(pairing.need, pairing.capability)
        if match is not None:
            return ops.match_to_json(match)
    return snapshot or ({"score": pairing.match_score} if pairing.match_score is not None else None)


@bp.post("/pairings/<int:pairing_id>/respond")
@login_required
@pairing_action
def respond(pairing_id: int):
    pairing = load_pairing(pairing_id)
    ops.respond(pairing, current_user, request.form.get("side", ""), request.form.get("decision", ""),
                reason=request.form.get("reason") or None, message=request.form.get("message"))
    commit()
    flash(_("Your answer was recorded."), "success")
    return _back(pairing)


@bp.post("/pairings/<int:pairing_id>/withdraw")
@login_required
@pairing_action
def withdraw(pairing_id: int):
    pairing = load_pairing(pairing_id)
    ops.withdraw(pairing, current_user, request.form.get("reason"))
    commit()
    flash(_("Pairing withdrawn."), "success")
    return _back(pairing)


@bp.post("/pairings/<int:pairing_id>/judge")
@login_required
@pairing_action
def judge(pairing_id: int):
    pairing = load_pairing(pairing_id)
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        abort(400, _("Unknown decision."))
    # the coordinator judged an older page (someone acted in between), or sent no version at all
    if (request.form.get("version") or "").strip() != str(pairing.version):
        abort(409, str(PAIRING_RACE.stale))
    ops.judge(pairing, current_user, decision == "approve", request.form.get("comment"))
    commit()
    flash(_("Pairing approved.") if decision == "approve" else _("Pairing rejected."), "success")
    return _back(pairing)


@bp.post("/pairings/<int:pairing_id>/schedule")
@login_required
@pairing_action
def schedule(pairing_id: int):
    pairing = load_pairing(pairing_id)
    when = parse_meeting_time(request.form.get("when", ""), request.form.get("tz_offset"))
    ops.schedule_meeting(pairing, current_user, when, request.form.get("place", ""))
    commit()
    flash(_("Meeting scheduled."), "success")
    return _back(pairing)


@bp.post("/pairings/<int:pairing_id>/outcome")
@login_required
@pairing_action
def outcome(pairing_id: int):
    pairing = load_pairing(pairing_id)
    ops.record_outcome(pairing, current_user, request.form.get("outcome", ""),
                       contract_type=request.form.get("contract_type") or None,
                       amount=request.form.get("amount") or None, note=request.form.get("note"))
    commit()
    flash(_("Outcome recorded."), "success")
    return _back(pairing)


@bp.post("/pairings/propose")
@login_required
@transaction(lost=PAIRING_RACE)
def propose():
    need = get_or_404(Need, request.form.get("need_id"))
    cap = get_or_404(Capability, request.form.get("capability_id"))
    if not need.can_view(current_user) or not cap.can_view(current_user):
        abort(404)
    with transaction(url_for("suggestions.need_matches", listing_id=need.id), abort_on=(401, 403)):
        # the score is shown to the judging coordinator as the engine's: only a coordinator's page is trusted
        # with it (anyone else could post any number); it must be a finite number
        score = parse_score(request.form.get("score")) if current_user.is_coordinator else None
        pairing = ops.propose_pairing(need, cap, by=current_user, score=score,
                                      comment=(request.form.get("message") or None))
        commit()
    flash(_("Pairing proposed; the other side has been notified."), "success")
    return _back(pairing)


# -- coordinator workspace -----------------------------------------------------------------------

def _choice(name, enum_cls):
    value = request.args.get(name) or request.form.get(name) or None
    if value is not None and value not in enum_cls.values():
        abort(400, _("Unknown value for %(name)s.", name=name))
    return value


@bp.get("/coordinate")
@coordinator_required
def queue():
    hub_city, industry = _choice("hub_city", HubCity), _choice("industry", Industry)
    stmt = (select(Pairing).join(Need, Pairing.need_id == Need.id)
            .where(Pairing.state == P.PENDING_REVIEW, coordinator_scope_of(current_user).where(Need.hub_city))
            .order_by(Pairing.updated_at, Pairing.id))
    if hub_city:
        stmt = stmt.where(Need.hub_city == hub_city)
    if industry:
        stmt = stmt.where(Need.industry == industry)
    pairings = db.session.scalars(stmt.limit(300)).unique().all()
    threshold = utcnow() - timedelta(days=STALE_DAYS)
    return render_template("pairings/queue.html", pairings=pairings, threshold=threshold, stale_days=STALE_DAYS,
                           filters={"hub_city": hub_city, "industry": industry}, now=utcnow())


@bp.route("/coordinate/assign", methods=["GET", "POST"])
@coordinator_required
@transaction(lost=PAIRING_RACE)
def assign():
    hub_city, industry = _choice("hub_city", HubCity), _choice("industry", Industry)
    try:
        slots = max(1, min(5, int(request.values.get("slots", 3))))
    except ValueError:
        abort(400, _("Slots must be a number."))
    quota = request.values.get("quota") == "1"
    if request.method == "POST":
        return _confirm_assignment()
    from ..matching_service import get_engine
    engine_on = get_engine() is not None
    proposal = None
    needs = asg.candidate_needs(current_user, hub_city, industry)
    if engine_on and request.args.get("run") == "1":
        proposal = asg.propose_assignment(needs, slots=slots, quota=quota)
    return render_template("pairings/assign.html", proposal=proposal, needs=needs, engine_on=engine_on,
                           filters={"hub_city": hub_city, "industry": industry}, slots=slots, quota=quota)


def _confirm_assignment():
    chosen = request.form.getlist("pick")
    made, refused = 0, []
    for value in chosen[:200]:
        try:
            need_id, cap_id, score = value.split(":")
            need_id, cap_id, score = int(need_id), int(cap_id), float(score)
        except (ValueError, TypeError):
            abort(400, _("Malformed selection."))
        if not math.isfinite(score):
            abort(400, _("Malformed selection."))
        need, cap = get_or_404(Need, need_id), get_or_404(Capability, cap_id)  # 404 also past the id range
        sp = db.session.begin_nested()
        try:
            ops.propose_pairing(need, cap, by=current_user, origin="coordinator", score=score)
            sp.commit()
            made += 1
        except WorkflowError as exc:
            sp.rollback()
            if exc.status == 403:
                abort(403, exc.reason)
            refused.append(f"{need.title} × {cap.title}: {exc.reason}")
    commit()
    flash(_("%(num)d pairings proposed.", num=made), "success")
    for line in refused:
        flash(line, "warning")
    return redirect(url_for("pairings.queue"), code=303)
