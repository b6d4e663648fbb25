"""Listing pages: browse and search, detail, create/edit forms, "my listings", owner actions.

Views stay thin: forms validate, ``operations`` change state, and each request commits once.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from markupsafe import Markup

from .. import matching_service as ms
from ..core import data_version, sharedcache
from ..core.access import get_or_404, page_arg
from ..core.enums import CoopMode, ListingStatus, OrgKind, Role
from ..core.pagecache import cached_page
from ..core.transaction import STAY, LostRace, commit, transaction
from ..extensions import db
from ..suggestions.queries import related_listings
from . import operations as ops
from .forms import CapabilityForm, ConfirmForm, ListingForm, NeedForm
from .models import Capability, Need
from .queries import (FACETS, apply_filters, browse_counts, owned_listings, search_terms, visibility_scope,
                      visible_listings)

bp = Blueprint("listings", __name__)



@dataclass(frozen=True)
class Kind:
    """What differs between needs and capabilities, so one set of views serves both."""

    slug: str           # URL segment: needs / capabilities
    model: type
    form: type[ListingForm]
    browse_endpoint: str
    noun: object        # translatable singular, for messages


KINDS = {
    "needs": Kind("needs", Need, NeedForm, "listings.browse_needs", _l("need")),
    "capabilities": Kind("capabilities", Capability, CapabilityForm, "listings.browse_capabilities",
                         _l("capability")),
}
KIND_OF_MODEL = {k.model: k for k in KINDS.values()}


def kind_of(listing) -> Kind:
    return KIND_OF_MODEL[type(listing)]


@bp.app_template_global()
def listing_url(listing, action: str = "detail", **kw) -> str:
    """URL of a listing page or action, for any template (cards, queue, matches)."""
    return url_for(f"listings.{action}", kind=kind_of(listing).slug, listing_id=listing.id, **kw)


def load_listing(model, listing_id: int):
    """The listing if it exists and the current user may see it; 404 otherwise (no existence leak)."""
    listing = get_or_404(model, listing_id)
    if not listing.can_view(current_user):
        abort(404)
    return listing


LISTING_RACE = LostRace(
    stale=_l("Someone else changed this listing in the meantime. Nothing was saved; please check it and try "
             "again."),
    duplicate=_l("The listing could not be saved because some values are inconsistent. Nothing was saved."),
    duplicate_category="error", log_duplicate=True)


# --- posting permission -------------------------------------------------------------------------------

def poster_choices(kind: Kind, user) -> list[tuple[int, str]]:
    """Who ``user`` may post this kind of listing for: (organization id, name); 0 = as an expert.

    Needs come from enterprises only; capabilities from any member organization or an expert in person.
    """
    if not getattr(user, "is_authenticated", False):
        return []
    orgs = [m.organization for m in user.memberships]
    if kind.model is Need:
        return [(o.id, o.name) for o in orgs if o.kind == OrgKind.ENTERPRISE]
    choices = [(o.id, o.name) for o in orgs]
    if user.expert_profile is not None or user.has_role(Role.EXPERT):
        choices.insert(0, (0, _("In my own name (expert)")))
    return choices


@bp.app_template_global("may_post")
def may_post(slug: str) -> bool:
    """Whether the current user may post this kind of listing (to show or hide "post" buttons)."""
    return slug in KINDS and bool(poster_choices(KINDS[slug], current_user))


def require_poster(kind: Kind, user) -> list[tuple[int, str]]:
    """``poster_choices``, or 403 with the reason when the user may not post this kind at all."""
    choices = poster_choices(kind, user)
    if not choices:
        if kind.model is Need:
            abort(403, _("Only members of an enterprise can post technology needs. Ask your enterprise's "
                         "account manager to add you, or register your enterprise first."))
        abort(403, _("Only experts and members of an organization can post capabilities. Complete your "
                     "expert profile or join your organization first."))
    return choices


# --- browse and search ----------------------------------------------------------------------------------

def _browse(kind: Kind):
    """A browse page: the visitor's own parts (the "post" button, navigation, messages) around the shared
    body (``_browse_body``)."""
    return render_template("listings/browse.html", kind=kind, body=_browse_body(kind),
                           can_post=bool(poster_choices(kind, current_user)))


#: tables whose rows a browse body shows (cards name the organization, or the expert in person)
BODY_TABLES = ("organizations", "users", "expert_profiles")


def _browse_body(kind: Kind) -> Markup:
    """Search box, facets, results and related listings: the same HTML for every visitor with the same
    visibility scope, so it is rendered once per state and shared across users and processes
    (core.sharedcache). The key holds the scope, the page's path and query, the language, the write counters
    of the tables it shows (core.data_version.tables, read before rendering: a write elsewhere, e.g. to a
    pairing, leaves it alone; a write to needs leaves capability pages alone) and, when it ranks related
    listings, the match index versions."""
    model = kind.model
    q = (request.args.get("q") or "").strip()[:200]
    versions = data_version.tables(model.__tablename__, *BODY_TABLES)
    if versions is None:
        return _render_browse_body(kind, q)
    index = None
    if q and ms.enabled():
        ms.get_engine()  # loaded before the key names its versions (the render would load it anyway)
        index = ms.index_versions()
    key = (kind.slug, visibility_scope(model, current_user), request.path, sorted(request.args.items(multi=True)),
           str(get_locale()), versions, index)
    return Markup(sharedcache.lookup("page_part", key, lambda: str(_render_browse_body(kind, q))))


def _render_browse_body(kind: Kind, q: str) -> Markup:
    model = kind.model
    filters: dict[str, str] = {}
    ignored = []
    facet_enums = {arg: enum for arg, _col, enum in FACETS[model]}
    facet_enums["coop"] = CoopMode
    for arg, enum in facet_enums.items():
        value = request.args.get(arg)
        if not value:
            continue
        if value in enum.values():
            filters[arg] = value
        else:
            ignored.append(arg)
    page = page_arg()

    base = visible_listings(model, current_user)
    stmt = apply_filters(base, model, filters, q).order_by(model.published_at.desc(), model.id.desc())
    pagination = db.paginate(stmt, page=page, per_page=current_app.config.get("PAGE_SIZE", 20),
                             error_out=False, count=False)
    pagination.total, counts = browse_counts(model, current_user, filters, q)
    facets = [(arg, facet_enums[arg]) for arg in list(facet_enums)]
    related = _related(model, base, filters, q) if q and pagination.page == 1 else []
    return Markup(render_template(
        "listings/_browse_body.html", kind=kind, q=q, terms=search_terms(q), filters=filters, ignored=ignored,
        facets=facets, counts=counts, page=pagination, items=pagination.items, related=related))


RELATED_K = 10


def _related(model, base, filters: dict[str, str], q: str) -> list:
    """Listings the engine ranks for ``q`` in any language (an English query finds Chinese listings): among
    those ``base`` lets the visitor see and the page's facets keep, leaving out every keyword result (they
    are listed above, on this page or another). Shown on the first page only; [] when matching is off."""
    if not ms.enabled():
        return []
    keyword_ids = apply_filters(base, model, filters, q).with_only_columns(model.id)
    allowed = db.session.scalars(apply_filters(base, model, filters).with_only_columns(model.id)
                                 .where(model.id.not_in(keyword_ids))).all()
    return related_listings(model, q, allowed, k=RELATED_K)


@bp.get("/needs")
@cached_page(uses_index=True)  # the related listings depend on the match index
def browse_needs():
    """Published technology needs the visitor may see, with keyword search and facets."""
    return _browse(KINDS["needs"])


@bp.get("/capabilities")
@cached_page(uses_index=True)
def browse_capabilities():
    """Published capabilities (achievements, expertise, instruments, platforms)."""
    return _browse(KINDS["capabilities"])


# --- detail ---------------------------------------------------------------------------------------------

@bp.get("/<any(needs, capabilities):kind>/<int:listing_id>")
@cached_page
def detail(kind: str, listing_id: int):
    k = KINDS[kind]
    listing = load_listing(k.model, listing_id)
    return render_template(f"listings/{kind}_detail.html", kind=k, listing=listing, action_form=ConfirmForm())


# --- create and edit ------------------------------------------------------------------------------------

@bp.route("/<any(needs, capabilities):kind>/new", methods=["GET", "POST"])
@login_required
def create(kind: str):
    k = KINDS[kind]
    choices = require_poster(k, current_user)
    form = k.form()
    form.draft_ok = True
    del form.version
    if len(choices) > 1:
        form.organization_id.choices = choices
    else:
        del form.organization_id
    if not form.validate_on_submit():
        return render_template("listings/form.html", kind=k, form=form, listing=None), (
            400 if request.method == "POST" else 200)

    org_id = form.organization_id.data if "organization_id" in form else choices[0][0]
    organization = next((m.organization for m in current_user.memberships if m.organization_id == org_id), None)
    with transaction(url_for("listings.create", kind=kind), lost=LISTING_RACE, lost_back=STAY,
                     abort_on=(403,)) as tx:
        listing = ops.create_listing(k.model, current_user, form.listing_data(), organization=organization)
        if form.wants_submit:
            ops.submit_listing(listing, current_user)
        commit()
    if tx.failed:  # a lost race: the form again
        return render_template("listings/form.html", kind=k, form=form, listing=None), 409
    flash(_("Submitted for review. A coordinator will check it soon.") if form.wants_submit
          else _("Draft saved. Submit it for review when it is ready."), "success")
    return redirect(listing_url(listing), code=303)


@bp.route("/<any(needs, capabilities):kind>/<int:listing_id>/edit", methods=["GET", "POST"])
@login_required
def edit(kind: str, listing_id: int):
    k = KINDS[kind]
    listing = load_listing(k.model, listing_id)
    if not listing.can_edit(current_user):
        abort(403, _("You cannot edit this listing.") if not listing.is_owned_by(current_user)
              else _("A closed listing cannot be edited."))
    form = k.form(obj=listing)
    form.draft_ok = listing.status in (ListingStatus.DRAFT, ListingStatus.RETURNED)
    del form.organization_id
    if isinstance(form, NeedForm):
        form.original_deadline = listing.deadline
    if not form.validate_on_submit():
        return render_template("listings/form.html", kind=k, form=form, listing=listing), (
            400 if request.method == "POST" else 200)
    if str(form.version.data) != str(listing.version):
        flash(_("Someone else changed this listing while you were editing it. Nothing was saved; "
                "here is the current version."), "warning")
        return redirect(listing_url(listing, "edit"), code=303)

    was_published = listing.status == ListingStatus.PUBLISHED
    with transaction(listing_url(listing), lost=LISTING_RACE, lost_back=listing_url(listing, "edit"),
                     abort_on=(403,)):
        changed = ops.update_listing(listing, current_user, form.listing_data())
        if form.wants_submit and listing.status in (ListingStatus.DRAFT, ListingStatus.RETURNED):
            ops.submit_listing(listing, current_user)
        commit()
    if was_published and changed:
        flash(_("Changes saved. The listing went back to review and is hidden until a coordinator "
                "publishes it again."), "warning")
    elif listing.status == ListingStatus.SUBMITTED and form.wants_submit:
        flash(_("Changes saved and submitted for review."), "success")
    elif not changed:
        flash(_("Nothing was changed."), "info")
    else:
        flash(_("Changes saved."), "success")
    return redirect(listing_url(listing), code=303)


# --- owner actions (POST only) --------------------------------------------------------------------------

def _action(kind: str, listing_id: int, operation, done_message: str, back: str | None = None):
    k = KINDS[kind]
    listing = load_listing(k.model, listing_id)
    if not ConfirmForm().validate_on_submit():
        abort(400, _("The form was incomplete. Reload the page and try again."))
    here = listing_url(listing)
    with transaction(here, lost=LISTING_RACE, lost_back=back or here, abort_on=(403,)):
        operation(listing, current_user)
        commit()
    flash(done_message, "success")
    return redirect(back or here, code=303)


@bp.post("/<any(needs, capabilities):kind>/<int:listing_id>/submit")
@login_required
def submit(kind: str, listing_id: int):
    return _action(kind, listing_id, ops.submit_listing,
                   _("Submitted for review. A coordinator will check it soon."))


@bp.post("/<any(needs, capabilities):kind>/<int:listing_id>/close")
@login_required
def close(kind: str, listing_id: int):
    return _action(kind, listing_id, ops.close_listing, _("The listing is closed."))


@bp.post("/<any(needs, capabilities):kind>/<int:listing_id>/delete")
@login_required
def delete(kind: str, listing_id: int):
    return _action(kind, listing_id, ops.delete_listing, _("The listing was deleted."),
                   back=url_for("listings.my_listings"))


# --- my listings ----------------------------------------------------------------------------------------

STATUS_ORDER = [ListingStatus.RETURNED, ListingStatus.DRAFT, ListingStatus.SUBMITTED, ListingStatus.PUBLISHED,
                ListingStatus.CLOSED]


@bp.get("/my")
@login_required
def my_listings():
    """The user's (and their organizations') needs and capabilities, grouped by status."""
    groups = {}
    for slug, k in KINDS.items():
        rows = db.session.scalars(owned_listings(k.model, current_user)).unique().all()
        groups[slug] = [(status, [r for r in rows if r.status == status]) for status in STATUS_ORDER]
        groups[slug] = [(s, rows_) for s, rows_ in groups[slug] if rows_]
    can_post = {slug: bool(poster_choices(k, current_user)) for slug, k in KINDS.items()}
    return render_template("listings/my.html", groups=groups, kinds=KINDS, can_post=can_post,
                           action_form=ConfirmForm())
