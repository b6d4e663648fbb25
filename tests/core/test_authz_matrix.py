"""Authorization matrix: every route × every role, built against ``app.url_map``.

Each entry of ``CASES`` says how to fill a route's URL arguments (ids of the objects made by the
``objs`` fixture) and what each role must get for a GET, or for a POST of a minimal form. Expected
outcomes:

* ``200`` — the page is shown;
* ``"login"`` — 302 to ``/login?next=<this path>`` (anonymous visitors on protected pages);
* ``"redirect"`` — 302/303 somewhere other than the login page (done, or refused with a message);
* ``400`` — the request got through to validation and the (empty) form was refused;
* ``403`` — refused, the object's existence may be known (e.g. a public listing, a role page);
* ``404`` — refused without leaking existence (drafts and coordinators-only needs of other organizations).

A 500 is never acceptable. ``test_every_route_has_declared_expectations`` fails when a route is added to
the app without an entry here, so the matrix stays complete as the app grows.

Roles: ``anonymous``; ``enterprise`` (manager of 重庆甲公司, which owns the ``firm_*`` needs);
``other_enterprise`` (manager of 成都乙公司, which owns the ``other_*`` needs); ``expert`` (at 某研究院,
owns the ``cap_*`` capabilities); ``coordinator`` (unscoped); ``admin``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest

from matchmaker.accounts.sessions import LOGIN_AT, SEEN_AT
from matchmaker.core.enums import Role
from matchmaker.core.time import utcnow
from matchmaker.extensions import db
from matchmaker.listings import operations as ops
from matchmaker.notifications.operations import notify
from matchmaker.listings.models import Need

ROLES = ("anonymous", "enterprise", "other_enterprise", "expert", "coordinator", "admin")
MISSING_ID = 987_654_321
HUGE_ID = 2**70  # beyond any database integer: must be a 404, not an overflow 500


def R(anonymous, enterprise, other_enterprise, expert, coordinator, admin) -> dict:
    """Expected outcome per role, in the order of ``ROLES``."""
    return dict(zip(ROLES, (anonymous, enterprise, other_enterprise, expert, coordinator, admin), strict=True))


def ALL(outcome) -> dict:
    return R(*([outcome] * len(ROLES)))


@dataclass(frozen=True)
class Case:
    endpoint: str
    method: str
    expect: dict
    #: URL arguments; a value "@name" is replaced by ``objs[name]`` (an id)
    args: dict = field(default_factory=dict)
    target: str = ""

    def label(self) -> str:
        return f"{self.method} {self.endpoint}" + (f"[{self.target}]" if self.target else "")


def need(target, **extra):
    return {"kind": "needs", "listing_id": f"@{target}", **extra}


def cap(target, **extra):
    return {"kind": "capabilities", "listing_id": f"@{target}", **extra}


LOGIN, REDIR = "login", "redirect"
ADMIN_ONLY_GET = R(LOGIN, 403, 403, 403, 403, 200)
COORD_GET = R(LOGIN, 403, 403, 403, 200, 200)
SIGNED_IN_GET = R(LOGIN, 200, 200, 200, 200, 200)
SIGNED_IN_POST_INVALID = R(LOGIN, 400, 400, 400, 400, 400)
GUEST_ONLY_GET = R(200, REDIR, REDIR, REDIR, REDIR, REDIR)
GUEST_ONLY_POST = R(400, REDIR, REDIR, REDIR, REDIR, REDIR)

CASES: list[Case] = [
    # --- public pages -----------------------------------------------------------------------------------
    Case("main.index", "GET", ALL(200)),
    Case("main.favicon", "GET", ALL(301)),
    Case("main.set_language", "POST", ALL(REDIR), {"code": "en"}),
    Case("main.healthz", "GET", ALL(200)),
    Case("main.readyz", "GET", ALL(200)),  # matching is off in the suite: nothing to load, so ready
    Case("static", "GET", ALL(200), {"filename": "css/app.css"}),
    # operations: the test client is on loopback, which may read metrics whoever is signed in (without a
    # token; the address and token rules are tests/observability/test_metrics.py)
    Case("observability.metrics_endpoint", "GET", ALL(200)),
    Case("listings.browse_needs", "GET", ALL(200)),
    Case("listings.browse_capabilities", "GET", ALL(200)),

    # --- accounts ---------------------------------------------------------------------------------------
    Case("accounts.login", "GET", GUEST_ONLY_GET),
    Case("accounts.login", "POST", GUEST_ONLY_POST),
    Case("accounts.register", "GET", GUEST_ONLY_GET),
    Case("accounts.register", "POST", GUEST_ONLY_POST),
    Case("accounts.logout", "POST", ALL(REDIR)),
    Case("accounts.forgot_password", "GET", GUEST_ONLY_GET),
    Case("accounts.forgot_password", "POST", GUEST_ONLY_POST),
    # a link that is not a valid signed token: back to "forgot password" with a message, for everyone
    Case("accounts.reset_password", "GET", ALL(REDIR), {"token": "not-a-token"}, "bad token"),
    Case("accounts.reset_password", "POST", ALL(REDIR), {"token": "not-a-token"}, "bad token"),
    Case("accounts.profile", "GET", SIGNED_IN_GET),
    Case("accounts.profile", "POST", SIGNED_IN_POST_INVALID),
    Case("accounts.change_password", "GET", SIGNED_IN_GET),
    Case("accounts.change_password", "POST", SIGNED_IN_POST_INVALID),
    Case("accounts.organization", "GET", ALL(200), {"org_id": "@firm"}, "firm"),
    Case("accounts.organization", "GET", ALL(200), {"org_id": "@other_firm"}, "other_firm"),
    Case("accounts.organization", "GET", ALL(404), {"org_id": MISSING_ID}, "missing"),
    Case("accounts.edit_organization", "GET", R(LOGIN, 200, 403, 403, 403, 200), {"org_id": "@firm"}, "firm"),
    Case("accounts.edit_organization", "GET", R(LOGIN, 403, 200, 403, 403, 200),
         {"org_id": "@other_firm"}, "other_firm"),
    Case("accounts.edit_organization", "GET", R(LOGIN, 403, 403, 200, 403, 200),
         {"org_id": "@institute"}, "institute"),
    Case("accounts.edit_organization", "GET", R(LOGIN, 404, 404, 404, 404, 404),
         {"org_id": MISSING_ID}, "missing"),
    Case("accounts.edit_organization", "POST", R(LOGIN, 400, 403, 403, 403, 400), {"org_id": "@firm"}, "firm"),
    Case("accounts.edit_organization", "POST", R(LOGIN, 403, 400, 403, 403, 400),
         {"org_id": "@other_firm"}, "other_firm"),
    # a stranger asked to join 重庆甲公司: only its managers (and admins) decide
    Case("accounts.decide_join_request", "POST", R(LOGIN, REDIR, 403, 403, 403, REDIR),
         {"org_id": "@firm", "request_id": "@join_request", "decision": "approve"}, "firm"),
    Case("accounts.decide_join_request", "POST", R(LOGIN, REDIR, 403, 403, 403, REDIR),
         {"org_id": "@firm", "request_id": "@join_request", "decision": "decline"}, "firm decline"),
    Case("accounts.decide_join_request", "POST", R(LOGIN, 404, 404, 404, 404, 404),
         {"org_id": "@other_firm", "request_id": "@join_request", "decision": "approve"}, "wrong org"),
    Case("accounts.decide_join_request", "POST", R(LOGIN, 404, 404, 404, 404, 404),
         {"org_id": "@firm", "request_id": MISSING_ID, "decision": "approve"}, "missing"),

    # --- listings: my listings and posting ------------------------------------------------------------------
    Case("listings.my_listings", "GET", SIGNED_IN_GET),
    # needs come from enterprises only; coordinators and admins without an enterprise cannot post
    Case("listings.create", "GET", R(LOGIN, 200, 200, 403, 403, 403), {"kind": "needs"}, "needs"),
    Case("listings.create", "POST", R(LOGIN, 400, 400, 403, 403, 403), {"kind": "needs"}, "needs"),
    Case("listings.create", "GET", R(LOGIN, 200, 200, 200, 403, 403), {"kind": "capabilities"}, "capabilities"),
    Case("listings.create", "POST", R(LOGIN, 400, 400, 400, 403, 403), {"kind": "capabilities"},
         "capabilities"),

    # --- listings: detail ---------------------------------------------------------------------------------
    Case("listings.detail", "GET", ALL(200), need("firm_public"), "firm_public"),
    Case("listings.detail", "GET", R(404, 200, 404, 404, 200, 200), need("firm_coord"), "firm_coord"),
    Case("listings.detail", "GET", R(404, 200, 404, 404, 200, 200), need("firm_draft"), "firm_draft"),
    Case("listings.detail", "GET", R(404, 200, 404, 404, 200, 200), need("firm_submitted"), "firm_submitted"),
    Case("listings.detail", "GET", R(404, 404, 404, 404, 404, 200), need("firm_deleted"), "firm_deleted"),
    Case("listings.detail", "GET", R(404, 404, 200, 404, 200, 200), need("other_coord"), "other_coord"),
    Case("listings.detail", "GET", R(404, 404, 200, 404, 200, 200), need("other_draft"), "other_draft"),
    Case("listings.detail", "GET", ALL(404), {"kind": "needs", "listing_id": MISSING_ID}, "missing"),
    Case("listings.detail", "GET", ALL(404), {"kind": "needs", "listing_id": HUGE_ID}, "huge_id"),
    Case("listings.detail", "GET", ALL(200), cap("cap_public"), "cap_public"),
    Case("listings.detail", "GET", R(404, 404, 404, 200, 200, 200), cap("cap_draft"), "cap_draft"),

    # --- listings: edit (GET shows the form, POST of a minimal form fails validation when allowed, except on
    # a draft, which may be saved half-written) -------------------------------------------------------------
    *[Case("listings.edit", method, {r: ((REDIR if target.endswith("_draft") else 400) if method == "POST" and v == 200
                                         else v) for r, v in exp.items()},
           args, target)
      for method in ("GET", "POST")
      for target, args, exp in [
          ("firm_public", need("firm_public"), R(LOGIN, 200, 403, 403, 403, 403)),
          ("firm_coord", need("firm_coord"), R(LOGIN, 200, 404, 404, 403, 403)),
          ("firm_draft", need("firm_draft"), R(LOGIN, 200, 404, 404, 403, 403)),
          ("firm_deleted", need("firm_deleted"), R(LOGIN, 404, 404, 404, 404, 403)),
          ("other_coord", need("other_coord"), R(LOGIN, 404, 200, 404, 403, 403)),
          ("other_draft", need("other_draft"), R(LOGIN, 404, 200, 404, 403, 403)),
          ("cap_public", cap("cap_public"), R(LOGIN, 403, 403, 200, 403, 403)),
          ("cap_draft", cap("cap_draft"), R(LOGIN, 404, 404, 200, 403, 403)),
          ("missing", {"kind": "needs", "listing_id": MISSING_ID}, R(LOGIN, 404, 404, 404, 404, 404)),
          ("huge_id", {"kind": "needs", "listing_id": HUGE_ID}, R(LOGIN, 404, 404, 404, 404, 404)),
      ]],

    # --- listings: owner actions (POST only) ---------------------------------------------------------------
    # submit: the owner's refused submit of a published need is a redirect with a message (409 in the service)
    Case("listings.submit", "POST", R(LOGIN, REDIR, 404, 404, 403, 403), need("firm_draft"), "firm_draft"),
    Case("listings.submit", "POST", R(LOGIN, REDIR, 403, 403, 403, 403), need("firm_public"), "firm_public"),
    Case("listings.submit", "POST", R(LOGIN, REDIR, 404, 404, 403, 403), need("firm_coord"), "firm_coord"),
    Case("listings.submit", "POST", R(LOGIN, 404, 404, 404, 404, 403), need("firm_deleted"), "firm_deleted"),
    Case("listings.submit", "POST", R(LOGIN, 404, REDIR, 404, 403, 403), need("other_draft"), "other_draft"),
    Case("listings.submit", "POST", R(LOGIN, 404, 404, REDIR, 403, 403), cap("cap_draft"), "cap_draft"),
    Case("listings.submit", "POST", R(LOGIN, 404, 404, 404, 404, 404),
         {"kind": "needs", "listing_id": MISSING_ID}, "missing"),
    # close: owners, and coordinators (who broker every listing)
    Case("listings.close", "POST", R(LOGIN, REDIR, 404, 404, REDIR, REDIR), need("firm_draft"), "firm_draft"),
    Case("listings.close", "POST", R(LOGIN, REDIR, 403, 403, REDIR, REDIR), need("firm_public"), "firm_public"),
    Case("listings.close", "POST", R(LOGIN, REDIR, 404, 404, REDIR, REDIR), need("firm_coord"), "firm_coord"),
    Case("listings.close", "POST", R(LOGIN, 404, 404, 404, 404, 403), need("firm_deleted"), "firm_deleted"),
    Case("listings.close", "POST", R(LOGIN, 404, REDIR, 404, REDIR, REDIR), need("other_draft"), "other_draft"),
    Case("listings.close", "POST", R(LOGIN, 403, 403, REDIR, REDIR, REDIR), cap("cap_public"), "cap_public"),
    # delete: owners and administrators only
    Case("listings.delete", "POST", R(LOGIN, REDIR, 404, 404, 403, REDIR), need("firm_draft"), "firm_draft"),
    Case("listings.delete", "POST", R(LOGIN, REDIR, 403, 403, 403, REDIR), need("firm_public"), "firm_public"),
    Case("listings.delete", "POST", R(LOGIN, REDIR, 404, 404, 403, REDIR), need("firm_coord"), "firm_coord"),
    Case("listings.delete", "POST", R(LOGIN, 404, 404, 404, 404, 403), need("firm_deleted"), "firm_deleted"),
    Case("listings.delete", "POST", R(LOGIN, 404, REDIR, 404, 403, REDIR), need("other_draft"), "other_draft"),
    Case("listings.delete", "POST", R(LOGIN, 403, 403, REDIR, 403, REDIR), cap("cap_public"), "cap_public"),

    # --- moderation ---------------------------------------------------------------------------------------
    Case("review.queue", "GET", COORD_GET),
    Case("review.review", "GET", COORD_GET, need("firm_submitted"), "firm_submitted"),
    Case("review.review", "GET", COORD_GET, need("other_coord"), "other_coord"),
    Case("review.review", "GET", COORD_GET, cap("cap_submitted"), "cap_submitted"),
    Case("review.review", "GET", R(LOGIN, 403, 403, 403, 404, 404),
         {"kind": "needs", "listing_id": MISSING_ID}, "missing"),
    # the matrix posts no version: past the access check, a decision on an unseen version is a 409
    Case("review.publish", "POST", R(LOGIN, 403, 403, 403, 409, 409), need("firm_submitted"), "firm_submitted"),
    Case("review.publish", "POST", R(LOGIN, 403, 403, 403, 409, 409), cap("cap_submitted"), "cap_submitted"),
    Case("review.publish", "POST", R(LOGIN, 403, 403, 403, 404, 404),
         {"kind": "needs", "listing_id": MISSING_ID}, "missing"),
    Case("review.send_back", "POST", R(LOGIN, 403, 403, 403, 400, 400), need("firm_submitted"), "firm_submitted"),
    Case("review.send_back", "POST", R(LOGIN, 403, 403, 403, 400, 400), cap("cap_submitted"), "cap_submitted"),

    # --- matching suggestions --------------------------------------------------------------------------------
    # a need's matches follow the need's own visibility (404 where the need itself is hidden)
    Case("suggestions.need_matches", "GET", ALL(200), {"listing_id": "@firm_public"}, "firm_public"),
    Case("suggestions.need_matches", "GET", R(404, 200, 404, 404, 200, 200), {"listing_id": "@firm_coord"},
         "firm_coord"),
    Case("suggestions.need_matches", "GET", R(404, 200, 404, 404, 200, 200), {"listing_id": "@firm_draft"},
         "firm_draft"),
    Case("suggestions.need_matches", "GET", R(404, 404, 200, 404, 200, 200), {"listing_id": "@other_draft"},
         "other_draft"),
    Case("suggestions.need_matches", "GET", R(404, 404, 404, 404, 404, 200), {"listing_id": "@firm_deleted"},
         "firm_deleted"),
    Case("suggestions.need_matches", "GET", ALL(404), {"listing_id": MISSING_ID}, "missing"),
    # "no good match yet": only the need's own firm may ask its hub city's coordinators, and only once published
    Case("suggestions.ask_coordinators", "POST", R(LOGIN, REDIR, 403, 403, 403, 403), {"listing_id": "@firm_public"},
         "firm_public"),
    Case("suggestions.ask_coordinators", "POST", R(LOGIN, REDIR, 404, 404, 403, 403), {"listing_id": "@firm_coord"},
         "firm_coord"),
    Case("suggestions.ask_coordinators", "POST", R(LOGIN, 403, 404, 404, 403, 403), {"listing_id": "@firm_draft"},
         "firm_draft"),
    Case("suggestions.ask_coordinators", "POST", R(LOGIN, 404, 404, 404, 404, 404), {"listing_id": MISSING_ID},
         "missing"),
    Case("suggestions.for_me", "GET", SIGNED_IN_GET),
    # acting on a suggested need: "interested" needs an expert (or a capability of one's own) and a need one
    # may see; "not for me" any need one may see; taking one back only what one dismissed
    Case("suggestions.interested", "POST", R(LOGIN, 403, 403, REDIR, 403, 403), {"listing_id": "@firm_public"},
         "firm_public"),
    Case("suggestions.interested", "POST", R(LOGIN, 403, 404, 404, 403, 403), {"listing_id": "@firm_coord"},
         "firm_coord"),
    Case("suggestions.interested", "POST", R(LOGIN, 404, 404, 404, 404, 404), {"listing_id": MISSING_ID},
         "missing"),
    Case("suggestions.dismiss", "POST", R(LOGIN, REDIR, REDIR, REDIR, REDIR, REDIR), {"listing_id": "@firm_public"},
         "firm_public"),
    Case("suggestions.dismiss", "POST", R(LOGIN, REDIR, 404, 404, REDIR, REDIR), {"listing_id": "@firm_coord"},
         "firm_coord"),
    Case("suggestions.dismiss", "POST", R(LOGIN, 404, 404, 404, 404, 404), {"listing_id": MISSING_ID}, "missing"),
    Case("suggestions.dismissed", "GET", SIGNED_IN_GET),
    Case("suggestions.restore", "POST", R(LOGIN, 404, 404, 404, 404, 404), {"listing_id": "@firm_public"},
         "firm_public"),
    Case("suggestions.restore", "POST", R(LOGIN, 404, 404, 404, 404, 404), {"listing_id": HUGE_ID}, "huge_id"),
    # the posting assistant takes JSON: a form body is a 400 for signed-in users
    Case("suggestions.assist_need", "POST", SIGNED_IN_POST_INVALID),

    # --- inbox ------------------------------------------------------------------------------------------------
    Case("notifications.inbox", "GET", SIGNED_IN_GET),
    Case("notifications.read_all", "POST", R(LOGIN, REDIR, REDIR, REDIR, REDIR, REDIR)),
    # a notification is its owner's alone: anyone else gets 404, not a redirect to its link
    Case("notifications.open_note", "POST", R(LOGIN, REDIR, 404, 404, 404, 404), {"note_id": "@enterprise_note"},
         "enterprise_note"),
    Case("notifications.open_note", "POST", R(LOGIN, 404, 404, 404, 404, 404), {"note_id": MISSING_ID}, "missing"),
    Case("notifications.follow_note", "GET", R(LOGIN, REDIR, 404, 404, 404, 404), {"note_id": "@enterprise_note"},
         "enterprise_note"),
    Case("notifications.follow_note", "GET", R(LOGIN, 404, 404, 404, 404, 404), {"note_id": MISSING_ID}, "missing"),

    # --- administration -----------------------------------------------------------------------------------
    Case("admin.index", "GET", R(LOGIN, 403, 403, 403, 403, REDIR)),
    Case("admin.users", "GET", ADMIN_ONLY_GET),
    Case("admin.audit", "GET", ADMIN_ONLY_GET),
    Case("admin.user_detail", "GET", ADMIN_ONLY_GET, {"user_id": "@enterprise_user"}, "enterprise_user"),
    Case("admin.user_detail", "GET", R(LOGIN, 403, 403, 403, 403, 404), {"user_id": MISSING_ID}, "missing"),
    Case("admin.set_active", "POST", R(LOGIN, 403, 403, 403, 403, 400), {"user_id": "@enterprise_user"},
         "enterprise_user"),
    Case("admin.grant_role", "POST", R(LOGIN, 403, 403, 403, 403, 400), {"user_id": "@enterprise_user"},
         "enterprise_user"),
    Case("admin.revoke_role", "POST", R(LOGIN, 403, 403, 403, 403, REDIR),
         {"user_id": "@enterprise_user", "role": "coordinator"}, "enterprise_user"),
    Case("admin.revoke_role", "POST", R(LOGIN, 403, 403, 403, 403, 400),
         {"user_id": "@enterprise_user", "role": "pope"}, "unknown_role"),

    # --- JSON API /api/v1 (begin) ---------------------------------------------------------------------
    # bearer or cookie auth; anonymous → 401 JSON (never a login redirect); the matrix's form body is not JSON,
    # so requests that get through permission checks end in 400. api_pairing: firm_public × cap_public.
    Case("api.openapi", "GET", ALL(200)),
    Case("api.list_needs", "GET", R(401, 200, 200, 200, 200, 200)),
    Case("api.list_capabilities", "GET", R(401, 200, 200, 200, 200, 200)),
    Case("api.create_need", "POST", R(401, 400, 400, 403, 403, 403)),
    Case("api.create_capability", "POST", R(401, 400, 400, 400, 403, 403)),
    *[Case("api.get_need", "GET", exp, {"listing_id": f"@{t}"}, t) for t, exp in [
        ("firm_public", R(401, 200, 200, 200, 200, 200)), ("firm_coord", R(401, 200, 404, 404, 200, 200)),
        ("firm_draft", R(401, 200, 404, 404, 200, 200)), ("firm_deleted", R(401, 404, 404, 404, 404, 200)),
        ("other_draft", R(401, 404, 200, 404, 200, 200))]],
    Case("api.get_need", "GET", R(401, 404, 404, 404, 404, 404), {"listing_id": MISSING_ID}, "missing"),
    Case("api.get_need", "GET", R(401, 404, 404, 404, 404, 404), {"listing_id": HUGE_ID}, "huge_id"),
    Case("api.get_capability", "GET", R(401, 200, 200, 200, 200, 200), {"listing_id": "@cap_public"}, "cap_public"),
    Case("api.get_capability", "GET", R(401, 404, 404, 200, 200, 200), {"listing_id": "@cap_draft"}, "cap_draft"),
    *[Case("api.update_need", "PATCH", exp, {"listing_id": f"@{t}"}, t) for t, exp in [
        ("firm_public", R(401, 400, 403, 403, 403, 403)), ("firm_coord", R(401, 400, 404, 404, 403, 403)),
        ("firm_draft", R(401, 400, 404, 404, 403, 403)), ("firm_deleted", R(401, 404, 404, 404, 404, 403)),
        ("other_draft", R(401, 404, 400, 404, 403, 403))]],
    Case("api.update_need", "PATCH", R(401, 404, 404, 404, 404, 404), {"listing_id": MISSING_ID}, "missing"),
    Case("api.update_capability", "PATCH", R(401, 403, 403, 400, 403, 403), {"listing_id": "@cap_public"},
         "cap_public"),
    Case("api.update_capability", "PATCH", R(401, 404, 404, 400, 403, 403), {"listing_id": "@cap_draft"},
         "cap_draft"),
    # submit: permission and state are checked before the (refused, rolled back) body
    *[Case("api.submit_need", "POST", exp, {"listing_id": f"@{t}"}, t) for t, exp in [
        ("firm_public", R(401, 409, 403, 403, 403, 403)), ("firm_draft", R(401, 400, 404, 404, 403, 403)),
        ("firm_deleted", R(401, 404, 404, 404, 404, 403)), ("other_draft", R(401, 404, 400, 404, 403, 403))]],
    Case("api.submit_capability", "POST", R(401, 404, 404, 400, 403, 403), {"listing_id": "@cap_draft"},
         "cap_draft"),
    Case("api.need_matches", "GET", R(401, 200, 200, 200, 200, 200), {"listing_id": "@firm_public"}, "firm_public"),
    Case("api.need_matches", "GET", R(401, 200, 404, 404, 200, 200), {"listing_id": "@firm_draft"}, "firm_draft"),
    Case("api.need_matches", "GET", R(401, 404, 200, 404, 200, 200), {"listing_id": "@other_draft"},
         "other_draft"),
    Case("api.list_pairings", "GET", R(401, 200, 200, 200, 200, 200)),
    Case("api.get_pairing", "GET", R(401, 200, 404, 200, 200, 200), {"pairing_id": "@api_pairing"}, "api_pairing"),
    Case("api.get_pairing", "GET", R(401, 404, 404, 404, 404, 404), {"pairing_id": MISSING_ID}, "missing"),
    Case("tokens.tokens", "GET", SIGNED_IN_GET),
    Case("tokens.create_token", "POST", SIGNED_IN_POST_INVALID),
    Case("tokens.revoke_token", "POST", R(LOGIN, REDIR, 404, 404, 404, 404), {"token_id": "@enterprise_token"},
         "enterprise_token"),
    Case("tokens.revoke_token", "POST", R(LOGIN, 404, 404, 404, 404, 404), {"token_id": MISSING_ID}, "missing"),
    # --- JSON API /api/v1 (end) -----------------------------------------------------------------------

    # --- docking fairs (begin) ----------------------------------------------------------------------------
    # an open Chongqing fair by the (unscoped) coordinator; firm_public and firm_coord × cap_public registered;
    # fair_request (firm_public × cap_public, by the enterprise) unanswered; fair_meeting scheduled
    Case("fairs.index", "GET", ALL(200)),
    Case("fairs.detail", "GET", ALL(200), {"fair_id": "@fair"}, "fair"),
    Case("fairs.detail", "GET", R(404, 404, 404, 404, 200, 200), {"fair_id": "@fair_draft"}, "fair_draft"),
    Case("fairs.detail", "GET", ALL(404), {"fair_id": MISSING_ID}, "missing"),
    Case("fairs.new", "GET", COORD_GET),
    Case("fairs.new", "POST", R(LOGIN, 403, 403, 403, 400, 400)),
    Case("fairs.edit", "GET", COORD_GET, {"fair_id": "@fair"}, "fair"),
    Case("fairs.edit", "POST", R(LOGIN, 403, 403, 403, 400, 400), {"fair_id": "@fair"}, "fair"),
    Case("fairs.set_status", "POST", R(LOGIN, 403, 403, 403, REDIR, REDIR), {"fair_id": "@fair", "action": "close"},
         "fair close"),
    Case("fairs.set_status", "POST", R(LOGIN, 403, 403, 403, 409, 409), {"fair_id": "@fair", "action": "held"},
         "open fair held"),
    Case("fairs.run_schedule", "POST", R(LOGIN, 403, 403, 403, REDIR, REDIR), {"fair_id": "@fair"}, "fair"),
    Case("fairs.clear_schedule", "POST", R(LOGIN, 403, 403, 403, REDIR, REDIR), {"fair_id": "@fair"}, "fair"),
    Case("fairs.lock", "POST", R(LOGIN, 403, 403, 403, REDIR, REDIR),
         {"fair_id": "@fair", "meeting_id": "@fair_meeting"}, "fair_meeting"),
    Case("fairs.schedule", "GET", COORD_GET, {"fair_id": "@fair"}, "fair"),
    Case("fairs.schedule_csv", "GET", COORD_GET, {"fair_id": "@fair"}, "fair"),
    Case("fairs.schedule_ics", "GET", COORD_GET, {"fair_id": "@fair"}, "fair"),
    Case("fairs.my_ics", "GET", SIGNED_IN_GET, {"fair_id": "@fair"}, "fair"),
    # the minimal form names no listing: 400 for everyone signed in
    Case("fairs.register", "POST", SIGNED_IN_POST_INVALID, {"fair_id": "@fair"}, "fair"),
    Case("fairs.request_meeting", "POST", SIGNED_IN_POST_INVALID, {"fair_id": "@fair"}, "fair"),
    # only the other side (the expert) answers; the requester 403, a stranger 404, coordinators 403
    Case("fairs.answer", "POST", R(LOGIN, 403, 404, REDIR, 403, 403),
         {"fair_id": "@fair", "request_id": "@fair_request", "answer": "accept"}, "fair_request"),
    # --- docking fairs (end) ------------------------------------------------------------------------------

    # --- challenges, vouchers, dashboards (begin) ----------------------------------------------------------
    # challenge on firm_public (published by 重庆甲公司): managed by the firm and coordinators; experts bid
    Case("challenges.index", "GET", ALL(200)),
    Case("challenges.create", "GET", R(LOGIN, 200, 403, 403, 200, 200), {"need_id": "@firm_public"}, "firm_public"),
    Case("challenges.create", "GET", R(LOGIN, 404, 404, 404, 404, 404), {"need_id": MISSING_ID}, "missing"),
    Case("challenges.create", "POST", R(LOGIN, 400, 403, 403, 400, 400), {"need_id": "@firm_public"},
         "firm_public"),
    Case("challenges.detail", "GET", ALL(200), {"challenge_id": "@challenge"}, "challenge"),
    Case("challenges.detail", "GET", ALL(404), {"challenge_id": MISSING_ID}, "missing"),
    Case("challenges.bid", "POST", R(LOGIN, 403, 403, 400, 403, 403), {"challenge_id": "@challenge"}, "challenge"),
    Case("challenges.start_shortlisting", "POST", R(LOGIN, REDIR, 403, 403, REDIR, REDIR),
         {"challenge_id": "@challenge"}, "challenge"),
    # shortlisting / awarding a bid of an open challenge is refused with a message (redirect) for managers
    Case("challenges.shortlist", "POST", R(LOGIN, REDIR, 403, 403, REDIR, REDIR),
         {"challenge_id": "@challenge", "bid_id": "@challenge_bid"}, "challenge_bid"),
    Case("challenges.award", "POST", R(LOGIN, REDIR, 403, 403, REDIR, REDIR),
         {"challenge_id": "@challenge", "bid_id": "@challenge_bid"}, "challenge_bid"),
    Case("challenges.award", "POST", R(LOGIN, 404, 404, 404, 404, 404),
         {"challenge_id": MISSING_ID, "bid_id": "@challenge_bid"}, "missing"),
    Case("challenges.cancel", "POST", R(LOGIN, 400, 403, 403, 400, 400), {"challenge_id": "@challenge"},
         "challenge"),
    Case("challenges.invite", "POST", R(LOGIN, REDIR, 403, 403, REDIR, REDIR), {"challenge_id": "@challenge"},
         "challenge"),
    # voucher of 重庆甲公司: its members redeem; coordinators see and revoke; everyone else 404
    Case("vouchers.index", "GET", SIGNED_IN_GET),
    Case("vouchers.issue", "GET", COORD_GET),
    Case("vouchers.issue", "POST", R(LOGIN, 403, 403, 403, 400, 400)),
    Case("vouchers.detail", "GET", R(LOGIN, 200, 404, 404, 200, 200), {"voucher_id": "@voucher"}, "voucher"),
    Case("vouchers.detail", "GET", R(LOGIN, 404, 404, 404, 404, 404), {"voucher_id": MISSING_ID}, "missing"),
    Case("vouchers.redeem", "POST", R(LOGIN, 400, 404, 404, 403, 403), {"voucher_id": "@voucher"}, "voucher"),
    Case("vouchers.revoke", "POST", R(LOGIN, 403, 404, 404, 400, 400), {"voucher_id": "@voucher"}, "voucher"),
    Case("dashboards.index", "GET", COORD_GET),
    Case("dashboards.export_csv", "GET", COORD_GET),
    Case("dashboards.static", "GET", ALL(200), {"filename": "dashboards.js"}),
    # --- challenges, vouchers, dashboards (end) ------------------------------------------------------------

    # --- pairings and coordinator workspace (begin) --------------------------------------------------------
    # the pairing: api_pairing (firm_public × cap_public, proposed); 成都乙公司 is an outsider
    Case("pairings.mine", "GET", SIGNED_IN_GET),
    Case("pairings.detail", "GET", R(LOGIN, 200, 404, 200, 200, 200), {"pairing_id": "@api_pairing"}, "pairing"),
    Case("pairings.detail", "GET", R(LOGIN, 404, 404, 404, 404, 404), {"pairing_id": MISSING_ID}, "missing"),
    Case("pairings.respond", "POST", R(LOGIN, REDIR, 404, REDIR, REDIR, REDIR), {"pairing_id": "@api_pairing"},
         "pairing"),
    Case("pairings.judge", "POST", R(LOGIN, 400, 404, 400, 400, 400), {"pairing_id": "@api_pairing"}, "pairing"),
    # withdrawn by whoever proposed it (nobody here) or a coordinator in scope; the parties may not
    Case("pairings.withdraw", "POST", R(LOGIN, 403, 404, 403, REDIR, REDIR), {"pairing_id": "@api_pairing"},
         "pairing"),
    Case("pairings.schedule", "POST", R(LOGIN, REDIR, 404, REDIR, REDIR, REDIR), {"pairing_id": "@api_pairing"},
         "pairing"),
    Case("pairings.outcome", "POST", R(LOGIN, REDIR, 404, REDIR, REDIR, REDIR), {"pairing_id": "@api_pairing"},
         "pairing"),
    Case("pairings.respond", "POST", R(LOGIN, 404, 404, 404, 404, 404), {"pairing_id": MISSING_ID}, "missing"),
    Case("pairings.propose", "POST", R(LOGIN, 404, 404, 404, 404, 404)),
    Case("pairings.queue", "GET", COORD_GET),
    Case("pairings.assign", "GET", COORD_GET),
    Case("pairings.assign", "POST", R(LOGIN, 403, 403, 403, REDIR, REDIR)),
    # --- pairings and coordinator workspace (end) ----------------------------------------------------------

    # --- bulk CSV import/export (begin) --------------------------------------------------------------------
    Case("bulk.export", "GET", COORD_GET, {"kind": "needs"}, "needs"),
    Case("bulk.export", "GET", COORD_GET, {"kind": "capabilities"}, "capabilities"),
    Case("bulk.import_csv", "GET", COORD_GET),
    Case("bulk.import_csv", "POST", R(LOGIN, 403, 403, 403, 400, 400)),
    Case("bulk.report_csv", "POST", R(LOGIN, 403, 403, 403, 400, 400)),
    # --- bulk CSV import/export (end) ----------------------------------------------------------------------
]

#: a POST "minimal form": one unrelated field, so the form data is not empty (an empty body would make
#: Flask-WTF fall back to the object's current values and actually save on some pages)
MINIMAL_FORM = {"probe": "1"}


# --- fixtures -----------------------------------------------------------------------------------------


NEED_TARGETS = ("firm_public", "firm_coord", "firm_draft", "firm_submitted", "firm_deleted", "other_coord",
                "other_draft")
#: target → (phone, email): a distinct private contact per need, to tell exactly which one leaked
CONTACTS = {t: (f"023-6{i:03d}-7788", f"private.{t}@contact.test") for i, t in enumerate(NEED_TARGETS, 1)}


def _api_objs(made, world) -> dict:
    """JSON API: a pairing of firm_public × cap_public and a token of the enterprise user."""
    from matchmaker.api.auth import create_token
    from matchmaker.pairings.models import Pairing
    pairing = Pairing(need_id=made["firm_public"].id, capability_id=made["cap_public"].id,
                      expert_id=world["expert"].expert_profile.id, state="proposed", origin="coordinator")
    db.session.add(pairing)
    token, _secret = create_token(world["enterprise"], "matrix")
    db.session.commit()
    return {"api_pairing": pairing.id, "enterprise_token": token.id}


@pytest.fixture
def objs(make, world):
    """Listings on both sides of the organization boundary, by state and visibility; returns name → id."""
    ent, other, expert = world["enterprise"], world["other_enterprise"], world["expert"]

    def n(owner, target, status, **kw):
        phone, email = CONTACTS[target]
        return make.need(owner, status=status, title=f"需求标题-{target}", contact_phone=phone,
                         contact_email=email, **kw)

    made = {
        "firm_public": n(ent, "firm_public", "published"),
        "firm_coord": n(ent, "firm_coord", "published", visibility="coordinators"),
        "firm_draft": n(ent, "firm_draft", "draft"),
        "firm_submitted": n(ent, "firm_submitted", "submitted"),
        "firm_deleted": n(ent, "firm_deleted", "published"),
        "other_coord": n(other, "other_coord", "published", visibility="coordinators", hub_city="chengdu"),
        "other_draft": n(other, "other_draft", "draft", hub_city="chengdu"),
        "cap_public": make.capability(expert, title="能力标题-cap_public"),
        "cap_draft": make.capability(expert, status="draft", title="能力标题-cap_draft"),
        "cap_submitted": make.capability(expert, status="submitted", title="能力标题-cap_submitted"),
    }
    ops.delete_listing(made["firm_deleted"], ent)
    [note] = notify([ent], "test", "您的需求已发布", link=f"/needs/{made['firm_public'].id}", email=False)
    db.session.commit()
    ids = {name: obj.id for name, obj in made.items()}
    ids.update(_api_objs(made, world))  # JSON API
    ids.update(_fair_objs(made, world))  # docking fairs
    ids.update(_programme_objs(made, world))  # challenges, vouchers
    ids.update(firm=world["firm"].id, other_firm=world["other_firm"].id, institute=world["institute"].id,
               enterprise_user=ent.id, enterprise_note=note.id, join_request=_join_request(make, world))
    return ids


def _join_request(make, world) -> int:
    from matchmaker.accounts.models import MembershipRequest
    stranger = make.user(Role.ENTERPRISE)
    join_request = MembershipRequest(user=stranger, organization=world["firm"])
    db.session.add(join_request)
    db.session.commit()
    return join_request.id


def _programme_objs(made, world) -> dict:
    """A challenge on firm_public with the expert's bid, and a voucher of 重庆甲公司."""
    from datetime import date, timedelta
    from decimal import Decimal

    from matchmaker.challenges import operations as challenge_ops
    from matchmaker.core.time import utcnow
    from matchmaker.vouchers import operations as voucher_ops
    challenge = challenge_ops.publish_challenge(made["firm_public"], world["enterprise"], reward=Decimal("100000"),
                                                deadline=utcnow() + timedelta(days=30), terms="矩阵测试条款")
    bid = challenge_ops.submit_bid(challenge, world["expert"], approach="方案", team_members="",
                                   budget=Decimal("1000"), timeline_months=6)
    voucher = voucher_ops.issue_voucher(world["coordinator"], world["firm"], amount=Decimal("10000"),
                                        expires_on=date(2099, 1, 1), hub_city="chongqing")
    db.session.commit()
    return {"challenge": challenge.id, "challenge_bid": bid.id, "voucher": voucher.id}


def _fair_objs(made, world) -> dict:
    """Docking fairs: an open fair with one unanswered request and one scheduled meeting, and a draft fair."""
    from datetime import datetime, timedelta, timezone

    from matchmaker.fairs import operations as fair_ops
    start = datetime(2031, 5, 20, 1, 0, tzinfo=timezone.utc)
    data = {"title": "矩阵测试对接会", "starts_at": start, "ends_at": start + timedelta(hours=2), "mode": "onsite",
            "registration_deadline": start - timedelta(days=1), "place": "重庆", "hub_city": "chongqing",
            "slot_minutes": 30, "tables": 3}
    coord, ent, expert = world["coordinator"], world["enterprise"], world["expert"]
    fair, draft = fair_ops.create_fair(coord, data), fair_ops.create_fair(coord, data)
    fair_ops.open_fair(fair, coord)
    for name, owner in (("firm_public", ent), ("firm_coord", ent), ("cap_public", expert)):
        fair_ops.register_listing(fair, made[name], owner)
    req = fair_ops.request_meeting(fair, made["firm_public"], made["cap_public"], ent)
    fair_ops.accept_request(fair_ops.request_meeting(fair, made["firm_coord"], made["cap_public"], ent), expert)
    fair_ops.run_scheduler(fair, coord)
    [meeting] = fair_ops.meetings(fair)
    return {"fair": fair.id, "fair_draft": draft.id, "fair_request": req.id, "fair_meeting": meeting.id}


def _url(app, case: Case, ids: dict) -> str:
    args = {k: (ids[v[1:]] if isinstance(v, str) and v.startswith("@") else v) for k, v in case.args.items()}
    with app.test_request_context():
        from flask import url_for
        return url_for(case.endpoint, **args)


def _request(client, method: str, url: str):
    if method == "GET":
        return client.get(url)
    return client.open(url, method=method, data=MINIMAL_FORM)  # POST, PATCH (JSON API)


def _describe(resp) -> str:
    location = resp.headers.get("Location")
    return f"{resp.status_code}" + (f" → {location}" if location else "")


def check_outcome(resp, expected, path: str) -> str | None:
    """None if ``resp`` matches ``expected``, else what went wrong."""
    got = _describe(resp)
    if resp.status_code >= 500:
        return f"server error {got}"
    if expected == LOGIN:
        if resp.status_code != 302:
            return f"expected a redirect to the login page, got {got}"
        loc = urlsplit(resp.headers["Location"])
        nxt = parse_qs(loc.query).get("next", [""])[0]
        if loc.path != "/login" or urlsplit(nxt).path != path:
            return f"expected 302 → /login?next={path}, got {got}"
        return None
    if expected == REDIR:
        if resp.status_code not in (302, 303):
            return f"expected a redirect (302/303), got {got}"
        if urlsplit(resp.headers["Location"]).path == "/login":
            return f"expected a redirect that is not to the login page, got {got}"
        return None
    if resp.status_code != expected:
        return f"expected {expected}, got {got}"
    return None


# --- completeness ---------------------------------------------------------------------------------------

def _declared() -> set[tuple[str, str]]:
    return {(c.endpoint, c.method) for c in CASES}


def test_every_route_has_declared_expectations(app):
    """Does every route and method of the app have an entry in the matrix (no new route goes unchecked)?"""
    missing = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if (rule.endpoint, method) not in _declared():
                missing.append(f"{method} {rule.rule} (endpoint {rule.endpoint!r})")
    assert not missing, ("routes without a declared authorization expectation in tests/core/test_authz_matrix.py "
                         "CASES — add one per role:\n  " + "\n  ".join(missing))


def test_no_expectation_for_a_route_that_is_gone(app):
    """Does every matrix entry still name an existing endpoint and method (no stale, silently skipped rows)?"""
    existing = {(r.endpoint, m) for r in app.url_map.iter_rules() for m in (r.methods or set())}
    stale = sorted(f"{m} {e}" for e, m in _declared() if (e, m) not in existing)
    assert not stale, "matrix entries for routes that no longer exist: " + ", ".join(stale)


@pytest.mark.nodb
def test_every_case_names_every_role():
    """Does every matrix entry give an expectation for each of the six roles?"""
    incomplete = [c.label() for c in CASES if set(c.expect) != set(ROLES)]
    assert not incomplete, incomplete


# --- the matrix -----------------------------------------------------------------------------------------

MATRIX = [pytest.param(case, role, id=f"{case.label()} as {role}") for case in CASES for role in ROLES]


@pytest.mark.parametrize(("case", "role"), MATRIX)
def test_route_outcome_for_role(app, client_as, objs, case: Case, role: str):
    """Does this role get exactly the declared outcome on this route (and never a 500)?"""
    url = _url(app, case, objs)
    client = client_as(None if role == "anonymous" else role)
    resp = _request(client, case.method, url)
    problem = check_outcome(resp, case.expect[role], urlsplit(url).path)
    assert problem is None, f"{case.method} {url} ({case.endpoint}) as {role}: {problem}"


# --- IDOR: another organization's needs -----------------------------------------------------------------

IDOR_ACTIONS = [
    ("view", "GET", "detail"), ("edit form", "GET", "edit"), ("edit save", "POST", "edit"),
    ("submit", "POST", "submit"), ("close", "POST", "close"), ("delete", "POST", "delete"),
]


@pytest.mark.parametrize("target", ["firm_draft", "firm_coord", "firm_submitted"])
@pytest.mark.parametrize(("action", "method", "endpoint"), IDOR_ACTIONS, ids=[a[0] for a in IDOR_ACTIONS])
def test_other_enterprise_cannot_touch_a_foreign_hidden_need(app, client_as, objs, target, action, method,
                                                              endpoint):
    """Can another enterprise view, edit, submit, close or delete a need of another organization that is not
    public (draft, submitted, coordinators-only)? It must get a 404 (existence not leaked) and change nothing."""
    listing = db.session.get(Need, objs[target])
    before = (listing.status, listing.deleted_at, listing.version, listing.title, listing.closed_at)
    url = _url(app, Case(f"listings.{endpoint}", method, {}, need(target)), objs)
    data = {"title": "被篡改的标题", "industry": "big_data", "problems": "x", "targets": "y",
            "coop_modes": ["consulting"], "hub_city": "qingdao", "contact_name": "攻击者",
            "contact_email": "evil@example.test", "visibility": "public", "save_submit": "1",
            "version": str(listing.version)}
    client = client_as("other_enterprise")
    resp = client.get(url) if method == "GET" else client.post(url, data=data)
    assert resp.status_code == 404, f"{method} {url} as other_enterprise: expected 404, got {_describe(resp)}"
    db.session.expire_all()
    listing = db.session.get(Need, objs[target])
    after = (listing.status, listing.deleted_at, listing.version, listing.title, listing.closed_at)
    assert after == before, f"{action} by another enterprise changed the need: {before} → {after}"


@pytest.mark.parametrize("action", ["edit save", "submit", "close", "delete"])
def test_other_enterprise_cannot_change_a_foreign_public_need(app, client_as, objs, action):
    """Can another enterprise change a published public need it can see? It must get 403 and change nothing."""
    listing = db.session.get(Need, objs["firm_public"])
    before = (listing.status, listing.deleted_at, listing.version, listing.title)
    endpoint = "edit" if action == "edit save" else action
    url = _url(app, Case(f"listings.{endpoint}", "POST", {}, need("firm_public")), objs)
    data = {"title": "被篡改的标题", "industry": "big_data", "problems": "x", "targets": "y",
            "coop_modes": ["consulting"], "hub_city": "qingdao", "contact_name": "攻击者",
            "contact_email": "evil@example.test", "visibility": "public", "save_submit": "1",
            "version": str(listing.version)}
    resp = client_as("other_enterprise").post(url, data=data)
    assert resp.status_code == 403, f"POST {url} as other_enterprise: expected 403, got {_describe(resp)}"
    db.session.expire_all()
    listing = db.session.get(Need, objs["firm_public"])
    assert (listing.status, listing.deleted_at, listing.version, listing.title) == before


# --- private contact --------------------------------------------------------------------------------------

CONTACT_SEES = {"anonymous": False, "enterprise": True, "other_enterprise": False, "expert": False,
                "coordinator": True, "admin": True}


@pytest.mark.parametrize("target", ["firm_public", "firm_coord"])
@pytest.mark.parametrize("role", ROLES)
def test_private_contact_only_for_owner_and_coordinators(app, client_as, objs, role, target):
    """Is a need's private contact (phone, email) on its page for the owner and coordinators only — absent
    for another enterprise, an expert and anonymous visitors?"""
    phone, email = CONTACTS[target]
    url = _url(app, Case("listings.detail", "GET", {}, need(target)), objs)
    resp = client_as(None if role == "anonymous" else role).get(url)
    assert resp.status_code in (200, 404), f"GET {url} as {role}: {_describe(resp)}"
    body = resp.get_data(as_text=True)
    for secret in (phone, email):
        if CONTACT_SEES[role]:
            assert resp.status_code == 200 and secret in body, f"{role} should see {secret} on {url}"
        else:
            assert secret not in body, f"private contact {secret} leaked to {role} on {url}"


@pytest.mark.parametrize("role", ["anonymous", "other_enterprise", "expert"])
@pytest.mark.parametrize("page", ["/", "/needs", "/capabilities", "/my"])
def test_private_contact_absent_from_list_pages(app, client_as, objs, role, page):
    """Do listing pages (home, browse, my listings) keep every need's private contact from outsiders?"""
    body = client_as(None if role == "anonymous" else role).get(page, follow_redirects=True).get_data(as_text=True)
    leaked = [s for target, pair in CONTACTS.items() if target.startswith("firm") for s in pair if s in body]
    assert not leaked, f"{page} as {role} shows private contacts {leaked}"


@pytest.mark.parametrize("role", ["anonymous", "other_enterprise", "expert"])
def test_contact_is_not_a_search_oracle(app, client_as, objs, role):
    """Can an outsider find a need by searching for its private phone or email? (No: 0 results.)"""
    phone, email = CONTACTS["firm_public"]
    client = client_as(None if role == "anonymous" else role)
    for secret in (email, phone):
        body = client.get("/needs", query_string={"q": secret}).get_data(as_text=True)
        assert "需求标题-firm_public" not in body, f"searching {secret!r} as {role} finds the need"


# --- list pages respect the same visibility ---------------------------------------------------------------

LISTED = {  # role → targets whose titles must appear on /needs; every other firm/other need must not
    "anonymous": {"firm_public"},
    "enterprise": {"firm_public", "firm_coord"},
    "other_enterprise": {"firm_public", "other_coord"},
    "expert": {"firm_public"},
    "coordinator": {"firm_public", "firm_coord", "other_coord"},
    "admin": {"firm_public", "firm_coord", "other_coord"},
}


@pytest.mark.parametrize("role", ROLES)
def test_browse_lists_only_what_the_role_may_see(client_as, objs, role):
    """Does /needs list published needs the role may see — never drafts, submitted, deleted needs, nor another
    organization's coordinators-only needs?"""
    body = client_as(None if role == "anonymous" else role).get("/needs").get_data(as_text=True)
    for target in ("firm_public", "firm_coord", "firm_draft", "firm_submitted", "firm_deleted", "other_coord",
                   "other_draft"):
        shown = f"需求标题-{target}" in body
        assert shown == (target in LISTED[role]), (
            f"/needs as {role}: {target} {'listed' if shown else 'missing'}, expected "
            f"{'listed' if target in LISTED[role] else 'hidden'}")


@pytest.mark.parametrize("role", ["enterprise", "other_enterprise", "expert"])
def test_my_listings_shows_only_own_organization(client_as, objs, role):
    """Does "my listings" show only the user's own organization's needs (no IDOR through the list)?"""
    body = client_as(role).get("/my").get_data(as_text=True)
    own_prefix = {"enterprise": "firm_", "other_enterprise": "other_", "expert": "cap_"}[role]
    for target in ("firm_public", "firm_coord", "firm_draft", "firm_submitted", "other_coord", "other_draft"):
        shown = f"需求标题-{target}" in body
        assert shown == target.startswith(own_prefix), f"/my as {role}: {target} shown={shown}"


@pytest.mark.parametrize("role", ["anonymous", "other_enterprise", "expert"])
def test_private_contact_absent_from_match_page(client_as, objs, role):
    """Does a public need's matches page keep the need's private contact from outsiders?"""
    resp = client_as(None if role == "anonymous" else role).get(f"/needs/{objs['firm_public']}/matches")
    assert resp.status_code == 200, _describe(resp)
    body = resp.get_data(as_text=True)
    leaked = [s for s in CONTACTS["firm_public"] if s in body]
    assert not leaked, f"/needs/<id>/matches as {role} shows private contacts {leaked}"


# --- the matrix again, with every cache on and warm ------------------------------------------------------

#: answers that change by themselves between two requests and are never cached (process counters)
_LIVE = {"observability.metrics_endpoint"}
GET_CASES = [pytest.param(case, id=case.label()) for case in CASES if case.method == "GET"]


def _set_caches(app, on: bool) -> None:
    app.config.update(PAGE_CACHE=on, SHARED_CACHE=on)


#: what differs between two renders of the same page a moment apart: signed CSRF tokens (timestamped), an
#: iCalendar file's DTSTAMP, an age in seconds ("7秒钟" in the review queue)
_PER_RENDER = re.compile(r"[\w-]{20,}\.[\w-]{6}\.[\w-]{20,}|DTSTAMP:\w+|\d+ ?(?:秒钟|seconds?)")


def _settled(client, role: str):
    """The client with its session's timeout stamps set, as after its first request: the per-session page
    cache serves it from the next request on."""
    if role != "anonymous":
        with client.session_transaction() as session:
            session[LOGIN_AT] = session[SEEN_AT] = utcnow().timestamp()
    return client


@pytest.mark.parametrize("case", GET_CASES)
def test_route_outcomes_with_every_cache_on(app, client_as, objs, case: Case):
    """With every cache on and warmed by the other roles first (the per-session page cache and the caches
    shared across users: rankings, counts, page parts), does each role still get its declared outcome and
    the very page it gets with every cache off — never one rendered for someone else?

    All six roles ask for the same URL in one test (so their entries meet): a first pass fills the caches, a
    second one in reverse order is answered from them, a third with every cache off is the reference. Only
    GETs: nothing else is ever served from a cache."""
    url = _url(app, case, objs)
    path = urlsplit(url).path
    clients = {role: _settled(client_as(None if role == "anonymous" else role), role) for role in ROLES}
    seen: dict[str, str] = {}
    for order in (ROLES, tuple(reversed(ROLES))):
        for role in order:
            resp = clients[role].get(url)
            problem = check_outcome(resp, case.expect[role], path)
            assert problem is None, f"GET {url} ({case.endpoint}) as {role}, caches on: {problem}"
            seen[role] = _PER_RENDER.sub("<token>", resp.get_data(as_text=True))
    _set_caches(app, False)
    try:
        for role in ROLES:
            uncached = _PER_RENDER.sub("<token>", clients[role].get(url).get_data(as_text=True))
            if case.endpoint in _LIVE:  # the outcomes above were checked; the bodies are live counters
                continue
            assert seen[role] == uncached, f"GET {url} as {role}: the cached page differs from the uncached one"
    finally:
        _set_caches(app, True)
