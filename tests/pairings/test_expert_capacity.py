"""An expert's capacity (the most open pairings they take on): set on the profile, respected by proposals."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from matchmaker.core.enums import Role
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.listings import operations as listing_ops
from matchmaker.pairings import operations as ops
from matchmaker.pairings.models import Pairing
from matchmaker.pairings.models import PairingState as P
from tests.helpers import login, notes_of, pairing_at


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


def test_the_propose_button_is_offered_only_where_it_would_work(app, matching, pw, make):
    """Is the propose button hidden from a coordinator of another hub city (the POST would be refused) and,
    once the pair exists, replaced by a note for the firm?"""
    from matchmaker.core.enums import Role

    def card(user):
        page = login(app.test_client(), user).get(f"/needs/{pw['need'].id}/matches").get_data(as_text=True)
        assert f'data-id="{pw["cap"].id}"' in page, "the capability should be among the matches"
        return page.split(f'data-id="{pw["cap"].id}"', 1)[1].split('class="card card-listing', 1)[0]

    assert "propose-form" not in card(make.user(Role.COORDINATOR, hub_city="chengdu"))
    assert "propose-form" in card(pw["coord"])
    ops.propose_pairing(pw["need"], pw["cap"], by=pw["enterprise"])
    db.session.commit()
    mine = card(pw["enterprise"])
    assert "propose-form" not in mine and "already-paired" in mine
    pairing_id = db.session.scalar(select(Pairing.id).where(Pairing.need_id == pw["need"].id))
    assert f'href="/pairings/{pairing_id}"' in mine  # the note leads to the pairing


def _capacity_race_world(app) -> dict:
    """An expert who takes one open pairing, two published needs of two firms, a coordinator; committed."""
    from matchmaker.accounts.models import ExpertProfile, Membership, Organization, User
    from matchmaker.core.enums import Role
    from matchmaker.core.time import utcnow
    from matchmaker.listings.models import Need
    with app.app_context():
        now = utcnow()
        inst = Organization(name="容量研究院", kind="institute", hub_city="chengdu")
        coord = User(email="coord@capacity.test", name="协调员", password_hash="x")
        coord.add_role(Role.COORDINATOR)
        expert = User(email="expert@capacity.test", name="专家", password_hash="x")
        db.session.add_all([inst, coord, expert])
        db.session.flush()
        profile = ExpertProfile(user_id=expert.id, affiliation_id=inst.id, max_active_pairings=1)
        db.session.add(profile)
        needs = []
        for i in range(2):
            firm = Organization(name=f"容量企业{i}", kind="enterprise", hub_city="chongqing")
            member = User(email=f"firm{i}@capacity.test", name=f"企业{i}", password_hash="x")
            member.memberships.append(Membership(organization=firm, is_manager=True))
            db.session.add_all([firm, member])
            db.session.flush()
            need = Need(title=f"容量测试需求{i}", industry="new_energy", status="published", submitted_at=now,
                        published_at=now, reviewed_by_id=coord.id, organization_id=firm.id,
                        hub_city="chongqing")
            db.session.add(need)
            needs.append(need)
        db.session.commit()
        return {"coord": coord.id, "profile": profile.id, "needs": [n.id for n in needs]}


def test_two_simultaneous_proposals_cannot_both_take_the_last_place(separate_app):
    """Two coordinator sessions propose the same one-place expert for two needs at the same moment, with real
    commits (SQLite file or PostgreSQL): does exactly one get through and the other get the 409?"""
    import threading

    from matchmaker.accounts.models import ExpertProfile, User
    from matchmaker.listings.models import Need
    ids = _capacity_race_world(separate_app)
    barrier = threading.Barrier(2)
    outcomes: list = []

    def worker(need_id):
        # as in a POST request: on SQLite its transaction begins by taking the write lock (extensions.py)
        with separate_app.test_request_context("/pairings/propose", method="POST"):
            try:
                barrier.wait(timeout=10)  # before the first query: SQLite lets one writer in at a time
                coord = db.session.get(User, ids["coord"])
                need = db.session.get(Need, need_id)
                profile = db.session.get(ExpertProfile, ids["profile"])
                ops.propose_pairing(need, expert=profile, by=coord)
                db.session.commit()
                outcomes.append("ok")
            except WorkflowError as exc:
                db.session.rollback()
                outcomes.append(exc.status)
            except Exception as exc:  # anything else is a failure the assertion below reports
                outcomes.append(f"unexpected {exc!r}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(nid,)) for nid in ids["needs"]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(map(str, outcomes)) == ["409", "ok"], outcomes
    with separate_app.app_context():
        assert db.session.scalar(select(func.count(Pairing.id)).where(Pairing.expert_id == ids["profile"])) == 1
        db.session.remove()


# -- pairing lifecycle fixes (2026-12-02): a withdrawn need frees the expert; colleagues and capacity --------


@pytest.mark.parametrize("withdraw", ["close", "delete"])
def test_withdrawing_a_need_ends_its_open_pairings_and_frees_the_expert(pw, make, withdraw):
    """Regression (2026-12-02): When the firm closes or deletes its need, does a pairing still waiting for answers end as declined,
    with the expert told and their place freed?"""
    _capacity(pw, 1)
    pairing = pairing_at(pw, P.PROPOSED)
    db.session.commit()
    assert _pairings_of(pw["expert"]) == 1
    before = len(notes_of(pw["expert"]))
    action = listing_ops.close_listing if withdraw == "close" else listing_ops.delete_listing
    action(pw["need"], pw["enterprise"])
    db.session.commit()
    db.session.refresh(pairing)
    assert pairing.state == P.DECLINED
    assert len(notes_of(pw["expert"])) == before + 1
    another = make.need(pw["other_enterprise"], hub_city="chongqing")
    ops.propose_pairing(another, pw["cap"], by=pw["coord"])  # no 409: the place was freed


def test_a_colleague_cannot_fill_an_expert_past_their_capacity(pw, make):
    """Regression (2026-12-02): Can a colleague of the expert (same institute, so "capability side") propose the expert's capability
    once the expert has no place left? (Only the expert may take on more.)"""
    _capacity(pw, 0)
    colleague = make.user(Role.EXPERT, org=pw["institute"])
    with pytest.raises(WorkflowError) as refused:
        ops.propose_pairing(pw["need"], pw["cap"], by=colleague)
    assert refused.value.status == 409
