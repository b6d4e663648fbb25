"""Half-written drafts: a firm saves what it has, and is asked for the rest when it submits."""
from __future__ import annotations

from tests.helpers import login
from matchmaker.extensions import db
from matchmaker.listings.models import Need

EN = "?lang=en"


def _draft(client, **fields):
    data = {"title": "半成品需求草稿", "industry": "new_energy", "save_draft": "Save draft", **fields}
    return client.post("/needs/new" + EN, data=data)


def test_a_draft_needs_only_a_title_and_an_industry(app, world):
    """Can a firm save a need draft with just a title and an industry (every other required field blank),
    and is "Save and submit" with the same form still refused with the fields named?"""
    client = login(app.test_client(), world["enterprise"])
    response = _draft(client)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    need = db.session.scalars(db.select(Need).where(Need.title == "半成品需求草稿")).one()
    assert need.status == "draft" and need.hub_city is None and need.contact_name is None
    refused = client.post("/needs/new" + EN, data={"title": "另一份需求草稿", "industry": "new_energy",
                                                   "save_submit": "Save and submit"})
    assert refused.status_code == 400 and "Describe the technical problems to solve." in refused.get_data(
        as_text=True)
    assert _draft(client, title="").status_code == 400  # a title is needed even for a draft


def test_submitting_an_incomplete_draft_names_what_is_missing(app, world):
    """Is the "Submit for review" button on an incomplete draft refused with the missing fields named, the
    draft left a draft — and accepted once they are filled in?"""
    client = login(app.test_client(), world["enterprise"])
    _draft(client)
    need = db.session.scalars(db.select(Need).where(Need.title == "半成品需求草稿")).one()
    page = client.post(f"/needs/{need.id}/submit" + EN, follow_redirects=True).get_data(as_text=True)
    assert "Fill in before submitting" in page and "Key technical problems" in page and "Hub city" in page
    db.session.refresh(need)
    assert need.status == "draft"
    filled = {"title": need.title, "industry": "new_energy", "problems": "低温放电容量不足。",
              "targets": "-20℃容量保持率≥85%。", "hub_city": "chongqing", "coop_modes": ["joint_dev"],
              "contact_name": "王工", "contact_phone": "023-61234567", "visibility": "public",
              "version": str(need.version), "save_submit": "Save and submit"}
    assert client.post(f"/needs/{need.id}/edit" + EN, data=filled).status_code == 303
    db.session.refresh(need)
    assert need.status == "submitted"


def test_a_listing_under_review_stays_strict(app, world, make):
    """Can "Save draft" be used to blank required fields of a listing that is already under review? (No:
    only drafts may be incomplete.)"""
    need = make.need(world["enterprise"], status="submitted")
    client = login(app.test_client(), world["enterprise"])
    response = client.post(f"/needs/{need.id}/edit" + EN, data={
        "title": need.title, "industry": need.industry, "version": str(need.version), "save_draft": "Save draft"})
    assert response.status_code == 400
    db.session.refresh(need)
    assert need.problems and need.hub_city == "chongqing"
