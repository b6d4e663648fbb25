"""``/api/v1`` views and the "API tokens" page.

Thin views: parse and check input, call the listings service layer (``listings.operations``), commit once,
serialize with ``schemas.dump``. Permission rules are the models' (``can_view``, ``can_edit``,
``can_view_contact``, ``Pairing.can_view``) and ``visible_listings``; nothing is re-decided here.

Authentication (``_authenticate``): an ``Authorization: Bearer`` token, or the session cookie. The blueprint is
exempt from the global CSRF check, and the check is re-applied here for cookie-authenticated state changes
(header ``X-CSRFToken``), so only token requests — which a browser cannot forge cross-site — skip it.
"""
from __future__ import annotations

from flask import (Blueprint, abort, current_app, flash, g, jsonify, make_response, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import or_, select
from werkzeug.datastructures import MultiDict

from ..accounts.models import ExpertProfile
from ..accounts.tokens import ApiToken
from ..core.access import MAX_ID
from ..core.enums import CoopMode, HubCity, Industry, Language
from ..core.errors import InvalidJson, error_response, request_json
from ..core.scope import coordinator_scope_of
from ..core.templating import current_url
from ..core.transaction import LostRace, commit, transaction
from ..core.workflow import RACE_ERRORS, WorkflowError
from ..extensions import configured_limit, csrf, db, limiter
from ..listings import operations as ops
from ..listings.forms import NeedForm
from ..listings.models import Capability, Need
from ..listings.queries import FACETS, apply_filters, visible_listings
from ..listings.views import KINDS, listing_url, load_listing, poster_choices, require_poster
from ..pairings.models import Pairing, PairingState
from . import auth, schemas
from .schemas import DEFAULT_PER_PAGE, MAX_MATCHES, MAX_PAGE, MAX_PER_PAGE

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # re-applied in _authenticate for cookie sessions

#: endpoints anyone may read (the API description itself)
PUBLIC_ENDPOINTS = {"api.openapi"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class ApiError(Exception):
    """A refused request: status, reason and optional per-field messages."""

    def __init__(self, status: int, reason: str, fields: dict | None = None):
        super().__init__(reason)
        self.status, self.reason, self.fields = status, reason, fields


def _error(status: int, reason: str, fields: dict | None = None):
    resp, code = error_response(status, _("Invalid input") if fields else _title(status), reason)
    if fields:
        body = resp.get_json()
        body["fields"] = {k: [str(m) for m in v] for k, v in fields.items()}
        resp = jsonify(body)
    resp.status_code = code
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="matchmaker"'
    return resp


def _title(status: int) -> str:
    return {400: _("Bad request"), 401: _("Please sign in"), 403: _("Access denied"), 404: _("Not found"),
            409: _("Conflict")}.get(status, _("Error"))


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    db.session.rollback()
    return _error(exc.status, exc.reason, exc.fields)


@bp.errorhandler(WorkflowError)
def _workflow_error(exc: WorkflowError):
    db.session.rollback()
    return _error(exc.status, exc.reason)


#: a lost race, in an operation's flush or at the commit
API_RACE = LostRace(
    stale=_l("Someone else changed this in the meantime. Nothing was saved; reload it and try again."),
    duplicate=_l("The values are inconsistent with stored data. Nothing was saved."), log_duplicate=True)


def _lost_race(exc: Exception):
    db.session.rollback()
    return _error(409, API_RACE.answer(exc)[0])


for _race in RACE_ERRORS:
    bp.register_error_handler(_race, _lost_race)


# --- authentication ---------------------------------------------------------------------------------

@bp.before_request
def _authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS or request.method == "OPTIONS":
        return None
    header = request.headers.get("Authorization")
    if header is not None:
        user, reason = auth.user_from_authorization(header)
        if user is None:
            return _error(401, reason)
        g._login_user = user  # flask-login's per-request user: current_user is the token's owner
        g.api_auth = "token"
        return None
    if not current_user.is_authenticated:
        return _error(401, _("Authentication required: send “Authorization: Bearer <token>” (create a token on "
                             "your profile's API tokens page)."))
    if not current_user.is_active:
        return _error(401, _("Your account is deactivated."))
    g.api_auth = "session"
    if request.method not in SAFE_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()  # CSRFError → 400 JSON via the app's handler
    return None


@bp.after_request
def _no_store(resp):
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


# --- input ------------------------------------------------------------------------------------------

def json_body(schema: dict, *, optional: bool = False) -> dict:
    """The request's JSON object, type-checked against ``schema`` (unknown members are refused)."""
    if optional and not request.get_data(cache=True):
        return {}
    if not request.is_json:
        raise ApiError(400, _("Send a JSON object with “Content-Type: application/json”."))
    try:
        data = request_json()
    except InvalidJson as exc:
        raise ApiError(400, exc.reason) from None
    if not isinstance(data, dict):
        raise ApiError(400, _("The body must be a JSON object."))
    errors = schemas.check_types(data, schema)
    if errors:
        raise ApiError(400, _("Some fields are unknown or of the wrong type."), errors)
    return data


def _to_formdata(data: dict) -> MultiDict:
    md = MultiDict()
    for name, value in data.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            md.add(name, item.isoformat() if hasattr(item, "isoformat") else str(item))
    return md


def _validated_form(form_cls, data: dict, original_deadline=None):
    """The listing form run on JSON data (no CSRF: the API authenticates differently)."""
    form = form_cls(formdata=_to_formdata(data), meta={"csrf": False})
    del form.organization_id
    del form.version
    if isinstance(form, NeedForm):
        form.original_deadline = original_deadline
    if not form.validate():
        raise ApiError(400, _("Some fields are invalid."), form.errors)
    return form


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, _("Invalid query parameter."), {name: [_("Expected a whole number.")]}) from None
    if not low <= value <= high:
        raise ApiError(400, _("Invalid query parameter."),
                       {name: [_("Must be between %(low)d and %(high)d.", low=low, high=high)]})
    return value


def _enum_arg(name: str, enum_cls) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in enum_cls.values():
        raise ApiError(400, _("Invalid query parameter."), {name: [_("Unknown value.")]})
    return value


# --- serialization ----------------------------------------------------------------------------------

def _org(listing):
    return {"id": listing.organization.id, "name": listing.organization.name} if listing.organization else None


def dump_listing(listing, user) -> dict:
    owner_or_coordinator = listing.is_owned_by(user) or bool(user.is_authenticated and user.is_coordinator)
    computed = {
        "organization": _org(listing), "url": listing_url(listing),
        "return_reason": listing.return_reason if owner_or_coordinator else None,
        "coop_modes": list(listing.coop_modes or []),
    }
    if isinstance(listing, Need):
        computed["contact"] = ({"name": listing.contact_name, "phone": listing.contact_phone,
                                "email": listing.contact_email} if listing.can_view_contact(user) else None)
        return schemas.dump(schemas.NEED, listing, computed)
    if listing.can_view_contact(user):
        expert = listing.expert
        computed["contact"] = {
            "expert": expert.user.name if expert is not None and expert.user is not None else None,
            "posted_by": listing.created_by.name if listing.created_by is not None else None,
            "organization": listing.organization.name if listing.organization else None}
    else:
        computed["contact"] = None
    return schemas.dump(schemas.CAPABILITY, listing, computed)


def dump_pairing(pairing: Pairing, user) -> dict:
    need, cap = pairing.need, pairing.capability
    return schemas.dump(schemas.PAIRING, pairing, {
        "need": {"id": pairing.need_id, "title": need.title if need is not None and need.can_view(user) else None},
        "capability": ({"id": cap.id, "title": cap.title if cap.can_view(user) else None}
                       if cap is not None else None),
        "sides": pairing.sides_of(user),
        "responses": [schemas.dump(schemas.PAIRING_RESPONSE, r) for r in pairing.responses],
        "match_score": float(pairing.match_score) if pairing.match_score is not None else None,
    })


def _page_response(stmt, dump, **args):
    page = _int_arg("page", 1, 1, MAX_PAGE)
    per_page = _int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    pagination = db.paginate(stmt, page=page, per_page=per_page, error_out=False, count=True)
    total = pagination.total or 0
    keep = [(k, v) for k, v in request.args.items(multi=True) if k not in ("page", "per_page")]

    def link(p):
        return current_url([*keep, ("page", p), ("per_page", per_page)])

    nxt = link(page + 1) if page * per_page < total else None
    prev = link(page - 1) if page > 1 else None
    items = [d for x in pagination.items if (d := dump(x)) is not None]
    resp = jsonify({"items": items, "page": page, "per_page": per_page,
                    "total": total, "next": nxt, "prev": prev})
    links = [f'<{u}>; rel="{rel}"' for u, rel in ((nxt, "next"), (prev, "prev")) if u]
    if links:
        resp.headers["Link"] = ", ".join(links)
    return resp


# --- listings -----------------------------------------------------------------------------------------

BODY = {"needs": (schemas.NEED_CREATE, schemas.NEED_PATCH),
        "capabilities": (schemas.CAPABILITY_CREATE, schemas.CAPABILITY_PATCH)}


def list_listings(slug: str):
    """Published listings the caller may see (``visible_listings``), filtered and paginated."""
    model = KINDS[slug].model
    filters = {arg: v for arg, _col, enum_cls in FACETS[model] if (v := _enum_arg(arg, enum_cls))}
    if coop := _enum_arg("coop_mode", CoopMode):
        filters["coop"] = coop
    q = (request.args.get("q") or "").strip()[:200]
    stmt = apply_filters(visible_listings(model, current_user), model, filters, q)
    stmt = stmt.order_by(model.published_at.desc(), model.id.desc())
    return _page_response(stmt, lambda x: dump_listing(x, current_user))


def get_listing(slug: str, listing_id: int):
    listing = load_listing(KINDS[slug].model, listing_id)  # 404 when not visible to the caller
    return jsonify(dump_listing(listing, current_user))


def create_listing(slug: str):
    """A new draft, validated by the same form as the web page."""
    k = KINDS[slug]
    choices = require_poster(k, current_user)  # 403 with the reason when the caller may not post this kind
    data = json_body(BODY[slug][0])
    org_id = data.pop("organization_id", None)
    allowed = [c[0] for c in poster_choices(k, current_user)]
    if org_id is None:
        org_id = choices[0][0]
    elif org_id not in allowed:
        raise ApiError(400, _("Some fields are invalid."),
                       {"organization_id": [_("You cannot post on behalf of this organization.")]})
    form = _validated_form(k.form, data)
    organization = next((m.organization for m in current_user.memberships if m.organization_id == org_id), None)
    listing = ops.create_listing(k.model, current_user, form.listing_data(), organization=organization)
    commit()
    resp = make_response(jsonify(dump_listing(listing, current_user)), 201)
    resp.headers["Location"] = url_for(f"api.get_{k.model.kind_name}", listing_id=listing.id)
    return resp


def _form_values(listing) -> dict:
    """The listing's stored values as form input, so a PATCH is validated as the whole edited listing."""
    fields = ops.NEED_FIELDS if isinstance(listing, Need) else ops.CAPABILITY_FIELDS
    return {name: getattr(listing, name) for name in fields}


def update_listing(slug: str, listing_id: int):
    """Change some fields (owners only); a published listing goes back to review, as on the web page."""
    k = KINDS[slug]
    listing = load_listing(k.model, listing_id)
    if not listing.can_edit(current_user):
        raise ApiError(403, _("You cannot edit this listing.") if not listing.is_owned_by(current_user)
                       else _("A closed listing cannot be edited."))
    data = json_body(BODY[slug][1])
    version = data.pop("version", None)
    if version is not None and version != listing.version:
        raise ApiError(409, _("Someone else changed this listing since version %(v)d. Nothing was saved; "
                              "fetch it again.", v=version))
    merged = {**_form_values(listing), **data}
    form = _validated_form(k.form, merged, original_deadline=getattr(listing, "deadline", None))
    ops.update_listing(listing, current_user, form.listing_data())
    commit()
    return jsonify(dump_listing(listing, current_user))


def submit_listing(slug: str, listing_id: int):
    """Send a draft or returned listing for review (owners only)."""
    listing = load_listing(KINDS[slug].model, listing_id)
    ops.submit_listing(listing, current_user)  # permission and state first (403/409 before body errors)
    json_body(schemas.EMPTY_BODY, optional=True)  # takes no body: members are refused (rolled back)
    commit()
    return jsonify(dump_listing(listing, current_user))


for _slug, _kind in KINDS.items():
    _name = _kind.model.kind_name  # need / capability
    bp.add_url_rule(f"/{_slug}", f"list_{_slug}", lambda s=_slug: list_listings(s), methods=["GET"])
    bp.add_url_rule(f"/{_slug}", f"create_{_name}", lambda s=_slug: create_listing(s), methods=["POST"])
    bp.add_url_rule(f"/{_slug}/<int:listing_id>", f"get_{_name}",
                    lambda listing_id, s=_slug: get_listing(s, listing_id), methods=["GET"])
    bp.add_url_rule(f"/{_slug}/<int:listing_id>", f"update_{_name}",
                    lambda listing_id, s=_slug: update_listing(s, listing_id), methods=["PATCH"])
    bp.add_url_rule(f"/{_slug}/<int:listing_id>/submit", f"submit_{_name}",
                    lambda listing_id, s=_slug: submit_listing(s, listing_id), methods=["POST"])


# --- matches ------------------------------------------------------------------------------------------

@bp.get("/needs/<int:listing_id>/matches")
def need_matches(listing_id: int):
    """Ranked capabilities for a need the caller may see (``suggestions.queries.capabilities_for_need``)."""
    from .. import matching_service as ms
    from ..suggestions.evidence import reasons as match_reasons
    from ..suggestions.queries import capabilities_for_need, has_strong

    need = load_listing(Need, listing_id)
    k = _int_arg("k", 10, 1, MAX_MATCHES)
    filters = {"hub_city": _enum_arg("hub_city", HubCity), "coop_mode": _enum_arg("coop_mode", CoopMode),
               "field_code": _enum_arg("field", Industry), "language": _enum_arg("language", Language)}
    if not ms.enabled():
        return jsonify({"need_id": need.id, "matching": "off", "state": "matching_off", "items": []})
    items = []
    suggestions = capabilities_for_need(need, k=k, **filters)
    for s in suggestions:
        m = s.match
        items.append({"capability": dump_listing(s.listing, current_user), "score": float(m.score),
                      "confidence": float(s.confidence), "band": s.band,
                      "components": {str(a): float(b) for a, b in (m.components or {}).items()},
                      "reasons": [{k: r[k] for k in ("key", "label", "value")}
                                  for r in match_reasons(m, need.language)],
                      "evidence": _evidence(m.evidence)})
    state = "strong_match" if has_strong(suggestions) else "no_strong_match"
    return jsonify({"need_id": need.id, "matching": "on", "state": state, "items": items})


def _evidence(ev):
    if ev is None:
        return None
    return {"query_sentence": str(ev.query_sentence), "doc_sentence": str(ev.doc_sentence),
            "sentence_similarity": float(ev.sentence_similarity),
            "shared_terms": [str(t) for t in ev.shared_terms], "query_text_index": int(ev.query_text_index)}


# --- pairings -------------------------------------------------------------------------------------------

def pairings_for(user):
    """Candidate pairings for ``user`` in SQL (parties and coordinators in scope); ``Pairing.can_view`` has
    the last word on each row."""
    stmt = (select(Pairing).join(Need, Pairing.need_id == Need.id)
            .outerjoin(Capability, Pairing.capability_id == Capability.id)
            .outerjoin(ExpertProfile, Pairing.expert_id == ExpertProfile.id))
    scope = coordinator_scope_of(user)
    if scope.is_all:  # admins and unscoped coordinators see every pairing
        return stmt
    orgs = list(user.organization_ids)
    conds = [Need.created_by_id == user.id, Capability.created_by_id == user.id, ExpertProfile.user_id == user.id]
    if orgs:
        conds += [Need.organization_id.in_(orgs), Capability.organization_id.in_(orgs)]
    conds.append(scope.where(Need.hub_city))  # false() for a non-coordinator: or_ drops it
    return stmt.where(or_(*conds))


@bp.get("/pairings")
def list_pairings():
    """Pairings where the caller is a party, or which a coordinator may oversee; newest first."""
    stmt = pairings_for(current_user)
    if state := _enum_arg("state", PairingState):
        stmt = stmt.where(Pairing.state == state)
    stmt = stmt.order_by(Pairing.updated_at.desc(), Pairing.id.desc())
    user = current_user._get_current_object()

    def dump(p):
        if not p.can_view(user):  # never expected: the SQL mirrors can_view; never leak if it drifts
            current_app.logger.error("pairings_for() listed pairing %s that user %s may not view", p.id, user.id)
            return None
        return dump_pairing(p, user)

    return _page_response(stmt, dump)


@bp.get("/pairings/<int:pairing_id>")
def get_pairing(pairing_id: int):
    """One pairing; 404 unless the caller is a party or a coordinator in scope (no existence leak)."""
    pairing = db.session.get(Pairing, pairing_id) if 0 < pairing_id <= MAX_ID else None
    if pairing is None or not pairing.can_view(current_user):
        abort(404)
    return jsonify(dump_pairing(pairing, current_user))


# --- the OpenAPI document -----------------------------------------------------------------------------

@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API (public)."""
    from .openapi import build_document
    return jsonify(build_document())


# --- API token page (HTML, CSRF-protected like every form) -----------------------------------------------

tokens_bp = Blueprint("tokens", __name__)


def _tokens_page(form, new_secret=None, new_token=None, status=200):
    tokens = db.session.scalars(select(ApiToken).where(ApiToken.user_id == current_user.id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())).all()
    resp = make_response(render_template("accounts/tokens.html", form=form, tokens=tokens,
                                         new_secret=new_secret, new_token=new_token,
                                         revoke_form=auth.RevokeForm()), status)
    resp.headers["Cache-Control"] = "no-store"  # the secret is on this page once
    return resp


@tokens_bp.get("/profile/tokens")
@login_required
def tokens():
    """The user's personal API tokens: create, see when each was last used, revoke."""
    return _tokens_page(auth.TokenForm())


@tokens_bp.post("/profile/tokens")
@login_required
@limiter.limit(configured_limit("RATELIMIT_API_TOKENS"), key_func=lambda: f"user:{current_user.id}",
               error_message=lambda: _("Too many tokens created in a short time. Wait an hour and try again."))
def create_token():
    form = auth.TokenForm()
    if not form.validate_on_submit():
        return _tokens_page(form, status=400)
    with transaction(abort_on=()) as tx:
        token, secret = auth.create_token(current_user, form.name.data, form.expires_in_days)
    if tx.failed:
        return _tokens_page(form, status=tx.status)
    commit()
    return _tokens_page(auth.TokenForm(formdata=None), new_secret=secret, new_token=token, status=201)


@tokens_bp.post("/profile/tokens/<int:token_id>/revoke")
@login_required
@transaction("tokens.tokens", abort_on=())
def revoke_token(token_id: int):
    token = db.session.get(ApiToken, token_id) if 0 < token_id <= MAX_ID else None
    if token is None or token.user_id != current_user.id:
        abort(404)
    if not auth.RevokeForm().validate_on_submit():
        abort(400, _("The form was incomplete. Reload the page and try again."))
    auth.revoke_token(token, current_user)
    commit()
    flash(_("The token “%(name)s” was revoked. Programs using it are refused from now on.", name=token.name),
          "success")
    return redirect(url_for("tokens.tokens"), code=303)
