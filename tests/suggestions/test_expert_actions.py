"""Can an expert act on a suggested need — "interested" (a pairing the firm and the hub city's coordinators see)
and "not for me" (stored once, audited, undoable)? The engine stays off here: tests/suggestions/test_dismissal_ranking.py
covers what a dismissal does to the suggestions, the digest and the ranking with the real model."""
from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.pairings.models import NeedDismissal, Pairing, PairingSide
from tests.helpers import login, notes_of

EN = "?lang=en"


def _dismissals(user) -> list:
    return db.session.scalars(db.select(NeedDismissal).where(NeedDismissal.user_id == user.id)).all()


def _audit(action) -> list:
    return db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)).all()


def test_interested_starts_a_pairing_the_firm_and_coordinators_see(make, world, client_as):
    """Does "interested" on a suggested need create a pairing proposed by the expert's side (their capability,
    their side interested), tell the firm and the coordinators of the need's hub city (not those of another
    city), and does the firm then find it among its pairings?"""
    need = make.need(world["enterprise"], hub_city="chongqing")
    cap = make.capability(world["expert"])
    here = make.user(Role.COORDINATOR, hub_city="chongqing")
    elsewhere = make.user(Role.COORDINATOR, hub_city="chengdu")
    response = client_as("expert").post(f"/suggestions/{need.id}/interested{EN}",
                                        data={"capability_id": str(cap.id)})
    assert response.status_code == 303
    pairing = db.session.scalars(db.select(Pairing).where(Pairing.need_id == need.id)).one()
    assert response.headers["Location"].endswith(f"/pairings/{pairing.id}")
    assert (pairing.state, pairing.origin, pairing.capability_id) == ("proposed", "capability", cap.id)
    assert pairing.response_of(PairingSide.CAPABILITY).decision == "interested"
    assert pairing.response_of(PairingSide.NEED) is None  # the firm answers next
    assert [n.kind for n in notes_of(world["enterprise"])] == ["pairing.proposed"]
    assert [n.kind for n in notes_of(here)] == ["pairing.expert_interest"]
    assert [n.kind for n in notes_of(world["coordinator"])] == ["pairing.expert_interest"]  # unscoped
    assert notes_of(elsewhere) == []
    assert f"/pairings/{pairing.id}" in client_as("enterprise").get("/pairings").get_data(as_text=True)
    assert client_as("enterprise").get(f"/pairings/{pairing.id}").status_code == 200
    assert login(client_as(None), here).get(f"/pairings/{pairing.id}").status_code == 200


def test_interested_without_a_capability_pairs_the_expert_in_person(make, world, client_as):
    """With no capability named (a suggestion from the expert's bio), is the pairing need × expert?"""
    need = make.need(world["enterprise"])
    assert client_as("expert").post(f"/suggestions/{need.id}/interested").status_code == 303
    pairing = db.session.scalars(db.select(Pairing).where(Pairing.need_id == need.id)).one()
    assert (pairing.capability_id, pairing.expert_id) == (None, world["expert"].expert_profile.id)


def test_interested_refuses_someone_elses_capability_and_a_second_time(make, world, client_as):
    """Is a capability that is not the expert's own refused (400, nothing written), and is a second
    "interested" on the same need refused with a message, leaving one pairing?"""
    need = make.need(world["enterprise"])
    other_expert = make.user(Role.EXPERT, org=make.org(kind="institute"))
    theirs = make.capability(other_expert)
    expert = client_as("expert")
    assert expert.post(f"/suggestions/{need.id}/interested", data={"capability_id": str(theirs.id)}).status_code == 400
    assert expert.post(f"/suggestions/{need.id}/interested", data={"capability_id": "x1"}).status_code == 400
    assert db.session.scalars(db.select(Pairing)).all() == []
    expert.post(f"/suggestions/{need.id}/interested")
    again = expert.post(f"/suggestions/{need.id}/interested{EN}", follow_redirects=True)
    assert "This pairing already exists." in again.get_data(as_text=True)
    assert len(db.session.scalars(db.select(Pairing)).all()) == 1


def test_not_for_me_is_stored_once_with_its_reason_and_audited(make, world, client_as):
    """Does "not for me" store one row (reason and note), write an audit entry with the reason in words, and
    answer a second one with a message instead of a second row?"""
    need = make.need(world["enterprise"])
    expert = client_as("expert")
    response = expert.post(f"/suggestions/{need.id}/dismiss{EN}",
                           data={"reason": "not_relevant", "note": "  做的是电解液，不是电池管理  "})
    assert response.status_code == 303 and response.headers["Location"].endswith("/suggestions")
    [row] = _dismissals(world["expert"])
    assert (row.need_id, row.reason, row.note) == (need.id, "not_relevant", "做的是电解液，不是电池管理")
    [event] = _audit("suggestion.dismissed")
    assert (event.actor_id, event.target_type, event.target_id) == (world["expert"].id, "needs", need.id)
    assert "Not my field" in event.comment and "电解液" in event.comment
    again = expert.post(f"/suggestions/{need.id}/dismiss{EN}", follow_redirects=True)
    assert "already marked" in again.get_data(as_text=True)
    assert len(_dismissals(world["expert"])) == 1


@pytest.mark.parametrize("data", [{"reason": "bored"}, {"note": "长" * 501}])
def test_not_for_me_refuses_bad_input_and_writes_nothing(make, world, client_as, data):
    """Is an unknown reason or an over-long note refused with its message, with no row and no audit entry?"""
    need = make.need(world["enterprise"])
    page = client_as("expert").post(f"/suggestions/{need.id}/dismiss{EN}", data=data, follow_redirects=True)
    assert "Unknown reason." in page.get_data(as_text=True) or "at most 500 characters" in page.get_data(as_text=True)
    assert _dismissals(world["expert"]) == [] and _audit("suggestion.dismissed") == []


def test_a_dismissed_need_is_listed_and_may_be_suggested_again(make, world, client_as):
    """Does the "dismissed" list show the need with its reason, and does "suggest it again" remove the row
    (audited), after which taking it back once more is a 404?"""
    need = make.need(world["enterprise"], title="低温电池放电性能提升-撤销")
    expert = client_as("expert")
    expert.post(f"/suggestions/{need.id}/dismiss", data={"reason": "no_capacity"})
    page = expert.get(f"/suggestions/dismissed{EN}").get_data(as_text=True)
    assert f'data-id="{need.id}"' in page and "No time for it now" in page
    response = expert.post(f"/suggestions/{need.id}/restore")
    assert response.status_code == 303 and response.headers["Location"].endswith("/suggestions/dismissed")
    assert _dismissals(world["expert"]) == []
    assert [e.actor_id for e in _audit("suggestion.restored")] == [world["expert"].id]
    assert expert.post(f"/suggestions/{need.id}/restore").status_code == 404


def test_dismissals_are_one_per_expert_and_need_in_the_database(make, world):
    """Does the database itself refuse a second dismissal of one need by one expert, and an unknown reason?"""
    need = make.need(world["enterprise"])
    db.session.add(NeedDismissal(user_id=world["expert"].id, need_id=need.id))
    db.session.flush()
    for row in (NeedDismissal(user_id=world["expert"].id, need_id=need.id),
                NeedDismissal(user_id=world["coordinator"].id, need_id=need.id, reason="bored")):
        with pytest.raises(IntegrityError), db.session.begin_nested():
            db.session.add(row)
            db.session.flush()


def test_suggestion_actions_are_posts(make, world, client_as):
    """Are "interested", "not for me" and "suggest it again" refused as GET (nothing changes from a link)?"""
    need = make.need(world["enterprise"])
    expert = client_as("expert")
    for action in ("interested", "dismiss", "restore"):
        assert expert.get(f"/suggestions/{need.id}/{action}").status_code == 405
    assert _dismissals(world["expert"]) == [] and db.session.scalars(db.select(Pairing)).all() == []
