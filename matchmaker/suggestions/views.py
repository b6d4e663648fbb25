"""Pages and endpoints that show the matching engine's ranked suggestions, each with its evidence."""
from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from .. import matching_service as ms
from . import alerts, evidence
from . import cache as match_cache
from ..core.access import MAX_ID, get_or_404
from ..core.enums import CoopMode, HubCity, Industry, Language
from ..core.errors import InvalidJson, error_response, request_json
from ..core.pagecache import cached_page
from ..core.transaction import LostRace, commit, transaction
from ..extensions import db, read_only_request
from ..listings.models import Capability, Need
from ..listings.views import load_listing
from ..pairings import operations as pairing_ops
from ..pairings.assignment import experts_at_capacity, paired_capability_ids
from ..pairings.models import DismissReason, NeedDismissal, Pairing
from .queries import floor_on, has_strong, needs_for_user, similar_needs

bp = Blueprint("suggestions", __name__)

BAND_LABELS = {"strong": _l("Strong match"), "possible": _l("Might be related"), "weak": _l("Weak match")}


@bp.app_template_filter("band_label")
def band_label(band):
    return BAND_LABELS.get(band, band)


@bp.app_template_filter("match_reasons")
def match_reasons(match, source_lang=None):
    """What speaks for a match, in plain words with the numbers for tooltips (``suggestions.evidence``)."""
    return evidence.reasons(match, source_lang)


@bp.app_template_filter("match_numbers")
def match_numbers(match):
    return evidence.numbers(match)


def no_match_context(need, capabilities) -> dict:
    """What the match page and the need page show about "no good match yet": whether it is the state
    (matching on, nothing strong), and the next steps the viewer may take."""
    from ..challenges.operations import can_publish_for
    no_strong = ms.enabled() and floor_on() and not has_strong(capabilities)
    return {"no_strong_match": no_strong,
            "may_ask_coordinators": no_strong and alerts.can_ask_coordinators(need, current_user),
            "may_publish_challenge": no_strong and need.is_published and need.visibility == "public"
            and can_publish_for(need, current_user)}

#: posting-assistant warning codes → what the firm should add
VAGUENESS_HINTS = {
    "empty": _l("Describe the need: nothing has been written yet."),
    "too_short": _l("The description is very short; experts need the context and the technical details."),
    "no_measurable_target": _l("No measurable target: add indicators with numbers and units (e.g. ≥ 85 %, "
                              "0.01 mm, 2000 cycles)."),
    "no_problem_statement": _l("No problem statement: say what fails or is missing today."),
}
ASSIST_FIELDS = ("title", "background", "problems", "targets")
MAX_ASSIST_CHARS = 20_000
# "Possible duplicate" = clearly above the pool (score is in standard deviations) or close in raw cosine,
# which still works in a tiny pool. On the seeds a true duplicate pair scored 2.55 / cosine 0.84, while the
# median best non-duplicate neighbour had cosine 0.78.
DUPLICATE_SCORE = 2.0
DUPLICATE_COSINE = 0.80


def _choice(name: str, enum_cls):
    value = request.args.get(name) or None
    if value is not None and value not in enum_cls.values():
        abort(400, _("Unknown value for %(name)s.", name=name))
    return value


@bp.get("/needs/<int:listing_id>/matches")
@cached_page(uses_index=True)
def need_matches(listing_id: int):
    """Ranked capabilities and experts for a need, with filters and the evidence for each match."""
    need = load_listing(Need, listing_id)  # 404 unless the visitor may see the need
    filters = {"hub_city": _choice("hub_city", HubCity), "coop_mode": _choice("coop_mode", CoopMode),
               "field_code": _choice("field", Industry), "language": _choice("language", Language)}
    if request.args.get("fragment"):  # the preview on the need's own page
        capabilities = match_cache.need_matches(need, k=5)[0]
        return render_template("suggestions/_preview.html", need=need, capabilities=capabilities,
                               **no_match_context(need, capabilities))
    capabilities, experts = match_cache.need_matches(need, k=20, experts_k=8, filters=filters)
    return render_template("suggestions/need_matches.html", need=need, capabilities=capabilities,
                           experts=experts, filters=filters, engine_on=ms.enabled(),
                           at_capacity=experts_at_capacity(s.listing.expert_id for s in capabilities),
                           paired=paired_capability_ids(need), **no_match_context(need, capabilities))


@bp.post("/needs/<int:listing_id>/ask-coordinators")
@login_required
@transaction("suggestions.need_matches")
def ask_coordinators(listing_id: int):
    """The firm asks its hub city's coordinators for help when the engine found no good match."""
    need = load_listing(Need, listing_id)
    if not alerts.can_ask_coordinators(need, current_user):
        abort(403)
    if alerts.asked_recently(need):
        flash(_("The hub city's coordinators were asked about this need a short while ago."), "info")
    else:
        alerts.ask_coordinators(need, current_user)
        commit()
        flash(_("The hub city's coordinators have been asked to help find a match."), "success")
    return redirect(url_for("suggestions.need_matches", listing_id=need.id), code=303)


@bp.get("/suggestions")
@login_required
def for_me():
    """Needs suggested for the signed-in expert, ranked from all of their published capabilities; each may be
    answered "interested" (a pairing) or "not for me" (never suggested again)."""
    suggestions, profile_texts = needs_for_user(current_user, k=20)
    return render_template("suggestions/for_me.html", suggestions=suggestions,
                           profile_size=len(profile_texts), engine_on=ms.enabled(),
                           pairings=_my_pairings([s.listing.id for s in suggestions]),
                           dismiss_reasons=DismissReason, dismissed=len(pairing_ops.dismissed_need_ids(current_user)))


def _my_pairings(need_ids) -> dict[int, int]:
    """Need id → the id of a pairing of the signed-in user's side with it (their capability or them in person)."""
    if not need_ids:
        return {}
    side = [Capability.created_by_id == current_user.id]
    if current_user.expert_profile is not None:
        side.append(Pairing.expert_id == current_user.expert_profile.id)
    rows = db.session.execute(select(Pairing.need_id, Pairing.id).outerjoin(Capability, Pairing.capability_id ==
                                                                               Capability.id)
                              .where(Pairing.need_id.in_(need_ids), or_(*side)).order_by(Pairing.id)).all()
    return {need_id: pairing_id for need_id, pairing_id in rows}


#: two clicks on "not for me" at one moment: the unique row (expert × need) stops the second
DISMISS_RACE = LostRace(stale=_l("This need was already marked “not for me”."), category="info")


def _own_capability(value) -> Capability | None:
    """The capability an "interested" answer names: one of the signed-in user's own (else 400), or None."""
    if value in (None, ""):
        return None
    cap = db.session.get(Capability, int(value)) if value.isdigit() and 0 < int(value) <= MAX_ID else None
    mine = cap is not None and (cap.created_by_id == current_user.id or (
        current_user.expert_profile is not None and cap.expert_id == current_user.expert_profile.id))
    if not mine:
        abort(400, _("That capability is not one of yours."))
    return cap


@bp.post("/suggestions/<int:listing_id>/interested")
@login_required
@transaction("suggestions.for_me", lost=LostRace(stale=_l("This pairing already exists."), category="info"))
def interested(listing_id: int):
    """The expert answers a suggested need "interested": a pairing from their side that the firm and the hub
    city's coordinators see; the expert goes to it."""
    need = load_listing(Need, listing_id)
    pairing = pairing_ops.express_interest(need, current_user, capability=_own_capability(
        request.form.get("capability_id")), message=request.form.get("message"))
    commit()
    flash(_("Your interest was sent: the enterprise answers next, and the hub city’s coordinators can see the "
            "pairing."), "success")
    return redirect(url_for("pairings.detail", pairing_id=pairing.id), code=303)


@bp.post("/suggestions/<int:listing_id>/dismiss")
@login_required
@transaction("suggestions.for_me", lost=DISMISS_RACE)
def dismiss(listing_id: int):
    """The expert answers a suggested need "not for me" (reason and note optional): not suggested again."""
    need = load_listing(Need, listing_id)
    pairing_ops.dismiss_need(need, current_user, reason=request.form.get("reason") or None,
                             note=request.form.get("note"))
    commit()
    flash(_("“%(title)s” will not be suggested to you again.", title=need.title), "success")
    return redirect(url_for("suggestions.for_me"), code=303)


@bp.get("/suggestions/dismissed")
@login_required
def dismissed():
    """The needs the signed-in user marked "not for me", newest first, each of which may be suggested again."""
    rows = db.session.scalars(select(NeedDismissal).where(NeedDismissal.user_id == current_user.id)
                              .options(selectinload(NeedDismissal.need)).order_by(NeedDismissal.created_at.desc(), NeedDismissal.id.desc())).all()
    return render_template("suggestions/dismissed.html", dismissals=rows, dismiss_reasons=DismissReason)


@bp.post("/suggestions/<int:listing_id>/restore")
@login_required
@transaction("suggestions.dismissed")
def restore(listing_id: int):
    """Undo "not for me": the need may be suggested again."""
    need = get_or_404(Need, listing_id)  # a need since withdrawn may still be taken off the list
    pairing_ops.restore_need(need, current_user)
    commit()
    flash(_("“%(title)s” may be suggested to you again.", title=need.title), "success")
    return redirect(url_for("suggestions.dismissed"), code=303)


@bp.post("/assist/need")
@login_required
@read_only_request
def assist_need():
    """Posting assistant (JSON): possible duplicates among published needs and vagueness warnings."""
    from ..matching.text import vagueness

    try:
        data = request_json()
    except InvalidJson as exc:
        return error_response(400, _("Bad request"), exc.reason)
    if not isinstance(data, dict):
        return error_response(400, _("Bad request"), _("Send a JSON object."))
    fields = {k: data.get(k) for k in ASSIST_FIELDS}
    if any(v is not None and not isinstance(v, str) for v in fields.values()):
        return error_response(400, _("Invalid input"),
                              _("The title, background, problems and targets must be text."))
    fields = {k: (v or "") for k, v in fields.items()}
    if sum(len(v) for v in fields.values()) > MAX_ASSIST_CHARS:
        return error_response(413, _("Text too long"),
                              _("The title, background, problems and targets may have at most %(max)d "
                                "characters together.", max=MAX_ASSIST_CHARS))
    exclude = data.get("exclude_id")
    exclude = exclude if isinstance(exclude, int) else None
    text = "\n".join(v for v in fields.values() if v)
    warnings = vagueness({k: v for k, v in fields.items() if k != "background"})
    similar = similar_needs(text, current_user, exclude_id=exclude, k=5) if len(text.strip()) >= 8 else []
    from ..listings.views import listing_url
    return jsonify({
        "warnings": [{"code": w, "message": str(VAGUENESS_HINTS.get(w, w))} for w in warnings],
        "similar": [{"id": s.listing.id, "title": s.listing.title, "url": listing_url(s.listing),
                     "score": round(s.score, 3),
                     "shared_terms": s.match.evidence.shared_terms if s.match.evidence else []}
                    for s in similar
                    if s.score >= DUPLICATE_SCORE or s.match.raw.get("cosine", 0.0) >= DUPLICATE_COSINE],
    })
