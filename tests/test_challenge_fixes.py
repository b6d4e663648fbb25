"""揭榜挂帅 fixes: who manages and sees a challenge when its need moves or goes back to review, challenges on
needs only coordinators may see, and the "publish a challenge" offers on a filtered list."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from matchmaker.challenges import operations as ops
from matchmaker.challenges.models import Challenge
from matchmaker.core.enums import Role
from matchmaker.core.time import utcnow
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.listings.models import Need
from tests.conftest import login
from tests.test_challenges import bid, cw, publish  # noqa: F401  (cw is a fixture)


def set_need(need, **values) -> None:
    """Put the need in a state an edit leads to (moved, back in review, hidden), whatever the listing rules
    about editing a need with a live challenge."""
    db.session.execute(update(Need).where(Need.id == need.id).values(**values))
    db.session.commit()
    db.session.expire_all()


def test_a_city_challenge_stays_with_the_publishing_city_when_the_need_moves(cw, make):
    """When the firm moves a need to another hub city, does the city that published the challenge keep
    managing it, and does the new city's coordinator not gain it?"""
    c = publish(cw, by=cw["coord"])  # chongqing, on behalf of the city
    chengdu = make.user(Role.COORDINATOR, hub_city="chengdu")
    set_need(cw["need"], hub_city="chengdu", status="submitted")
    assert (c.hub_city, cw["need"].hub_city, cw["need"].status) == ("chongqing", "chengdu", "submitted")
    assert c.can_manage(cw["coord"]) and not c.can_manage(chengdu)
    with pytest.raises(WorkflowError) as err:
        ops.start_shortlisting(c, chengdu)
    assert err.value.status == 403
    db.session.rollback()
    ops.start_shortlisting(c, cw["coord"])
    db.session.commit()
    assert c.status == "shortlisting"


def test_bidders_keep_seeing_an_open_challenge_while_its_need_is_back_in_review(cw, make, app):
    """After an edit sends the need back to review, can a bidder still open (and edit the bid on) the challenge,
    and an eligible expert open it while it is open — while anonymous visitors and other firms get 404, the
    page does not link to the need page they cannot open, and a deleted need hides it from bidders?"""
    c = publish(cw)
    bidder, other_expert = cw["experts"][0], cw["experts"][1]
    bid(c, bidder)
    set_need(cw["need"], title="低温锂电池放电性能提升（修订）", status="submitted")
    assert cw["need"].status == "submitted"
    url = f"/challenges/{c.id}"
    page = login(app.test_client(), bidder).get(url)
    assert page.status_code == 200
    assert f'href="/needs/{cw["need"].id}"' not in page.get_data(as_text=True)
    assert login(app.test_client(), other_expert).get(url).status_code == 200
    assert app.test_client().get(url).status_code == 404
    assert login(app.test_client(), cw["other_enterprise"]).get(url).status_code == 404
    resp = login(app.test_client(), bidder).post(f"{url}/bid", data={
        "approach": "修订后的方案", "team_members": "", "budget": "250000", "timeline_months": "10"})
    assert resp.status_code == 303
    ops.start_shortlisting(c, cw["enterprise"])
    db.session.commit()
    assert login(app.test_client(), bidder).get(url).status_code == 200  # they bid: they follow it
    assert login(app.test_client(), other_expert).get(url).status_code == 404  # no longer open, no bid
    set_need(cw["need"], deleted_at=utcnow())
    page = login(app.test_client(), bidder).get(url)
    assert page.status_code == 404 and "023-61234567" not in page.get_data(as_text=True)


def test_a_challenge_on_a_need_only_coordinators_see_is_refused(cw, make, client_as):
    """Is publishing a challenge on a need visible to coordinators only refused with a reason (bidders could
    not open it), by the service and the form, and is that need not offered on the list page?"""
    hidden = make.need(cw["enterprise"], title="内部保密需求标题", visibility="coordinators")
    for publisher in (cw["enterprise"], cw["coord"]):
        with pytest.raises(WorkflowError) as err:
            ops.publish_challenge(hidden, publisher, reward=Decimal(1000), deadline=utcnow() + timedelta(days=5),
                                  terms="条款")
        assert err.value.status == 409
        db.session.rollback()
    firm = client_as("enterprise")
    resp = firm.post(f"/challenges/new/{hidden.id}", data={"reward": "1000", "deadline": "2099-12-31",
                                                           "terms": "条款"})
    assert resp.status_code == 409
    assert db.session.scalar(select(func.count(Challenge.id))) == 0
    assert f"/challenges/new/{hidden.id}" not in firm.get("/challenges").get_data(as_text=True)


def test_experts_are_invited_only_when_they_can_open_the_challenge(cw, monkeypatch):
    """Once the need is hidden from the public after publication, does 'invite best-matching experts' stop
    sending invitations whose link would 404?"""
    import matchmaker.matching_service as matching
    import matchmaker.suggestions.queries as queries
    from matchmaker.notifications.models import Notification
    c = publish(cw)
    cap = SimpleNamespace(expert=SimpleNamespace(user=cw["experts"][1]), created_by=None)
    monkeypatch.setattr(matching, "get_engine", lambda *a, **kw: object())
    monkeypatch.setattr(queries, "capabilities_for_need", lambda *a, **kw: [SimpleNamespace(listing=cap)])
    assert ops.invite_matching_experts(c, cw["coord"]) == 1
    set_need(cw["need"], visibility="coordinators")
    assert not c.can_view(cw["experts"][1])
    assert ops.invite_matching_experts(c, cw["coord"]) == 0
    assert db.session.scalar(select(func.count(Notification.id)).where(Notification.kind == "challenge.invite")) == 1


def test_the_publish_offer_ignores_the_status_filter(cw, make, client_as):
    """With the list filtered to awarded challenges, is a need with an open challenge still not offered for a new
    challenge (while one without a challenge is)?"""
    publish(cw)
    spare = make.need(cw["enterprise"], title="另一个已发布的需求")
    page = client_as("enterprise").get("/challenges?status=awarded").get_data(as_text=True)
    assert f"/challenges/new/{cw['need'].id}" not in page
    assert f"/challenges/new/{spare.id}" in page


@pytest.mark.parametrize("withdraw", ["close", "delete"])
def test_withdrawing_the_need_cancels_its_live_challenge(cw, withdraw):
    """When the firm closes or deletes the need, is its open challenge cancelled with a reason and the bids
    marked not selected, instead of staying open for bids nobody can see the need of?"""
    from matchmaker.listings import operations as listing_ops
    c = publish(cw)
    b = bid(c, cw["experts"][0])
    action = listing_ops.close_listing if withdraw == "close" else listing_ops.delete_listing
    action(cw["need"], cw["enterprise"])
    db.session.commit()
    db.session.refresh(c)
    db.session.refresh(b)
    assert c.status == "cancelled" and c.close_reason and b.status == "not_selected"


def test_the_need_page_offers_to_publish_a_challenge(cw, app):
    """Does the owner of a published public need find a "publish a challenge" button on the need's page (the
    challenges page says it is there), while another firm does not?"""
    url = f"/needs/{cw['need'].id}"
    mine = login(app.test_client(), cw["enterprise"]).get(url).get_data(as_text=True)
    assert f'href="/challenges/new/{cw["need"].id}"' in mine
    theirs = login(app.test_client(), cw["other_enterprise"]).get(url).get_data(as_text=True)
    assert "/challenges/new/" not in theirs
