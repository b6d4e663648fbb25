"""揭榜挂帅 challenges: publishing, bid rules, shortlisting, the one-winner rule, invitations, pages."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from matchmaker.challenges import operations as ops
from matchmaker.challenges.models import Bid, Challenge
from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.core.time import utcnow
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.listings.models import Need
from tests.helpers import login


@pytest.fixture
def cw(make, world):
    need = make.need(world["enterprise"])  # chongqing, published
    coord = make.user(Role.COORDINATOR, hub_city="chongqing")
    experts = [world["expert"]] + [make.user(Role.EXPERT, org=world["institute"]) for _ in range(2)]
    return {**world, "need": need, "coord": coord, "experts": experts}


def publish(cw, by=None, days=30) -> Challenge:
    c = ops.publish_challenge(cw["need"], by or cw["enterprise"], reward=Decimal("500000"),
                              deadline=utcnow() + timedelta(days=days), terms="交付样品并通过第三方检测。")
    db.session.commit()
    return c


def bid(c, user, budget="300000") -> Bid:
    b = ops.submit_bid(c, user, approach="改性电解液+预热管理", team_members="张三、李四", budget=Decimal(budget),
                       timeline_months=12)
    db.session.commit()
    return b


def actions(target) -> list[str]:
    return db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.target_type == target.__tablename__, AuditEvent.target_id == target.id)
        .order_by(AuditEvent.id)).all()


def test_firm_and_scoped_coordinator_may_publish_others_may_not(cw, make):
    """Can the need's firm and a coordinator of its city publish (as firm / as hub city), while another
    enterprise, a coordinator of another city, or a draft need are refused?"""
    c = publish(cw)
    assert (c.publisher, c.organization_id, c.status) == ("firm", cw["firm"].id, "open")
    ops.cancel(c, cw["enterprise"], "改为城市发榜")
    db.session.commit()
    c2 = publish(cw, by=cw["coord"])
    assert (c2.publisher, c2.hub_city, c2.organization_id) == ("hub_city", "chongqing", None)
    assert actions(c2) == ["challenge.publish"]
    with pytest.raises(WorkflowError) as err:  # one live challenge per need
        publish(cw)
    assert err.value.status == 409
    db.session.rollback()
    for outsider in (cw["other_enterprise"], make.user(Role.COORDINATOR, hub_city="chengdu")):
        with pytest.raises(WorkflowError) as err:
            ops.publish_challenge(cw["need"], outsider, reward=Decimal(1), deadline=utcnow() + timedelta(days=1),
                                  terms="x")
        assert err.value.status == 403
    draft = make.need(cw["enterprise"], status="draft")
    with pytest.raises(WorkflowError):
        ops.publish_challenge(draft, cw["enterprise"], reward=Decimal(1), deadline=utcnow() + timedelta(days=1),
                              terms="x")


def test_one_bid_per_expert_edited_in_place_until_the_deadline(cw):
    """Does a second submission edit the expert's one bid, and is bidding refused after the deadline?"""
    c = publish(cw)
    first = bid(c, cw["experts"][0], "300000")
    again = bid(c, cw["experts"][0], "280000")
    assert again.id == first.id and again.budget == Decimal("280000.00")
    assert db.session.scalar(select(func.count(Bid.id))) == 1
    assert actions(first) == ["bid.submit", "bid.edit"]
    db.session.execute(update(Challenge).where(Challenge.id == c.id).values(deadline=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    db.session.refresh(c)
    with pytest.raises(WorkflowError):
        bid(c, cw["experts"][1])
    db.session.rollback()
    with pytest.raises(WorkflowError):
        bid(c, cw["experts"][0], "1")
    db.session.rollback()
    assert db.session.get(Bid, first.id).budget == Decimal("280000.00")


def test_the_database_refuses_a_second_bid_by_the_same_expert(cw):
    """Is UNIQUE (challenge, bidder) enforced by the database itself?"""
    c = publish(cw)
    bid(c, cw["experts"][0])
    with pytest.raises(IntegrityError), db.session.begin_nested():
        db.session.add(Bid(challenge_id=c.id, bidder_id=cw["experts"][0].id, approach="再来一次",
                           budget=Decimal(1), timeline_months=1))


def test_no_bids_from_the_needs_own_organization_or_from_non_experts(cw, make):
    """Are bids from a member of the need's own firm (even an expert) and from plain enterprise users refused?"""
    c = publish(cw)
    insider = make.user(Role.EXPERT, org=cw["firm"])
    for user in (insider, cw["enterprise"], cw["other_enterprise"]):
        with pytest.raises(WorkflowError) as err:
            ops.submit_bid(c, user, approach="x", team_members="", budget=Decimal(1), timeline_months=1)
        assert err.value.status == 403
    assert db.session.scalar(select(func.count(Bid.id))) == 0


def test_shortlist_and_award_exactly_one_winner(cw):
    """Does awarding a shortlisted bid make it the only winner, mark the others not selected, close the
    challenge, notify the winner and audit every step — and refuse a second award?"""
    c = publish(cw)
    bids = [bid(c, e) for e in cw["experts"]]
    with pytest.raises(WorkflowError):  # shortlisting needs bidding closed first
        ops.shortlist_bid(c, bids[0].id, cw["coord"])
    db.session.rollback()
    ops.start_shortlisting(c, cw["coord"])
    ops.shortlist_bid(c, bids[0].id, cw["coord"])
    ops.shortlist_bid(c, bids[1].id, cw["enterprise"])
    db.session.commit()
    with pytest.raises(WorkflowError):  # a bid that is not shortlisted cannot win
        ops.award(c, bids[2].id, cw["coord"])
    db.session.rollback()
    ops.award(c, bids[1].id, cw["coord"])
    db.session.commit()
    assert c.status == "awarded" and c.awarded_at is not None
    assert [b.status for b in bids] == ["not_selected", "won", "not_selected"]
    with pytest.raises(WorkflowError):
        ops.award(c, bids[0].id, cw["coord"])
    db.session.rollback()
    assert actions(c) == ["challenge.publish", "challenge.shortlisting", "challenge.awarded"]
    assert actions(bids[1])[-1] == "bid.won"
    from matchmaker.notifications.models import Notification
    assert db.session.scalars(select(Notification.user_id).where(Notification.kind == "challenge.won")).all() == [
        cw["experts"][1].id]


def test_the_database_allows_only_one_winning_bid(cw):
    """Does the partial unique index refuse a second 'won' bid on one challenge, whatever code writes it?"""
    c = publish(cw)
    b1, b2 = bid(c, cw["experts"][0]), bid(c, cw["experts"][1])
    b1.status = "won"
    db.session.commit()
    with pytest.raises(IntegrityError), db.session.begin_nested():
        db.session.execute(update(Bid).where(Bid.id == b2.id).values(status="won"))


def test_foreign_bid_id_and_outsiders_cannot_manage(cw, make):
    """Are a bid of another challenge and a manager from another city or firm refused?"""
    c = publish(cw)
    other_need = make.need(cw["enterprise"], title="另一个需求标题")
    c2 = ops.publish_challenge(other_need, cw["enterprise"], reward=Decimal(1),
                               deadline=utcnow() + timedelta(days=3), terms="条款")
    db.session.commit()
    foreign = bid(c2, cw["experts"][0])
    ops.start_shortlisting(c, cw["coord"])
    with pytest.raises(WorkflowError) as err:
        ops.shortlist_bid(c, foreign.id, cw["coord"])
    assert err.value.status == 404
    db.session.rollback()
    for outsider in (cw["other_enterprise"], make.user(Role.COORDINATOR, hub_city="chengdu"), cw["experts"][0]):
        with pytest.raises(WorkflowError) as err:
            ops.cancel(c, outsider, "no")
        assert err.value.status == 403
        db.session.rollback()


def test_invite_is_skipped_gracefully_when_matching_is_off(cw, app):
    """With matching switched off, does 'invite best-matching experts' invite nobody and say so (no error)?"""
    c = publish(cw)
    assert ops.invite_matching_experts(c, cw["coord"]) is None
    client = login(app.test_client(), cw["coord"])
    resp = client.post(f"/challenges/{c.id}/invite", follow_redirects=True)
    assert resp.status_code == 200


def test_pages_list_detail_bid_and_award(cw, client_as, app):
    """Do the list and detail pages show the challenge, does an expert bid through the form, and can the firm
    shortlist and award through the buttons?"""
    c = publish(cw)
    assert cw["need"].title in client_as(None).get("/challenges").get_data(as_text=True)
    expert = client_as("expert")
    assert 'id="bid-form"' in expert.get(f"/challenges/{c.id}").get_data(as_text=True)
    resp = expert.post(f"/challenges/{c.id}/bid", data={"approach": "方案", "team_members": "团队", "budget": "1000",
                                                        "timeline_months": "6"})
    assert resp.status_code == 303
    assert expert.post(f"/challenges/{c.id}/bid", data={"approach": "", "budget": "-1",
                                                        "timeline_months": "0"}).status_code == 400
    [b] = db.session.scalars(select(Bid)).all()
    firm = client_as("enterprise")
    assert "方案" in firm.get(f"/challenges/{c.id}").get_data(as_text=True)
    assert "方案" not in client_as("other_enterprise").get(f"/challenges/{c.id}").get_data(as_text=True)
    assert firm.post(f"/challenges/{c.id}/shortlisting").status_code == 303
    assert firm.post(f"/challenges/{c.id}/bids/{b.id}/shortlist").status_code == 303
    assert firm.post(f"/challenges/{c.id}/bids/{b.id}/award").status_code == 303
    db.session.expire_all()
    assert db.session.get(Challenge, c.id).status == "awarded" and db.session.get(Bid, b.id).status == "won"


def test_create_page_publishes_for_the_owner_only(cw, client_as):
    """Does the create form publish for the owning firm and refuse another enterprise (403)?"""
    url = f"/challenges/new/{cw['need'].id}"
    assert client_as("other_enterprise").get(url).status_code == 403
    resp = client_as("enterprise").post(url, data={"reward": "100000", "deadline": "2099-12-31", "terms": "条款"})
    assert resp.status_code == 303
    assert db.session.scalars(select(Challenge)).one().reward == Decimal("100000.00")


def test_index_offers_the_firms_published_needs_as_starting_points(cw, client_as):
    """Does the list page offer the firm its published needs without a live challenge (and hide them once one
    is published)?"""
    url = f"/challenges/new/{cw['need'].id}"
    assert url in client_as("enterprise").get("/challenges").get_data(as_text=True)
    assert url not in client_as("other_enterprise").get("/challenges").get_data(as_text=True)
    publish(cw)
    assert url not in client_as("enterprise").get("/challenges").get_data(as_text=True)


def test_cancel_needs_a_reason_closes_bids_and_is_final(cw):
    """Does cancelling require a reason, mark open bids not selected (audited) and refuse any later transition?"""
    c = publish(cw)
    b = bid(c, cw["experts"][0])
    with pytest.raises(WorkflowError):
        ops.cancel(c, cw["enterprise"], "")
    db.session.rollback()
    ops.cancel(c, cw["enterprise"], "需求已由内部解决")
    db.session.commit()
    assert (c.status, c.close_reason, b.status) == ("cancelled", "需求已由内部解决", "not_selected")
    assert actions(b)[-1] == "bid.not_selected"
    for attempt in (lambda: ops.start_shortlisting(c, cw["coord"]), lambda: ops.cancel(c, cw["coord"], "again"),
                    lambda: bid(c, cw["experts"][1])):
        with pytest.raises(WorkflowError):
            attempt()
        db.session.rollback()


def test_a_deadline_date_ends_at_midnight_beijing_time(cw, client_as):
    """Does a deadline chosen as a date close bidding at the end of that day in Beijing (15:59:59 UTC), not
    eight hours later, and does the page show that day?"""
    resp = client_as("enterprise").post(f"/challenges/new/{cw['need'].id}",
                                        data={"reward": "100000", "deadline": "2099-12-11", "terms": "条款"})
    assert resp.status_code == 303
    c = db.session.scalars(select(Challenge)).one()
    assert c.deadline.astimezone(timezone.utc) == datetime(2099, 12, 11, 15, 59, 59, tzinfo=timezone.utc)
    page = client_as(None).get(f"/challenges/{c.id}").get_data(as_text=True)
    assert "2099-12-11" in page and "2099-12-12" not in page


def test_a_budget_of_zero_is_a_budget(cw, client_as):
    """Is a bid with budget 0 accepted by the form (the rules allow zero), while an empty budget is refused?"""
    c = publish(cw)
    expert = client_as("expert")
    data = {"approach": "方案", "team_members": "", "timeline_months": "6"}
    assert expert.post(f"/challenges/{c.id}/bid", data={**data, "budget": ""}).status_code == 400
    assert expert.post(f"/challenges/{c.id}/bid", data={**data, "budget": "0"}).status_code == 303
    assert db.session.scalars(select(Bid)).one().budget == Decimal("0.00")


def test_a_lost_race_inside_an_action_is_a_warning_not_a_500(cw, client_as, app):
    """When another request changes the challenge between loading and flushing (version check), does the
    manage action answer with the 'changed meanwhile' warning and save nothing, instead of a server error?"""
    from sqlalchemy import event
    c = publish(cw)
    cid = c.id

    def bump_version(session, _ctx, _instances):
        session.execute(text("UPDATE challenges SET version = version + 1 WHERE id = :i"), {"i": cid})

    event.listen(db.session, "before_flush", bump_version)
    try:
        resp = client_as("enterprise").post(f"/challenges/{cid}/shortlisting", follow_redirects=True)
    finally:
        event.remove(db.session, "before_flush", bump_version)
    assert resp.status_code == 200 and "该榜单已被他人修改" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Challenge, cid).status == "open"


# -- review fixes (2026-12-02): who manages a challenge when its need moves, coordinators-only needs, offers ---


def set_need(need, **values) -> None:
    """Put the need in a state an edit leads to (moved, back in review, hidden), whatever the listing rules
    about editing a need with a live challenge."""
    db.session.execute(update(Need).where(Need.id == need.id).values(**values))
    db.session.commit()
    db.session.expire_all()


def test_a_city_challenge_stays_with_the_publishing_city_when_the_need_moves(cw, make):
    """Regression (2026-12-02): When the firm moves a need to another hub city, does the city that published the challenge keep
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
    """Regression (2026-12-02): After an edit sends the need back to review, can a bidder still open (and edit the bid on) the challenge,
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
    """Regression (2026-12-02): Is publishing a challenge on a need visible to coordinators only refused with a reason (bidders could
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
    """Regression (2026-12-02): Once the need is hidden from the public after publication, does 'invite best-matching experts' stop
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
    """Regression (2026-12-02): With the list filtered to awarded challenges, is a need with an open challenge still not offered for a new
    challenge (while one without a challenge is)?"""
    publish(cw)
    spare = make.need(cw["enterprise"], title="另一个已发布的需求")
    page = client_as("enterprise").get("/challenges?status=awarded").get_data(as_text=True)
    assert f"/challenges/new/{cw['need'].id}" not in page
    assert f"/challenges/new/{spare.id}" in page


@pytest.mark.parametrize("withdraw", ["close", "delete"])
def test_withdrawing_the_need_cancels_its_live_challenge(cw, withdraw):
    """Regression (2026-12-02): When the firm closes or deletes the need, is its open challenge cancelled with a reason and the bids
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
    """Regression (2026-12-02): Does the owner of a published public need find a "publish a challenge" button on the need's page (the
    challenges page says it is there), while another firm does not?"""
    url = f"/needs/{cw['need'].id}"
    mine = login(app.test_client(), cw["enterprise"]).get(url).get_data(as_text=True)
    assert f'href="/challenges/new/{cw["need"].id}"' in mine
    theirs = login(app.test_client(), cw["other_enterprise"]).get(url).get_data(as_text=True)
    assert "/challenges/new/" not in theirs
