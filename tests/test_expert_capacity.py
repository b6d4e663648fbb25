"""An expert's capacity (the most open pairings they take on): set on the profile, respected by proposals."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from conftest import login
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.pairings import operations as ops
from matchmaker.pairings.models import Pairing
from test_matching_app import matching  # noqa: F401  (the fixture: the real engine, its own index folder)
from test_pairings import pw  # noqa: F401  (the fixture: need, capability, scoped coordinator)


def _capacity(pw, n: int) -> None:
    pw["expert"].expert_profile.max_active_pairings = n
    db.session.commit()


def _pairings_of(expert) -> int:
    return db.session.scalar(select(func.count(Pairing.id)).where(Pairing.expert_id == expert.expert_profile.id))


@pytest.mark.parametrize("value", ["-1", "101", "abc", ""])
def test_a_capacity_out_of_range_is_a_form_error(client_as, world, value):
    """Is a capacity outside 0–100 (or missing) refused on the profile form, keeping the stored one?"""
    user = world["expert"]
    response = client_as("expert").post("/profile", data={"name": user.name, "locale": "zh_CN",
                                                          "fields": ["big_data"], "max_active_pairings": value})
    assert response.status_code == 400
    db.session.refresh(user.expert_profile)
    assert user.expert_profile.max_active_pairings == 5


def test_the_profile_page_shows_the_capacity_to_experts_only(client_as, world):
    """Does the expert's profile form offer the capacity field (prefilled), and a firm's form not?"""
    expert_page = client_as("expert").get("/profile").get_data(as_text=True)
    assert 'name="max_active_pairings"' in expert_page and 'value="5"' in expert_page
    assert 'name="max_active_pairings"' not in client_as("enterprise").get("/profile").get_data(as_text=True)


def test_a_proposal_to_an_expert_at_capacity_is_refused(pw, make):
    """Once an expert's open pairings reach their maximum, is a coordinator's or a firm's proposal refused
    with the reason, and nothing written?"""
    _capacity(pw, 1)
    ops.propose_pairing(pw["need"], pw["cap"], by=pw["coord"])
    db.session.commit()
    second_need = make.need(pw["enterprise"])
    for by in (pw["coord"], pw["enterprise"]):
        with pytest.raises(WorkflowError) as err:
            ops.propose_pairing(second_need, pw["cap"], by=by)
        assert err.value.status == 409 and "1" in err.value.reason
        db.session.rollback()
    assert _pairings_of(pw["expert"]) == 1


def test_capacity_zero_pauses_proposals_but_not_the_experts_own(pw, make):
    """Does capacity 0 refuse every proposal from others while the expert can still propose one themselves?"""
    _capacity(pw, 0)
    with pytest.raises(WorkflowError):
        ops.propose_pairing(pw["need"], pw["cap"], by=pw["enterprise"])
    db.session.rollback()
    p = ops.propose_pairing(pw["need"], pw["cap"], by=pw["expert"])
    db.session.commit()
    assert p.origin == "capability" and _pairings_of(pw["expert"]) == 1


def test_a_closed_pairing_frees_its_place(pw, make):
    """Does a declined pairing stop counting, so the next proposal to the expert goes through?"""
    _capacity(pw, 1)
    p = ops.propose_pairing(pw["need"], pw["cap"], by=pw["coord"])
    ops.respond(p, pw["expert"], "capability", "declined", reason="too_early")
    db.session.commit()
    ops.propose_pairing(make.need(pw["enterprise"]), pw["cap"], by=pw["coord"])
    db.session.commit()
    assert _pairings_of(pw["expert"]) == 2


@pytest.mark.slow
def test_the_match_page_says_when_an_expert_is_at_capacity(app, matching, pw):
    """Does the need's match page replace the propose button by a note for an expert at capacity, and does a
    posted proposal come back as a message instead of a pairing?"""
    _capacity(pw, 0)
    client = login(app.test_client(), pw["enterprise"])
    page = client.get(f"/needs/{pw['need'].id}/matches").get_data(as_text=True)
    assert f'data-id="{pw["cap"].id}"' in page, "the capability should be among the matches"
    card = page.split(f'data-id="{pw["cap"].id}"', 1)[1].split('class="card card-listing', 1)[0]
    assert "at-capacity" in card and "propose-form" not in card
    r = client.post("/pairings/propose", data={"need_id": pw["need"].id, "capability_id": pw["cap"].id},
                    follow_redirects=True)
    assert r.status_code == 200 and "alert-danger" in r.get_data(as_text=True)
    assert _pairings_of(pw["expert"]) == 0
    _capacity(pw, 3)
    page = client.get(f"/needs/{pw['need'].id}/matches").get_data(as_text=True)
    card = page.split(f'data-id="{pw["cap"].id}"', 1)[1].split('class="card card-listing', 1)[0]
    assert "propose-form" in card and "at-capacity" not in card
