"""JSON API /api/v1: token authentication, permission parity with the web pages, pagination, validation,
owner actions, CSRF for cookie sessions, pairings and the OpenAPI document."""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from matchmaker.accounts.tokens import ApiToken
from matchmaker.api import schemas
from matchmaker.api.openapi import build_document
from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.core.time import utcnow
from matchmaker.extensions import db
from matchmaker.listings import operations as ops
from matchmaker.listings.models import Capability, Need
from matchmaker.listings.queries import visible_listings
from matchmaker.pairings.models import Pairing
from tests.helpers import Api, login, make_token

API = "/api/v1"


@pytest.fixture
def objs(make, world):
    ent, other, expert = world["enterprise"], world["other_enterprise"], world["expert"]
    make_need = make.need
    make.need = lambda *a, **kw: make_need(*a, **{"contact_email": "wang@example.com", **kw})
    made = {
        "firm_public": make.need(ent, title="需求-公开"),
        "firm_coord": make.need(ent, title="需求-仅协调员", visibility="coordinators"),
        "firm_draft": make.need(ent, status="draft", title="需求-草稿"),
        "other_draft": make.need(other, status="draft", title="乙-草稿", hub_city="chengdu"),
        "other_public": make.need(other, title="乙-公开", hub_city="chengdu", industry="biomedicine"),
        "cap_public": make.capability(expert, title="能力-公开"),
        "cap_draft": make.capability(expert, status="draft", title="能力-草稿"),
    }
    return made


def conforms(body, schema):
    problems = schemas.validate(body, schema)
    assert not problems, problems


VALID_NEED = {
    "title": "高精度减速器齿面磨削工艺", "industry": "smart_manufacturing",
    "problems": "齿面粗糙度不稳定，批量一致性差。", "targets": "Ra≤0.2μm，一致性≥95%。",
    "coop_modes": ["joint_dev", "consulting"], "hub_city": "chongqing",
    "contact_name": "李工", "contact_email": "li@example.com",
}


# --- tokens ---------------------------------------------------------------------------------------------

def test_token_page_shows_secret_once_and_stores_only_its_hash(app, world):
    """Does creating a token on the page show the secret once, store only its SHA-256 hash, and does the
    token then authenticate API calls until it is revoked (401 with a reason afterwards)?"""
    user = world["enterprise"]
    user.locale = "en"  # reasons in English for the assertions (they are translated per user)
    db.session.commit()
    web = login(app.test_client(), user)
    resp = web.post("/profile/tokens", data={"name": "CRM sync", "expires_in": "90"})
    assert resp.status_code == 201
    secret = re.search(r'id="new-token-secret"[^>]*value="(mmk_[A-Za-z0-9_\-]+)"', resp.get_data(as_text=True))
    assert secret, "the new secret is shown"
    secret = secret.group(1)
    assert resp.headers["Cache-Control"] == "no-store"

    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(token.prefix) and len(token.prefix) < len(secret) // 2
    assert token.expires_at is not None
    assert secret not in repr([getattr(token, c.key) for c in ApiToken.__table__.columns])

    again = web.get("/profile/tokens").get_data(as_text=True)
    assert secret not in again and token.prefix in again, "listed by prefix, the secret is never shown again"

    api = Api(app, secret)
    assert api.get(f"{API}/needs").status_code == 200
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).last_used_at is not None

    assert web.post(f"/profile/tokens/{token.id}/revoke").status_code == 303
    resp = api.get(f"{API}/needs?lang=en")
    assert resp.status_code == 401
    assert resp.json["status"] == 401 and "revoked" in resp.json["reason"]
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "api_tokens")).all()
    assert actions == ["api_token.create", "api_token.revoke"]


def test_someone_elses_token_cannot_be_revoked(app, world):
    """Is revoking another user's token a 404 that leaves the token working?"""
    secret = make_token(world["enterprise"])
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == world["enterprise"].id))
    web = login(app.test_client(), world["other_enterprise"])
    assert web.post(f"/profile/tokens/{token.id}/revoke").status_code == 404
    assert Api(app, secret).get(f"{API}/needs").status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer mmk_not-a-real-token", "Basic dXNlcjpwdw==",
                                    "Bearer " + "x" * 5000])
def test_missing_or_invalid_token_is_401_json(app, world, header):
    """Is a request without a valid bearer token refused with 401 JSON {error, reason, status} and a
    WWW-Authenticate header (not a redirect to the login page)?"""
    client = app.test_client()
    resp = client.get(f"{API}/needs", headers={"Authorization": header} if header else {})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    conforms(resp.json, schemas.ERROR)
    assert resp.json["reason"]


def test_expired_token_and_inactive_user_are_refused(app, world):
    """Is an expired token refused, and is a valid token of a deactivated user refused?"""
    world["enterprise"].locale = world["expert"].locale = "en"
    secret = make_token(world["enterprise"], days=30)
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == world["enterprise"].id))
    token.created_at = utcnow() - timedelta(days=40)
    token.expires_at = utcnow() - timedelta(days=10)
    db.session.commit()
    resp = Api(app, secret).get(f"{API}/needs?lang=en")
    assert resp.status_code == 401 and "expired" in resp.json["reason"]

    secret = make_token(world["expert"])
    world["expert"].active = False
    db.session.commit()
    resp = Api(app, secret).get(f"{API}/needs?lang=en")
    assert resp.status_code == 401 and "deactivated" in resp.json["reason"]


# --- reading: parity with the web pages -------------------------------------------------------------------

@pytest.mark.parametrize("role", ["enterprise", "other_enterprise", "expert", "coordinator", "admin"])
@pytest.mark.parametrize("model,slug", [(Need, "needs"), (Capability, "capabilities")])
def test_list_shows_exactly_what_visible_listings_allows(app, world, objs, api_as, role, model, slug):
    """Does the API list exactly the listings ``visible_listings`` gives this role (the web browse rule)?"""
    resp = api_as(role).get(f"{API}/{slug}?per_page=100")
    assert resp.status_code == 200
    expected = set(db.session.scalars(visible_listings(model, world[role]).with_only_columns(model.id)))
    assert {i["id"] for i in resp.json["items"]} == expected
    assert resp.json["total"] == len(expected)


@pytest.mark.parametrize("role,target,status", [
    ("other_enterprise", "firm_draft", 404), ("other_enterprise", "firm_coord", 404),
    ("expert", "firm_coord", 404), ("enterprise", "other_draft", 404),
    ("enterprise", "firm_draft", 200), ("coordinator", "firm_coord", 200), ("other_enterprise", "firm_public", 200),
])
def test_detail_follows_can_view(app, objs, api_as, role, target, status):
    """Is a need that the UI hides from this role (another org's draft, coordinators-only) a 404 here too?"""
    resp = api_as(role).get(f"{API}/needs/{objs[target].id}")
    assert resp.status_code == status
    if status == 404:
        conforms(resp.json, schemas.ERROR)


@pytest.mark.parametrize("role,sees", [("enterprise", True), ("coordinator", True), ("other_enterprise", False),
                                       ("expert", False)])
def test_need_contact_only_for_owner_and_coordinators(app, objs, api_as, role, sees):
    """Are a need's contact details present only for its organization and coordinators, in detail and list?"""
    api = api_as(role)
    detail = api.get(f"{API}/needs/{objs['firm_public'].id}").json
    listed = next(i for i in api.get(f"{API}/needs?per_page=100").json["items"] if i["id"] == objs["firm_public"].id)
    for body in (detail, listed):
        conforms(body, schemas.NEED)
        if sees:
            assert body["contact"]["email"] == "wang@example.com"
        else:
            assert body["contact"] is None
            assert "wang@example.com" not in str(body)


def test_missing_and_huge_ids_are_404(app, objs, api_as):
    """Are unknown and out-of-range ids 404 JSON, never a 500?"""
    api = api_as("enterprise")
    for url in (f"{API}/needs/987654321", f"{API}/needs/{2**70}", f"{API}/pairings/{2**70}",
                f"{API}/capabilities/0"):
        resp = api.get(url)
        assert resp.status_code == 404, url
        conforms(resp.json, schemas.ERROR)


# --- pagination and filters -------------------------------------------------------------------------------

def test_pagination_pages_and_links(app, make, world, api_as):
    """Do page/per_page split the list with total, next and prev links (body and Link header) that lead to the
    following pages without overlap?"""
    for i in range(5):
        make.need(world["enterprise"], title=f"分页需求{i}号")
    api = api_as("other_enterprise")
    first = api.get(f"{API}/needs?per_page=2").json
    assert (first["page"], first["per_page"], first["total"], first["prev"]) == (1, 2, 5, None)
    seen, page = [], first
    while True:
        conforms(page, schemas.page_of(schemas.NEED))
        seen += [i["id"] for i in page["items"]]
        if page["next"] is None:
            break
        resp = api.get(page["next"])
        assert 'rel="prev"' in resp.headers["Link"]
        page = resp.json
    assert len(seen) == len(set(seen)) == 5
    assert page["page"] == 3 and page["prev"] is not None
    beyond = api.get(f"{API}/needs?per_page=2&page=9").json
    assert beyond["items"] == [] and beyond["next"] is None and beyond["total"] == 5


@pytest.mark.parametrize("extra", ["endpoint=x", "_method=POST", "_anchor=x", "_external=1&_scheme=javascript",
                                   "endpoint=a&endpoint=b&tag=%E9%94%82+%26+x"])
def test_page_links_carry_query_arguments_as_query(app, make, world, api_as, extra):
    """Are query arguments named like url_for's own (endpoint, _method, _anchor, _external, _scheme) kept as
    plain, repeatable query arguments in next/prev links, never a 500, an anchor or another scheme?"""
    from urllib.parse import parse_qs, urlsplit
    for i in range(3):
        make.need(world["enterprise"], title=f"链接参数需求{i}号")
    api = api_as("other_enterprise")
    resp = api.get(f"{API}/needs?per_page=1&page=2&{extra}")
    assert resp.status_code == 200
    expected = parse_qs(extra)
    for rel in ("next", "prev"):
        link = urlsplit(resp.json[rel])
        assert (link.scheme, link.netloc, link.path, link.fragment) == ("", "", f"{API}/needs", "")
        assert {k: v for k, v in parse_qs(link.query).items() if k in expected} == expected
        assert f'<{resp.json[rel]}>; rel="{rel}"' in resp.headers["Link"]
    following = api.get(resp.json["next"])
    assert following.status_code == 200 and following.json["page"] == 3


def test_pairings_page_links_with_reserved_argument(app, world, pairings, api_as):
    """Does the pairings list answer ?endpoint=x with a page whose next link keeps it, not a 500?"""
    resp = api_as("admin").get(f"{API}/pairings?per_page=1&endpoint=x")
    assert resp.status_code == 200 and resp.json["total"] == 2
    assert resp.json["next"] == f"{API}/pairings?endpoint=x&page=2&per_page=1"


DEEP = "[" * 50000 + "]" * 50000


@pytest.mark.parametrize("body,reason", [
    (DEEP, "The JSON is nested too deeply."),
    ('{"title": ' + "[" * 50000 + "]" * 50000 + "}", "The JSON is nested too deeply."),
    ('{"title": ' + '{"a": ' * 50000 + "1" + "}" * 50001, "The JSON is nested too deeply."),
    ('{"title": "unterminated', "The body is not valid JSON."),
    ("[" * 900 + "]" * 900, "The body must be a JSON object."),
])
def test_unreadable_json_body_is_400(app, world, objs, api_as, body, reason):
    """Is a body nested too deeply to parse (or malformed) a 400 with the reason on create, update and submit,
    never a 500, and nothing is saved?"""
    api = api_as("enterprise")
    before = count_listings()
    draft = objs["firm_draft"]
    for resp in (api.post(f"{API}/needs?lang=en", data=body, content_type="application/json"),
                 api.patch(f"{API}/needs/{draft.id}?lang=en", data=body, content_type="application/json"),
                 api.post(f"{API}/needs/{draft.id}/submit?lang=en", data=body, content_type="application/json")):
        assert resp.status_code == 400
        conforms(resp.json, schemas.ERROR)
        assert resp.json["reason"] == reason
    assert count_listings() == before
    db.session.expire_all()
    assert db.session.get(Need, draft.id).status == "draft"


def count_listings() -> int:
    return len(db.session.scalars(select(Need.id)).all())


@pytest.mark.parametrize("query,field", [("per_page=101", "per_page"), ("per_page=0", "per_page"),
                                         ("page=0", "page"), ("page=abc", "page"), ("page=99999999", "page"),
                                         ("industry=steel", "industry"), ("coop_mode=gift", "coop_mode")])
def test_bad_paging_or_filter_is_400_per_field(app, world, api_as, query, field):
    """Are per_page beyond 1..100, bad page numbers and unknown filter values a 400 naming the parameter?"""
    resp = api_as("enterprise").get(f"{API}/needs?{query}")
    assert resp.status_code == 400
    conforms(resp.json, schemas.ERROR)
    assert field in resp.json["fields"]


def test_filters_and_keyword_search(app, objs, api_as):
    """Do industry, hub_city, coop_mode and q narrow the list as on the browse page?"""
    api = api_as("coordinator")
    ids = lambda q: {i["id"] for i in api.get(f"{API}/needs?{q}").json["items"]}  # noqa: E731
    assert ids("industry=biomedicine") == {objs["other_public"].id}
    assert ids("hub_city=chengdu") == {objs["other_public"].id}
    assert objs["firm_public"].id in ids("coop_mode=joint_dev")
    assert ids("coop_mode=transfer") == set()
    assert ids("q=乙-公开") == {objs["other_public"].id}
    caps = {i["id"] for i in api.get(f"{API}/capabilities?field=new_energy&kind=achievement").json["items"]}
    assert caps == {objs["cap_public"].id}


# --- writing ---------------------------------------------------------------------------------------------

def test_create_need_makes_a_draft_of_the_callers_enterprise(app, world, api_as):
    """Does POST /needs create a draft owned by the caller's enterprise, with Location, audit entry and a body
    that conforms to the Need schema?"""
    resp = api_as("enterprise").post(f"{API}/needs", json={**VALID_NEED, "budget_min": 10, "budget_max": 50,
                                                           "deadline": "2099-01-31"})
    assert resp.status_code == 201, resp.json
    conforms(resp.json, schemas.NEED)
    need = db.session.get(Need, resp.json["id"])
    assert (need.status, need.organization_id, need.created_by_id) == ("draft", world["firm"].id,
                                                                      world["enterprise"].id)
    assert need.coop_modes == ["joint_dev", "consulting"] and need.budget_max == 50
    assert resp.headers["Location"].endswith(f"{API}/needs/{need.id}")
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "need.create",
                                                      AuditEvent.target_id == need.id))


@pytest.mark.parametrize("body,fields", [
    ({}, {"title", "industry", "problems", "targets", "coop_modes", "hub_city", "contact_name", "contact_phone"}),
    ({**VALID_NEED, "title": "短"}, {"title"}),
    ({**VALID_NEED, "title": "x" * 201}, {"title"}),
    ({**VALID_NEED, "industry": "steel"}, {"industry"}),
    ({**VALID_NEED, "coop_modes": ["gift"]}, {"coop_modes"}),
    ({**VALID_NEED, "budget_min": 50, "budget_max": 10}, {"budget_max"}),
    ({**VALID_NEED, "budget_min": -1}, {"budget_min"}),
    ({**VALID_NEED, "deadline": "2001-01-01"}, {"deadline"}),
    ({**VALID_NEED, "deadline": "31/01/2099"}, {"deadline"}),
    ({**VALID_NEED, "contact_email": None}, {"contact_phone"}),
    ({**VALID_NEED, "contact_email": "not-an-email"}, {"contact_email"}),
    ({**VALID_NEED, "title": 12345}, {"title"}),
    ({**VALID_NEED, "coop_modes": "joint_dev"}, {"coop_modes"}),
    ({**VALID_NEED, "coop_modes": [1, 2]}, {"coop_modes"}),
    ({**VALID_NEED, "budget_min": "10"}, {"budget_min"}),
    ({**VALID_NEED, "budget_min": 1.5}, {"budget_min"}),
    ({**VALID_NEED, "budget_min": True}, {"budget_min"}),
    ({**VALID_NEED, "status": "published"}, {"status"}),
    ({**VALID_NEED, "organization_id": 987654}, {"organization_id"}),
])
def test_create_need_validation_errors_per_field(app, world, api_as, body, fields):
    """Is an invalid body (missing, too short/long, unknown enum, wrong JSON type, unknown member, foreign
    organization) a 400 listing exactly the offending fields, with nothing created?"""
    before = db.session.scalar(select(db.func.count()).select_from(Need))
    resp = api_as("enterprise").post(f"{API}/needs", json=body)
    assert resp.status_code == 400, resp.json
    conforms(resp.json, schemas.ERROR)
    assert set(resp.json["fields"]) == fields
    assert db.session.scalar(select(db.func.count()).select_from(Need)) == before


@pytest.mark.parametrize("kwargs", [{"data": "not json", "content_type": "application/json"},
                                    {"json": ["a", "list"]}, {"json": "text"}, {"data": "title=x"}])
def test_body_that_is_not_a_json_object_is_400(app, world, api_as, kwargs):
    """Is a malformed, non-object or non-JSON body a 400 JSON error, never a 500?"""
    api = api_as("enterprise")
    resp = api.client.post(f"{API}/needs", headers=api.headers, **kwargs)
    assert resp.status_code == 400
    conforms(resp.json, schemas.ERROR)


def test_create_refused_for_who_cannot_post(app, world, api_as):
    """Are needs refused (403 with the reason) for users without an enterprise, as on the web page?"""
    resp = api_as("expert").post(f"{API}/needs", json=VALID_NEED)
    assert resp.status_code == 403 and resp.json["reason"]


def test_create_capability_in_own_name(app, world, api_as):
    """Can an expert create a capability draft in their own name (organization_id 0), linked to the profile?"""
    body = {"title": "高温合金增材制造", "kind": "expertise", "summary": "激光熔覆", "description": "二十年经验",
            "field": "new_materials", "coop_modes": ["consulting"], "hub_city": "chengdu", "trl": 7,
            "organization_id": 0}
    resp = api_as("expert").post(f"{API}/capabilities", json=body)
    assert resp.status_code == 201, resp.json
    conforms(resp.json, schemas.CAPABILITY)
    cap = db.session.get(Capability, resp.json["id"])
    assert cap.organization_id is None and cap.expert_id == world["expert"].expert_profile.id and cap.trl == 7


def test_patch_by_owner_changes_only_given_fields(app, objs, api_as):
    """Does an owner's PATCH change just the given fields (the rest kept), validated as the whole listing?"""
    need = objs["firm_draft"]
    resp = api_as("enterprise").patch(f"{API}/needs/{need.id}", json={"title": "新的标题很清楚", "region": None})
    assert resp.status_code == 200, resp.json
    conforms(resp.json, schemas.NEED)
    db.session.expire_all()
    need = db.session.get(Need, need.id)
    assert need.title == "新的标题很清楚" and need.region is None
    assert need.problems.startswith("零下20℃") and need.contact_phone == "023-61234567"


def test_patch_of_published_need_goes_back_to_review(app, objs, api_as):
    """Does editing a published need through the API send it back to review, as on the web page?"""
    resp = api_as("enterprise").patch(f"{API}/needs/{objs['firm_public'].id}", json={"targets": "更高的指标"})
    assert resp.status_code == 200
    assert resp.json["status"] == "submitted"


@pytest.mark.parametrize("role,target,status", [("other_enterprise", "firm_public", 403),
                                                ("other_enterprise", "firm_draft", 404),
                                                ("coordinator", "firm_public", 403),
                                                ("expert", "firm_coord", 404)])
def test_patch_by_non_owner_is_refused(app, objs, api_as, role, target, status):
    """Is a PATCH by a non-owner 403 (listing visible to them) or 404 (hidden), with nothing changed?"""
    need = objs[target]
    resp = api_as(role).patch(f"{API}/needs/{need.id}", json={"title": "被篡改的标题"})
    assert resp.status_code == status
    db.session.expire_all()
    assert db.session.get(Need, need.id).title != "被篡改的标题"


def test_patch_validation_and_stale_version(app, objs, api_as):
    """Is an invalid PATCH a 400 per field, and a PATCH carrying an old version a 409, both without change?"""
    need = objs["firm_draft"]
    api = api_as("enterprise")
    resp = api.patch(f"{API}/needs/{need.id}", json={"title": "", "visibility": "secret"})
    assert resp.status_code == 400 and set(resp.json["fields"]) == {"title", "visibility"}
    resp = api.patch(f"{API}/needs/{need.id}", json={"title": "版本冲突的标题", "version": need.version - 1 or 99})
    assert resp.status_code == 409
    db.session.expire_all()
    assert db.session.get(Need, need.id).title == "需求-草稿"


def test_submit_transition(app, objs, api_as):
    """Does POST /submit move the owner's draft to submitted (audited), refuse a second submit with 409, and
    hide another organization's draft (404)?"""
    need = objs["firm_draft"]
    resp = api_as("enterprise").post(f"{API}/needs/{need.id}/submit")
    assert resp.status_code == 200 and resp.json["status"] == "submitted"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "need.submitted",
                                                      AuditEvent.target_id == need.id))
    again = api_as("enterprise").post(f"{API}/needs/{need.id}/submit")
    assert again.status_code == 409
    conforms(again.json, schemas.ERROR)
    assert api_as("enterprise").post(f"{API}/needs/{objs['other_draft'].id}/submit").status_code == 404
    resp = api_as("expert").post(f"{API}/capabilities/{objs['cap_draft'].id}/submit", json={"why": "now"})
    assert resp.status_code == 400 and "why" in resp.json["fields"], "a body with members is refused"
    db.session.expire_all()
    assert db.session.get(Capability, objs["cap_draft"].id).status == "draft"


# --- CSRF -------------------------------------------------------------------------------------------------

@pytest.fixture
def csrf_on(app, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)


def _csrf_token(client) -> str:
    page = client.get("/profile/tokens").get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_cookie_session_state_change_needs_csrf_header(app, world, objs, csrf_on):
    """Is a cookie-authenticated API POST without X-CSRFToken refused (400, nothing changed), and accepted
    with the session's token in the header?"""
    client = login(app.test_client(), world["enterprise"])
    url = f"{API}/needs/{objs['firm_draft'].id}/submit"
    resp = client.post(url)
    assert resp.status_code == 400
    conforms(resp.json, schemas.ERROR)
    db.session.expire_all()
    assert db.session.get(Need, objs["firm_draft"].id).status == "draft"
    resp = client.patch(f"{API}/needs/{objs['firm_draft'].id}", json={"title": "没有令牌的修改"})
    assert resp.status_code == 400
    assert client.get(f"{API}/needs").status_code == 200, "reading needs no CSRF token"

    resp = client.post(url, headers={"X-CSRFToken": _csrf_token(client)})
    assert resp.status_code == 200 and resp.json["status"] == "submitted"


def test_bearer_request_needs_no_csrf(app, world, objs, csrf_on):
    """Does a bearer-token POST work without any CSRF token, even when CSRF protection is on?"""
    secret = make_token(world["enterprise"])
    resp = Api(app, secret).post(f"{API}/needs", json=VALID_NEED)
    assert resp.status_code == 201, resp.json


def test_token_page_forms_need_csrf(app, world, csrf_on):
    """Are the token page's create and revoke forms refused without the CSRF token?"""
    client = login(app.test_client(), world["enterprise"])
    assert client.post("/profile/tokens", data={"name": "x", "expires_in": "30"}).status_code == 400
    assert db.session.scalar(select(ApiToken).where(ApiToken.user_id == world["enterprise"].id)) is None


# --- matches and pairings ---------------------------------------------------------------------------------

def test_matches_off_and_hidden_need(app, objs, api_as):
    """With matching disabled, is /matches a 200 with no items and matching "off"; and 404 for a hidden need?"""
    api = api_as("other_enterprise")
    resp = api.get(f"{API}/needs/{objs['firm_public'].id}/matches")
    assert resp.status_code == 200
    conforms(resp.json, schemas.MATCHES)
    assert resp.json["matching"] == "off" and resp.json["items"] == []
    assert api.get(f"{API}/needs/{objs['firm_coord'].id}/matches").status_code == 404
    assert api.get(f"{API}/needs/{objs['firm_public'].id}/matches?k=500").status_code == 400


@pytest.fixture
def pairings(make, world, objs):
    """One pairing per side of the organization boundary."""
    ent_pair = Pairing(need_id=objs["firm_public"].id, capability_id=objs["cap_public"].id,
                       expert_id=world["expert"].expert_profile.id, state="proposed", origin="coordinator")
    other_pair = Pairing(need_id=objs["other_public"].id, capability_id=objs["cap_public"].id,
                         expert_id=world["expert"].expert_profile.id, state="proposed", origin="need")
    db.session.add_all([ent_pair, other_pair])
    db.session.commit()
    return {"enterprise": ent_pair, "other": other_pair}


@pytest.mark.parametrize("role", ["enterprise", "other_enterprise", "expert", "coordinator", "admin"])
def test_pairings_list_matches_can_view(app, world, pairings, api_as, role):
    """Does /pairings list exactly the pairings ``Pairing.can_view`` allows this role (parties and coordinators)?"""
    resp = api_as(role).get(f"{API}/pairings")
    assert resp.status_code == 200
    conforms(resp.json, schemas.page_of(schemas.PAIRING))
    expected = {p.id for p in db.session.scalars(select(Pairing)) if p.can_view(world[role])}
    assert {i["id"] for i in resp.json["items"]} == expected
    assert resp.json["total"] == len(expected)


def test_pairing_detail_idor_is_404(app, world, pairings, api_as):
    """Is another organization's pairing a 404, while the parties get it with their sides?"""
    ent = api_as("enterprise")
    assert ent.get(f"{API}/pairings/{pairings['other'].id}").status_code == 404
    mine = ent.get(f"{API}/pairings/{pairings['enterprise'].id}")
    assert mine.status_code == 200
    conforms(mine.json, schemas.PAIRING)
    assert mine.json["sides"] == ["need"]
    expert = api_as("expert").get(f"{API}/pairings/{pairings['other'].id}").json
    assert expert["sides"] == ["capability"]


# --- errors and the OpenAPI document ---------------------------------------------------------------------

def test_error_statuses_are_json(app, world, api_as):
    """Are 404 (unknown path), 405 (wrong method) and 413 (too large) JSON {error, reason, status}?"""
    api = api_as("enterprise")
    for resp, status in ((api.get(f"{API}/nothing-here"), 404),
                         (api.client.delete(f"{API}/needs", headers=api.headers), 405),
                         (api.post(f"{API}/needs", data="x" * (3 * 1024 * 1024),
                                   content_type="application/json"), 413)):
        assert resp.status_code == status
        conforms(resp.json, schemas.ERROR)
        assert resp.json["status"] == status


def _flask_to_openapi(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_openapi_documents_every_route_and_nothing_else(app, client):
    """Is every /api/v1 route and method in the served OpenAPI 3.1 document, and every documented operation
    a real route?"""
    doc = client.get(f"{API}/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    routes = {(_flask_to_openapi(r.rule), m.lower()) for r in app.url_map.iter_rules()
              if r.rule.startswith(API) for m in (r.methods or set()) - {"HEAD", "OPTIONS"}}
    documented = {(path, m) for path, ops_ in doc["paths"].items() for m in ops_}
    assert routes == documented
    for path, ops_ in doc["paths"].items():
        for method, op in ops_.items():
            names = set(re.findall(r"{([^}]+)}", path))
            assert names == {p["name"] for p in op["parameters"] if p["in"] == "path"}, (path, method)
            assert op["responses"] and op["operationId"]
            if method in ("post", "patch") and not path.endswith("/submit"):
                assert "requestBody" in op


def test_openapi_schemas_are_the_validation_schemas(app):
    """Are the document's request schemas the ones derived from the forms (single source)?"""
    doc = build_document()
    assert doc["components"]["schemas"]["NeedCreate"] is schemas.NEED_CREATE
    assert set(schemas.NEED_CREATE["required"]) >= {"title", "industry", "problems", "targets", "contact_name"}
    assert schemas.NEED_CREATE["properties"]["title"]["maxLength"] == 200
    assert schemas.CAPABILITY_CREATE["properties"]["trl"]["maximum"] == 9
    assert set(ops.NEED_FIELDS) <= set(schemas.NEED_CREATE["properties"])
    assert set(ops.CAPABILITY_FIELDS) <= set(schemas.CAPABILITY_CREATE["properties"])


def test_anonymous_gets_401_but_may_read_the_document(app, client, objs):
    """Are API routes 401 for anonymous visitors (not a login redirect), while openapi.json is public?"""
    assert client.get(f"{API}/needs/{objs['firm_public'].id}").status_code == 401
    assert client.post(f"{API}/needs", json=VALID_NEED).status_code == 401
    assert client.get(f"{API}/openapi.json").status_code == 200


def test_inactive_session_user_is_refused(app, world):
    """Is a cookie session of a deactivated user refused with 401 on the API?"""
    world["enterprise"].active = False
    db.session.commit()
    client = login(app.test_client(), world["enterprise"])
    assert client.get(f"{API}/needs").status_code == 401


def test_role_without_enterprise_sees_role_based_lists(app, world, make):
    """Sanity: a coordinator-only user's token lists coordinators-only needs too (visible_listings)."""
    need = make.need(world["enterprise"], visibility="coordinators")
    coordinator = make.user(Role.COORDINATOR)
    ids = {i["id"] for i in Api(app, make_token(coordinator)).get(f"{API}/needs").json["items"]}
    assert need.id in ids


def test_openapi_references_resolve(app):
    """Does every $ref in the document point to a declared component schema?"""
    doc = build_document()
    refs = set(re.findall(r"'\$ref': '#/components/schemas/([^']+)'", repr(doc)))
    assert refs and refs <= set(doc["components"]["schemas"])


def test_unknown_query_parameters_are_ignored(app, objs, api_as):
    """Are unknown query parameters ignored (documented), unlike unknown body members (refused)?"""
    resp = api_as("enterprise").get(f"{API}/needs?utm_source=x&per_page=5")
    assert resp.status_code == 200 and resp.json["per_page"] == 5


# -- review fix (2026-12-01): the token page's time zone -----------------------------------------------------


def test_token_times_are_shown_in_beijing_time(app, world):
    """Regression (2026-12-01): Does the token list show created, last-used and expiry times in Beijing time, like every other page,
    so a token made late in the UTC evening shows the next day's date?"""
    user = world["enterprise"]
    token, _secret = ApiToken.generate(user, "CRM sync")
    token.created_at = datetime(2026, 3, 1, 20, 30, tzinfo=timezone.utc)    # 2026-03-02 04:30 in Beijing
    token.last_used_at = datetime(2026, 3, 5, 17, 15, tzinfo=timezone.utc)  # 2026-03-06 01:15 in Beijing
    token.expires_at = datetime(2099, 6, 30, 18, 0, tzinfo=timezone.utc)    # 2099-07-01 in Beijing
    db.session.add(token)
    db.session.commit()
    page = login(app.test_client(), user).get("/profile/tokens").get_data(as_text=True)
    assert "2026-03-02 04:30" in page and "2026-03-06 01:15" in page and "2099-07-01" in page
    assert "2026-03-01 20:30" not in page and "2099-06-30" not in page


def test_token_list_reads_right_in_chinese(app, world):
    """Regression (2026-12-07): the token list's headings said 姓名 (a person's name) and 从未登录 (never signed
    in) for a token never used and one that never expires; does it say 令牌名称, 从未使用 and 永不过期?"""
    web = login(app.test_client(), world["enterprise"])
    assert web.post("/profile/tokens", data={"name": "CRM", "expires_in": "never"}).status_code == 201
    page = web.get("/profile/tokens").get_data(as_text=True)
    table = page[page.index('id="token-list"'):]
    assert "令牌名称" in table and "从未使用" in table and "永不过期" in table
    assert "姓名" not in table and "从未登录" not in table
