"""Edits that change nothing, null in a PATCH, and what a coordinator scoped to other hub cities sees of
listings that are not published yet."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from conftest import login
from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.listings.models import Need
from test_api import Api, api_as, make_token  # noqa: F401  (api_as: the fixture, a bearer-token client per role)


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
    """Is `{"visibility": null}` refused (400 with the field named) instead of turning a coordinators-only
    need public?"""
    need = _need(make, world, status="draft", visibility="coordinators")
    r = api_as("enterprise").patch(f"/api/v1/needs/{need.id}", json={"visibility": None})
    assert r.status_code == 400 and "visibility" in r.get_data(as_text=True)
    db.session.refresh(need)
    assert need.visibility == "coordinators"


def test_an_unchanged_patch_leaves_a_published_need_published(make, world, api_as):
    """Does a PATCH that changes no value keep the need live and write no audit entry, while a real change
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
    """Does saving the edit form without changing anything say so and leave the published need published?"""
    need = _need(make, world)
    client = login(app.test_client(), world["enterprise"])
    r = client.post(f"/needs/{need.id}/edit", data=_stored_form(need), follow_redirects=True)
    assert r.status_code == 200
    db.session.refresh(need)
    assert need.status == "published"
    assert "went back to review" not in r.get_data(as_text=True) and "重新审核" not in r.get_data(as_text=True)


@pytest.mark.parametrize("status", ["draft", "submitted", "returned"])
def test_a_coordinator_of_another_city_does_not_see_unpublished_work(app, make, world, status):
    """Does a coordinator scoped to Chengdu get 404 for a Chongqing need that is not published (page and
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
    """Can a Chengdu coordinator still read a published Chongqing need, coordinators-only ones included, with
    its contact (docking across hub cities)?"""
    need = _need(make, world, hub_city="chongqing", visibility="coordinators")
    elsewhere = make.user(Role.COORDINATOR, hub_city="chengdu")
    page = login(app.test_client(), elsewhere).get(f"/needs/{need.id}")
    assert page.status_code == 200 and "wang@example.com" in page.get_data(as_text=True)


def test_the_csv_export_follows_the_same_scope(app, make, world):
    """Does a Chengdu coordinator's export of every status leave out Chongqing work in progress (and its
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
    """Does the home page's count of published needs leave out coordinators-only needs for an anonymous
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
    """Two experts of one institute: can the colleague edit, close or delete the other's capability (page and
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
    """Does /needs?page=99, past the last page of existing results, offer a way back to page 1 instead of
    only "nothing found" next to a non-zero count?"""
    make.need(world["enterprise"], title="唯一的需求")
    page = app.test_client().get("/needs?page=99&industry=new_energy").get_data(as_text=True)
    assert 'id="first-page"' in page
    link = page.split('id="first-page"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0]
    assert "page=1" in link and "industry=new_energy" in link
