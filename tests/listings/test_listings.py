"""Listing pages over HTTP: forms and validation, owner flows, browse and search, visibility, authorization."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.listings.models import Capability, Need
from tests.helpers import Api, login, make_token

EN = "?lang=en"


def count(model) -> int:
    return db.session.scalar(select(func.count(model.id)))


def fresh(obj):
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


def need_form(**overrides) -> dict:
    data = {
        "title": "高精度减速器齿面磨损检测", "industry": "smart_manufacturing",
        "background": "我司生产工业机器人用RV减速器。", "problems": "齿面微小磨损难以在线检测。",
        "targets": "检测精度达到5微米，单件检测时间小于30秒。", "budget_min": "50", "budget_max": "120",
        "deadline": (date.today() + timedelta(days=90)).isoformat(), "hub_city": "chongqing",
        "region": "两江新区", "coop_modes": ["joint_dev", "commissioned"], "visibility": "public",
        "contact_name": "李工", "contact_phone": "023-88886666", "contact_email": "li@example.com",
        "save_draft": "Save draft",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def capability_form(**overrides) -> dict:
    data = {
        "kind": "instrument", "title": "场发射扫描电镜共享", "summary": "可提供纳米级表面形貌分析。",
        "description": "配备能谱仪，可预约机时，提供样品制备与数据解读服务。", "field": "new_materials",
        "trl": "9", "ip": "", "coop_modes": ["service"], "hub_city": "chengdu", "region": "高新区",
        "organization_id": "0", "save_draft": "Save draft",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- form validation ----------------------------------------------------------------------------------

NEED_BAD_INPUT = {
    "empty title": ({"title": ""}, "Enter a title."),
    "blank title": ({"title": "    "}, "Enter a title."),
    "short title": ({"title": "abc"}, "4 to 200 characters"),
    "long title": ({"title": "长" * 201}, "4 to 200 characters"),
    "unknown industry": ({"industry": "alchemy"}, "Not a valid choice"),
    "no industry": ({"industry": ""}, "Choose an industry."),
    "blank problems": ({"problems": " \n\t "}, "Describe the technical problems to solve."),
    "oversized problems": ({"problems": "难" * 5001}, "At most 5000 characters."),
    "missing targets": ({"targets": None}, "State the technical targets or indicators."),
    "negative budget": ({"budget_min": "-1"}, "Enter a whole number from 0"),
    "text budget": ({"budget_min": "fifty"}, "Not a valid integer value"),
    "huge budget": ({"budget_max": "9" * 30}, "Enter a whole number from 0"),
    "budget max below min": ({"budget_min": "100", "budget_max": "20"},
                             "The maximum budget cannot be below the minimum."),
    "deadline in the past": ({"deadline": "2020-01-01"}, "The deadline cannot be in the past."),
    "malformed deadline": ({"deadline": "next spring"}, "Not a valid date value"),
    "unknown hub city": ({"hub_city": "beijing"}, "Not a valid choice"),
    "no hub city": ({"hub_city": ""}, "Choose a hub city."),
    "no cooperation mode": ({"coop_modes": []}, "Choose at least one cooperation mode."),
    "unknown cooperation mode": ({"coop_modes": ["barter"]}, "not a valid choice"),
    "unknown visibility": ({"visibility": "friends"}, "Not a valid choice"),
    "bad email": ({"contact_email": "not-an-email"}, "Enter a valid email address."),
    "bad phone": ({"contact_phone": "call me maybe"}, "Use digits, spaces"),
    "no phone nor email": ({"contact_phone": "", "contact_email": ""}, "Give a phone number or an email address."),
    "no contact name": ({"contact_name": ""}, "Enter a contact person."),
    "oversized region": ({"region": "区" * 101}, "At most 100 characters."),
}


@pytest.mark.parametrize("case", sorted(NEED_BAD_INPUT))
def test_need_form_rejects_bad_input(client_as, case):
    """Does the need form, sent for review, answer bad input with a field message (400) and save nothing? (A
    draft may leave required fields blank: tests/listings/test_drafts.py.)"""
    overrides, message = NEED_BAD_INPUT[case]
    before = count(Need)
    response = client_as("enterprise").post("/needs/new" + EN, data=need_form(
        **overrides, save_draft=None, save_submit="Save and submit"))
    assert response.status_code == 400
    assert message.lower() in response.get_data(as_text=True).lower()
    assert count(Need) == before


CAPABILITY_BAD_INPUT = {
    "TRL 10": ({"trl": "10"}, "The TRL must be between 1 and 9."),
    "TRL 0": ({"trl": "0"}, "The TRL must be between 1 and 9."),
    "TRL text": ({"trl": "high"}, "Not a valid integer value"),
    "unknown kind": ({"kind": "rumour"}, "Not a valid choice"),
    "unknown field": ({"field": "alchemy"}, "Not a valid choice"),
    "blank summary": ({"summary": "   "}, "Write a short summary."),
    "oversized summary": ({"summary": "长" * 1001}, "At most 1000 characters."),
    "blank description": ({"description": ""}, "Describe the capability."),
    "no cooperation mode": ({"coop_modes": []}, "Choose at least one cooperation mode."),
}


@pytest.mark.parametrize("case", sorted(CAPABILITY_BAD_INPUT))
def test_capability_form_rejects_bad_input(client_as, case):
    """Does the capability form, sent for review, answer bad input with a field message (400) and save
    nothing?"""
    overrides, message = CAPABILITY_BAD_INPUT[case]
    before = count(Capability)
    response = client_as("expert").post("/capabilities/new" + EN, data=capability_form(
        **overrides, save_draft=None, save_submit="Save and submit"))
    assert response.status_code == 400
    assert message.lower() in response.get_data(as_text=True).lower()
    assert count(Capability) == before


def test_forged_organization_is_refused(client_as, make, world):
    """Can a member of two enterprises post a need for an organization they do not belong to? (No.)"""
    from matchmaker.accounts.models import Membership
    user = world["enterprise"]
    second = make.org(kind="enterprise", name="重庆丙公司")
    user.memberships.append(Membership(organization=second))
    db.session.commit()
    before = count(Need)
    response = client_as("enterprise").post("/needs/new" + EN, data=need_form(
        organization_id=str(world["other_firm"].id)))
    assert response.status_code == 400 and count(Need) == before
    response = client_as("enterprise").post("/needs/new", data=need_form(organization_id=str(second.id)))
    assert response.status_code == 303
    assert db.session.scalars(select(Need).order_by(Need.id.desc())).first().organization_id == second.id


# --- who may post -------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["expert", "coordinator"])
def test_only_enterprise_members_post_needs(client_as, role):
    """Do users without an enterprise membership get a 403 with the reason, for the page and the POST?"""
    client = client_as(role)
    page = client.get("/needs/new" + EN)
    assert page.status_code == 403 and "Only members of an enterprise" in page.get_data(as_text=True)
    before = count(Need)
    assert client.post("/needs/new" + EN, data=need_form()).status_code == 403
    assert count(Need) == before


def test_anonymous_is_sent_to_login(client_as):
    """Are anonymous visitors redirected to log in before posting?"""
    response = client_as(None).get("/needs/new")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_capability_posting_rules(client_as):
    """May an expert post a capability, while a coordinator with no organization or profile may not?"""
    assert client_as("expert").get("/capabilities/new").status_code == 200
    assert client_as("enterprise").get("/capabilities/new").status_code == 200
    assert client_as("coordinator").get("/capabilities/new").status_code == 403


# --- flows --------------------------------------------------------------------------------------------

def test_need_full_flow(client_as, world):
    """Can a need be drafted, submitted, returned with a reason, fixed, resubmitted, published, closed
    and deleted through the web pages, with the right visibility at each step?"""
    owner, coordinator, outsider = client_as("enterprise"), client_as("coordinator"), client_as("other_enterprise")

    response = owner.post("/needs/new", data=need_form())
    assert response.status_code == 303
    need = db.session.scalars(select(Need).order_by(Need.id.desc())).first()
    assert need.status == "draft" and need.organization_id == world["firm"].id
    assert need.coop_modes == ["joint_dev", "commissioned"] and need.budget_max == 120
    assert response.headers["Location"].endswith(f"/needs/{need.id}")
    assert outsider.get(f"/needs/{need.id}").status_code == 404

    assert owner.post(f"/needs/{need.id}/submit").status_code == 303
    assert fresh(need).status == "submitted"

    response = coordinator.post(f"/review/needs/{need.id}/return",
                                data={"reason": "请量化检测精度指标", "version": str(fresh(need).version)})
    assert response.status_code == 303 and fresh(need).status == "returned"
    page = owner.get(f"/needs/{need.id}").get_data(as_text=True)
    assert "请量化检测精度指标" in page

    response = owner.post(f"/needs/{need.id}/edit", data=need_form(
        targets="检测精度≤5μm", save_draft=None, save_submit="Save and submit", version=str(fresh(need).version)))
    assert response.status_code == 303
    need = fresh(need)
    assert need.status == "submitted" and need.targets == "检测精度≤5μm" and need.return_reason is None

    assert coordinator.post(f"/review/needs/{need.id}/publish",
                            data={"comment": "", "version": str(need.version)}).status_code == 303
    assert fresh(need).status == "published"
    assert "高精度减速器齿面磨损检测" in outsider.get("/needs").get_data(as_text=True)

    assert owner.post(f"/needs/{need.id}/close").status_code == 303
    assert fresh(need).status == "closed"
    assert "高精度减速器齿面磨损检测" not in outsider.get("/needs").get_data(as_text=True)

    assert owner.post(f"/needs/{need.id}/delete").status_code == 303
    assert fresh(need).deleted_at is not None
    assert owner.get(f"/needs/{need.id}").status_code == 404
    assert "高精度减速器齿面磨损检测" not in owner.get("/my").get_data(as_text=True)


def test_save_and_submit_on_create(client_as):
    """Does "Save and submit" create the need already submitted for review?"""
    response = client_as("enterprise").post("/needs/new", data=need_form(save_draft=None, save_submit="x"))
    assert response.status_code == 303
    need = db.session.scalars(select(Need).order_by(Need.id.desc())).first()
    assert need.status == "submitted" and need.submitted_at is not None


def test_capability_create_and_submit(client_as, world):
    """Can an expert create a capability (linked to their expert profile) and submit it?"""
    response = client_as("expert").post("/capabilities/new", data=capability_form(save_draft=None, save_submit="x"))
    assert response.status_code == 303
    cap = db.session.scalars(select(Capability).order_by(Capability.id.desc())).first()
    assert cap.status == "submitted" and cap.trl == 9 and cap.ip is None
    assert cap.expert_id == world["expert"].expert_profile.id


def test_editing_published_need_goes_back_to_review(client_as, make, world):
    """Does the edit form warn that a published need goes back to review, and does saving do exactly that?"""
    need = make.need(world["enterprise"])
    owner = client_as("enterprise")
    page = owner.get(f"/needs/{need.id}/edit" + EN).get_data(as_text=True)
    assert "sends it back to review" in page
    response = owner.post(f"/needs/{need.id}/edit", data=need_form(title=need.title + "（二期）",
                                                                     version=str(need.version)))
    assert response.status_code == 303
    need = fresh(need)
    assert need.status == "submitted" and need.title.endswith("（二期）")
    assert need.title not in client_as("other_enterprise").get("/needs").get_data(as_text=True)


def test_stale_edit_is_refused(client_as, make, world):
    """If the listing changed after the edit form was loaded, is the save refused instead of overwriting?"""
    need = make.need(world["enterprise"], status="draft")
    response = client_as("enterprise").post(f"/needs/{need.id}/edit" + EN, data=need_form(
        title="覆盖别人修改的标题", version=str(need.version - 1 or 99)))
    assert response.status_code == 303
    assert fresh(need).title != "覆盖别人修改的标题"


def test_double_submit_is_refused(client_as, make, world):
    """Does a second "submit" of the same need change nothing and say why?"""
    need = make.need(world["enterprise"], status="draft")
    owner = client_as("enterprise")
    assert owner.post(f"/needs/{need.id}/submit").status_code == 303
    response = owner.post(f"/needs/{need.id}/submit" + EN, follow_redirects=True)
    assert "can be submitted" in response.get_data(as_text=True)
    events = db.session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.target_type == "needs", AuditEvent.target_id == need.id, AuditEvent.to_state == "submitted"))
    assert events == 1 and fresh(need).status == "submitted"


def test_state_changes_need_post(client_as, make, world):
    """Are submit, close and delete refused over GET (405)?"""
    need = make.need(world["enterprise"], status="draft")
    owner = client_as("enterprise")
    for action in ("submit", "close", "delete"):
        assert owner.get(f"/needs/{need.id}/{action}").status_code == 405
    assert fresh(need).status == "draft" and fresh(need).deleted_at is None


@pytest.mark.parametrize("url", ["/needs/999999", "/needs/99999999999999999999999", "/needs/abc",
                                 "/needs/-1", "/capabilities/0", "/needs/999999/edit"])
def test_forged_ids_give_404(client_as, url):
    """Do unknown, huge, negative or non-numeric ids give 404 rather than a 500?"""
    assert client_as("enterprise").get(url).status_code == 404


def test_csrf_is_enforced_on_owner_actions(app, client_as, make, world):
    """With CSRF on (as in production), is a POST without a token refused and nothing changed?"""
    need = make.need(world["enterprise"], status="draft")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = client_as("enterprise").post(f"/needs/{need.id}/submit")
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code == 400 and fresh(need).status == "draft"


# --- authorization ------------------------------------------------------------------------------------

def test_other_org_cannot_touch_public_need(client_as, make, world):
    """Can another enterprise edit, submit, close or delete a published need it can see? (403, unchanged.)"""
    need = make.need(world["enterprise"])
    intruder = client_as("other_enterprise")
    assert intruder.get(f"/needs/{need.id}/edit").status_code == 403
    assert intruder.post(f"/needs/{need.id}/edit", data=need_form(title="被篡改的标题")).status_code == 403
    for action in ("submit", "close", "delete"):
        assert intruder.post(f"/needs/{need.id}/{action}").status_code == 403
    need = fresh(need)
    assert need.status == "published" and need.deleted_at is None and need.title != "被篡改的标题"


def test_a_coordinator_closes_listings_only_in_their_hub_city(app, make, world):
    """May a coordinator scoped to Qingdao close a Chongqing firm's need (no: 403, as for moderating it), while a
    Chongqing coordinator may (and the close button shows only to them)?"""
    from tests.helpers import login
    need = make.need(world["enterprise"])  # chongqing
    qingdao = login(app.test_client(), make.user(Role.COORDINATOR, hub_city="qingdao"))
    chongqing = login(app.test_client(), make.user(Role.COORDINATOR, hub_city="chongqing"))
    assert f"/needs/{need.id}/close" not in qingdao.get(f"/needs/{need.id}").get_data(as_text=True)
    assert qingdao.post(f"/needs/{need.id}/close").status_code == 403
    assert fresh(need).status == "published"
    assert f"/needs/{need.id}/close" in chongqing.get(f"/needs/{need.id}").get_data(as_text=True)
    assert chongqing.post(f"/needs/{need.id}/close").status_code == 303
    assert fresh(need).status == "closed"


def test_other_org_cannot_see_or_touch_draft(client_as, make, world):
    """Is another org's draft need invisible (404) to detail, edit and every action?"""
    need = make.need(world["enterprise"], status="draft")
    intruder = client_as("other_enterprise")
    assert intruder.get(f"/needs/{need.id}").status_code == 404
    assert intruder.get(f"/needs/{need.id}/edit").status_code == 404
    for action in ("submit", "close", "delete"):
        assert intruder.post(f"/needs/{need.id}/{action}").status_code == 404
    assert fresh(need).status == "draft"


def test_owner_actions_shown_by_permission(client_as, make, world):
    """Does the detail page show edit/close/delete to the owner and not to another user?"""
    need = make.need(world["enterprise"])
    owner_page = client_as("enterprise").get(f"/needs/{need.id}").get_data(as_text=True)
    other_page = client_as("other_enterprise").get(f"/needs/{need.id}").get_data(as_text=True)
    for action in ("edit", "close", "delete"):
        assert f"/needs/{need.id}/{action}" in owner_page
        assert f"/needs/{need.id}/{action}" not in other_page


# --- visibility ---------------------------------------------------------------------------------------

def test_coordinators_only_need_visibility(client_as, make, world):
    """Is a coordinators-only need hidden from other enterprises, experts and anonymous visitors (404,
    absent from browse) yet visible to its own organization and to coordinators?"""
    need = make.need(world["enterprise"], visibility="coordinators", title="保密的工艺改进需求")
    for role in (None, "other_enterprise", "expert"):
        client = client_as(role)
        assert client.get(f"/needs/{need.id}").status_code == 404, role
        assert need.title not in client.get("/needs").get_data(as_text=True), role
        assert need.title not in client.get("/").get_data(as_text=True), role
    for role in ("enterprise", "coordinator", "admin"):
        client = client_as(role)
        assert client.get(f"/needs/{need.id}").status_code == 200, role
        assert need.title in client.get("/needs").get_data(as_text=True), role


def test_private_contact_hidden_from_others(client_as, make, world):
    """Is a need's private contact shown to its organization and coordinators but not to other users?"""
    need = make.need(world["enterprise"], contact_phone="023-61234567", contact_email="secret@example.test")
    for role in (None, "other_enterprise", "expert"):
        page = client_as(role).get(f"/needs/{need.id}").get_data(as_text=True)
        assert "023-61234567" not in page and "secret@example.test" not in page, role
    for role in ("enterprise", "coordinator"):
        page = client_as(role).get(f"/needs/{need.id}").get_data(as_text=True)
        assert "023-61234567" in page and "secret@example.test" in page, role


def test_unpublished_listings_not_browsable(client_as, make, world):
    """Do drafts, submitted, returned and closed listings stay out of browse, even for coordinators?"""
    for status in ("draft", "submitted", "returned", "closed"):
        make.need(world["enterprise"], status=status, title=f"状态为{status}的需求")
    page = client_as("coordinator").get("/needs").get_data(as_text=True)
    assert "状态为" not in page


# --- browse and search --------------------------------------------------------------------------------

@pytest.fixture
def catalogue(make, world):
    owner = world["enterprise"]
    return {
        "battery": make.need(owner, title="低温锂电池放电性能提升", industry="new_energy", hub_city="chongqing",
                             coop_modes=["joint_dev"]),
        "sensor": make.need(owner, title="Wireless Vibration Sensor for gearboxes", industry="smart_manufacturing",
                            hub_city="chengdu", coop_modes=["commissioned", "consulting"],
                            problems="Need low-power MEMS sensing", targets="Battery life over 3 years",
                            background=""),
        "coating": make.need(owner, title="海洋防腐涂层寿命评估", industry="marine", hub_city="qingdao",
                             coop_modes=["consulting"]),
    }


def _titles(response) -> set[str]:
    html = response.get_data(as_text=True)
    return {t for t in ("低温锂电池放电性能提升", "Wireless Vibration Sensor for gearboxes", "海洋防腐涂层寿命评估")
            if t in html}


def test_keyword_search_chinese_substring(client, catalogue):
    """Does a Chinese substring of a title find the need (and only it)?"""
    assert _titles(client.get("/needs?q=锂电池")) == {"低温锂电池放电性能提升"}
    assert _titles(client.get("/needs?q=涂层")) == {"海洋防腐涂层寿命评估"}


def test_keyword_search_case_insensitive_and_all_terms(client, catalogue):
    """Is search case-insensitive over title and text fields, with every term required?"""
    assert _titles(client.get("/needs?q=mems")) == {"Wireless Vibration Sensor for gearboxes"}
    assert _titles(client.get("/needs?q=WIRELESS+battery")) == {"Wireless Vibration Sensor for gearboxes"}
    assert _titles(client.get("/needs?q=wireless+锂电池")) == set()


def test_keyword_search_wildcards_are_literal(client, catalogue):
    """Are % and _ in the search box treated as plain characters, not SQL wildcards?"""
    assert _titles(client.get("/needs?q=锂%25提升")) == set()  # as a wildcard it would match the battery need
    assert _titles(client.get("/needs?q=锂_池")) == set()
    assert _titles(client.get("/needs?q=85%25")) == {"低温锂电池放电性能提升", "海洋防腐涂层寿命评估"}


def test_facets_filter_and_count(client, catalogue):
    """Do facet links filter, and do the counts match what each facet value would show?"""
    page = client.get("/needs" + EN).get_data(as_text=True)
    assert 'industry=new_energy' in page and "3 results" in page
    assert _titles(client.get("/needs?industry=marine")) == {"海洋防腐涂层寿命评估"}
    assert _titles(client.get("/needs?hub_city=chengdu")) == {"Wireless Vibration Sensor for gearboxes"}
    assert _titles(client.get("/needs?coop=consulting")) == {"Wireless Vibration Sensor for gearboxes",
                                                            "海洋防腐涂层寿命评估"}
    assert _titles(client.get("/needs?coop=consulting&hub_city=qingdao")) == {"海洋防腐涂层寿命评估"}
    assert _titles(client.get("/needs?language=en")) == {"Wireless Vibration Sensor for gearboxes"}


def test_facet_counts_values(app, catalogue):
    """Are facet counts computed with the other active filters applied (and not the facet's own)?"""
    from flask_login import AnonymousUserMixin

    from matchmaker.listings.queries import facet_counts, visible_listings
    base = visible_listings(Need, AnonymousUserMixin())
    counts = facet_counts(base, Need, {"coop": "consulting"}, None)
    assert counts["coop"]["consulting"] == 2 and counts["coop"]["joint_dev"] == 1
    assert counts["hub_city"] == {"chengdu": 1, "qingdao": 1}
    assert counts["industry"] == {"smart_manufacturing": 1, "marine": 1}


def test_active_filters_are_removable_chips(client, catalogue):
    """Is each active filter shown as a chip whose link removes just that filter?"""
    import re
    page = client.get("/needs?industry=marine&q=涂层&lang=en").get_data(as_text=True)
    chips = dict((text.split(":")[0].strip("“”✕ "), href) for href, text in re.findall(
        r'<a class="badge[^"]*" href="([^"]+)" title="Remove">([^<]+)</a>', page))
    assert "industry=" not in chips["Industry"] and "q=" in chips["Industry"]
    assert "q=" not in chips["涂层"] and "industry=marine" in chips["涂层"]


@pytest.mark.parametrize("query", ["industry=alchemy", "hub_city=%3Cscript%3E", "coop=barter", "language=xx",
                                   "page=abc", "page=-5", "page=999999999999", "q=" + "长" * 500,
                                   "kind=rumour"])
def test_unknown_browse_arguments_are_harmless(client, catalogue, query):
    """Are unknown facet values, bad pages and oversized queries ignored (200), never a 500?"""
    response = client.get("/needs?" + query)
    assert response.status_code == 200
    assert client.get("/capabilities?" + query).status_code == 200


def test_capability_facets(client, make, world):
    """Can capabilities be filtered by kind and field?"""
    make.capability(world["expert"], title="场发射扫描电镜共享", kind="instrument", field="new_materials")
    make.capability(world["expert"], title="工业视觉检测算法", kind="achievement", field="smart_manufacturing")
    page = client.get("/capabilities?kind=instrument").get_data(as_text=True)
    assert "场发射扫描电镜共享" in page and "工业视觉检测算法" not in page
    page = client.get("/capabilities?field=smart_manufacturing&q=视觉").get_data(as_text=True)
    assert "工业视觉检测算法" in page and "场发射扫描电镜共享" not in page


def test_pagination(app, client, make, world):
    """Are results split into pages, newest first?"""
    app.config["PAGE_SIZE"] = 2
    try:
        for i in range(3):
            make.need(world["enterprise"], title=f"分页测试需求{i}")
        first = client.get("/needs").get_data(as_text=True)
        second = client.get("/needs?page=2").get_data(as_text=True)
    finally:
        app.config["PAGE_SIZE"] = 20
    assert "分页测试需求2" in first and "分页测试需求1" in first and "分页测试需求0" not in first
    assert "分页测试需求0" in second and "page=2" in first


def test_home_page_lists_newest(client, make, world):
    """Does the home page show counts and the newest published needs and capabilities?"""
    make.need(world["enterprise"], title="首页展示的需求")
    make.capability(world["expert"], title="首页展示的能力")
    page = client.get("/").get_data(as_text=True)
    assert "首页展示的需求" in page and "首页展示的能力" in page and 'id="count-needs"' in page


def test_my_listings_groups_by_status(client_as, make, world):
    """Does "My listings" show the org's needs grouped by status, and not other orgs' listings?"""
    make.need(world["enterprise"], status="draft", title="我的草稿需求")
    make.need(world["enterprise"], status="returned", title="被退回的需求")
    make.need(world["other_enterprise"], status="draft", title="别人的草稿需求")
    page = client_as("enterprise").get("/my").get_data(as_text=True)
    assert "我的草稿需求" in page and "被退回的需求" in page and "别人的草稿需求" not in page
    assert page.index("被退回的需求") < page.index("我的草稿需求")  # returned first: needs action


def test_org_colleague_sees_org_listings(client_as, make, world):
    """Does a second member of the same enterprise see and manage its needs?"""
    colleague = make.user(Role.ENTERPRISE, org=world["firm"])
    need = make.need(world["enterprise"], status="draft", title="同事创建的需求")
    from flask import current_app

    from tests.helpers import login
    client = login(current_app.test_client(), colleague)
    assert "同事创建的需求" in client.get("/my").get_data(as_text=True)
    assert client.post(f"/needs/{need.id}/submit").status_code == 303
    assert fresh(need).status == "submitted"


@pytest.mark.parametrize("extra", ["endpoint=x", "_method=POST", "_anchor=x", "_external=1&_scheme=javascript"])
@pytest.mark.parametrize("path", ["/needs", "/capabilities"])
def test_browse_links_keep_reserved_names_as_query(client, catalogue, make, world, path, extra):
    """Do facet, chip and page links treat arguments named like url_for's own (endpoint, _method, _anchor,
    _external, _scheme) as plain query text — a 200 for anyone, no anchor, no other scheme or host?"""
    import html
    import re
    make.capability(world["expert"], title="场发射扫描电镜共享", kind="instrument")
    response = client.get(f"{path}?{extra}&per_page=1&lang=en")
    assert response.status_code == 200
    links = [html.unescape(h) for h in re.findall(r'href="([^"]*\?[^"]*)"', response.get_data(as_text=True))
             if h.startswith(path + "?")]
    assert links  # the facet links
    for link in links:
        assert "#" not in link and extra in link


def test_browse_links_keep_repeated_arguments(client, catalogue):
    """Does removing one filter keep the other arguments, repeated ones with every value?"""
    import html
    import re
    page = client.get("/needs?industry=marine&tag=a&tag=b&lang=en").get_data(as_text=True)
    chips = [html.unescape(h) for h in re.findall(r'<a class="badge[^"]*" href="([^"]+)" title="Remove">', page)]
    assert chips == ["/needs?tag=a&tag=b&lang=en"]


# -- review fixes (2026-12-01): edits that change nothing, null in a PATCH, scoped coordinators, unpublished work -


def _need(make, world, **kw) -> Need:
    return make.need(world["enterprise"], contact_email="wang@example.com", **kw)


def _edits(need) -> int:
    return db.session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.target_id == need.id, AuditEvent.action.in_(("need.edit", "need.submitted"))))


def _stored_form(need: Need) -> dict:
    """The edit form as the browser sends it back untouched."""
    form = {name: getattr(need, name) for name in ("title", "industry", "background", "problems", "targets",
                                                   "hub_city", "region", "visibility", "contact_name",
                                                   "contact_phone", "contact_email")}
    form = {k: v for k, v in form.items() if v is not None}
    form.update(coop_modes=need.coop_modes, version=str(need.version), save_draft="Save draft")
    return form


def test_a_patch_with_null_does_not_reset_a_field_to_its_default(make, world, api_as):
    """Regression (2026-12-01): Is `{"visibility": null}` refused (400 with the field named) instead of turning a coordinators-only
    need public?"""
    need = _need(make, world, status="draft", visibility="coordinators")
    r = api_as("enterprise").patch(f"/api/v1/needs/{need.id}", json={"visibility": None})
    assert r.status_code == 400 and "visibility" in r.get_data(as_text=True)
    db.session.refresh(need)
    assert need.visibility == "coordinators"


def test_an_unchanged_patch_leaves_a_published_need_published(make, world, api_as):
    """Regression (2026-12-01): Does a PATCH that changes no value keep the need live and write no audit entry, while a real change
    still sends it back to review?"""
    need = _need(make, world)
    before = _edits(need)
    r = api_as("enterprise").patch(f"/api/v1/needs/{need.id}", json={"version": need.version,
                                                                      "title": need.title})
    assert r.status_code == 200 and r.get_json()["status"] == "published"
    assert _edits(need) == before
    r = api_as("enterprise").patch(f"/api/v1/needs/{need.id}", json={"title": need.title + "（二期）"})
    assert r.status_code == 200 and r.get_json()["status"] == "submitted"
    assert _edits(need) == before + 2


def test_resaving_the_unchanged_edit_form_keeps_the_need_live(app, make, world):
    """Regression (2026-12-01): Does saving the edit form without changing anything say so and leave the published need published?"""
    need = _need(make, world)
    client = login(app.test_client(), world["enterprise"])
    r = client.post(f"/needs/{need.id}/edit", data=_stored_form(need), follow_redirects=True)
    assert r.status_code == 200
    db.session.refresh(need)
    assert need.status == "published"
    assert "went back to review" not in r.get_data(as_text=True) and "重新审核" not in r.get_data(as_text=True)


@pytest.mark.parametrize("status", ["draft", "submitted", "returned"])
def test_a_coordinator_of_another_city_does_not_see_unpublished_work(app, make, world, status):
    """Regression (2026-12-01): Does a coordinator scoped to Chengdu get 404 for a Chongqing need that is not published (page and
    API), while a Chongqing coordinator who moderates it sees it with its contact?"""
    need = _need(make, world, status=status, hub_city="chongqing")
    elsewhere = make.user(Role.COORDINATOR, hub_city="chengdu")
    here = make.user(Role.COORDINATOR, hub_city="chongqing")
    assert not need.can_view(elsewhere) and not need.can_view_contact(elsewhere)
    assert login(app.test_client(), elsewhere).get(f"/needs/{need.id}").status_code == 404
    assert Api(app, make_token(elsewhere)).get(f"/api/v1/needs/{need.id}").status_code == 404
    page = login(app.test_client(), here).get(f"/needs/{need.id}")
    assert page.status_code == 200 and "wang@example.com" in page.get_data(as_text=True)


def test_published_listings_stay_visible_to_coordinators_of_every_city(app, make, world):
    """Regression (2026-12-01): Can a Chengdu coordinator still read a published Chongqing need, coordinators-only ones included, with
    its contact (docking across hub cities)?"""
    need = _need(make, world, hub_city="chongqing", visibility="coordinators")
    elsewhere = make.user(Role.COORDINATOR, hub_city="chengdu")
    page = login(app.test_client(), elsewhere).get(f"/needs/{need.id}")
    assert page.status_code == 200 and "wang@example.com" in page.get_data(as_text=True)


def test_the_csv_export_follows_the_same_scope(app, make, world):
    """Regression (2026-12-01): Does a Chengdu coordinator's export of every status leave out Chongqing work in progress (and its
    contact) while keeping published Chongqing needs and Chengdu drafts?"""
    make.need(world["enterprise"], status="draft", hub_city="chongqing", title="重庆草稿",
              contact_email="draft@example.com")
    make.need(world["enterprise"], hub_city="chongqing", title="重庆已发布")
    make.need(world["enterprise"], status="submitted", hub_city="chengdu", title="成都待审")
    elsewhere = make.user(Role.COORDINATOR, hub_city="chengdu")
    body = login(app.test_client(), elsewhere).get("/bulk/needs.csv?status=all").get_data(as_text=True)
    assert "重庆已发布" in body and "成都待审" in body
    assert "重庆草稿" not in body and "draft@example.com" not in body
    only_drafts = login(app.test_client(), elsewhere).get("/bulk/needs.csv?status=draft").get_data(as_text=True)
    assert "重庆草稿" not in only_drafts
    unscoped = login(app.test_client(), make.user(Role.COORDINATOR)).get("/bulk/needs.csv?status=all")
    assert "重庆草稿" in unscoped.get_data(as_text=True)


def test_the_home_page_counts_what_the_visitor_can_browse(app, make, world):
    """Regression (2026-12-01): Does the home page's count of published needs leave out coordinators-only needs for an anonymous
    visitor (it said 59 while the needs list showed 52) and include them for a coordinator?"""
    import re
    make.need(world["enterprise"], title="公开需求")
    make.need(world["enterprise"], title="仅协调员可见", visibility="coordinators")

    def count(client) -> int:
        html = client.get("/").get_data(as_text=True)
        return int(re.search(r'id="count-needs">(\d+)<', html).group(1))

    assert count(app.test_client()) == 1
    assert count(login(app.test_client(), make.user(Role.COORDINATOR))) == 2


def test_a_colleague_cannot_edit_or_delete_an_experts_own_capability(app, make, world):
    """Regression (2026-12-01): Two experts of one institute: can the colleague edit, close or delete the other's capability (page and
    permissions)? (No — while the institute's manager still can, and a capability posted for the whole
    institute stays shared.)"""
    cap = make.capability(world["expert"], title="某专家的能力")
    colleague = make.user(Role.EXPERT, org=world["institute"])
    for m in colleague.memberships:
        m.is_manager = False  # a plain member
    manager = make.user(Role.EXPERT, org=world["institute"])  # the factory makes members managers
    db.session.commit()
    assert cap.is_owned_by(colleague)  # still the institute's for matching and pairing rules
    assert not cap.can_edit(colleague) and not cap.can_close(colleague) and not cap.can_delete(colleague)
    client = login(app.test_client(), colleague)
    assert client.get(f"/capabilities/{cap.id}/edit").status_code == 403
    assert client.post(f"/capabilities/{cap.id}/delete").status_code == 403
    assert cap.can_edit(manager) and cap.can_delete(manager)
    shared = make.capability(colleague, title="研究院共享能力", expert_id=None)
    assert shared.can_edit(world["expert"])


def test_a_page_past_the_end_leads_back_to_the_first(app, make, world):
    """Regression (2026-12-01): Does /needs?page=99, past the last page of existing results, offer a way back to page 1 instead of
    only "nothing found" next to a non-zero count?"""
    make.need(world["enterprise"], title="唯一的需求")
    page = app.test_client().get("/needs?page=99&industry=new_energy").get_data(as_text=True)
    assert 'id="first-page"' in page
    link = page.split('id="first-page"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0]
    assert "page=1" in link and "industry=new_energy" in link
