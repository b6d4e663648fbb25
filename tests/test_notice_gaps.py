"""Notices a firm used to miss (a bid on its challenge, a voucher issued to it) and the inbox badge in the
navigation, including on pages served from the page cache."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from matchmaker.accounts.models import Membership
from matchmaker.challenges import operations as challenge_ops
from matchmaker.core import pagecache
from matchmaker.core.enums import Role
from matchmaker.core.time import programme_today, utcnow
from matchmaker.extensions import db
from matchmaker.notifications.models import Notification
from matchmaker.notifications.operations import notify
from matchmaker.vouchers import operations as voucher_ops
from tests.test_notifications import outbox  # noqa: F401  (the fixture: mail written to a temp folder)

BADGE = re.compile(r'id="nav-inbox-unread">(\d+)<span class="visually-hidden">')


def notes_of(user) -> list[Notification]:
    return db.session.scalars(select(Notification).where(Notification.user_id == user.id)
                              .order_by(Notification.id)).all()


def _challenge(need, by):
    challenge = challenge_ops.publish_challenge(need, by, reward=Decimal("500000"),
                                                deadline=utcnow() + timedelta(days=30), terms="交付样品。")
    db.session.commit()
    return challenge


def _bid(challenge, expert, budget="300000"):
    bid = challenge_ops.submit_bid(challenge, expert, approach="改性电解液+预热管理", team_members="张三",
                                   budget=Decimal(budget), timeline_months=12)
    db.session.commit()
    return bid


def test_a_bid_notifies_the_firm_and_not_the_bidder(make, world, outbox):
    """When an expert bids on a firm's challenge, do the need's owners get an inbox entry (and an email)
    linking to the challenge, in their own language, while the bidder gets nothing and an edit of the bid
    announces nothing again?"""
    firm_user, expert = world["enterprise"], world["expert"]
    firm_user.locale = "en"
    colleague = make.user(Role.ENTERPRISE, org=world["firm"])  # another manager of the firm
    need = make.need(firm_user, title="低温锂电池放电性能提升")
    challenge = _challenge(need, firm_user)
    _bid(challenge, expert)
    for owner in (firm_user, colleague):
        [note] = notes_of(owner)
        assert note.kind == "challenge.bid" and note.link == f"/challenges/{challenge.id}"
        assert "低温锂电池放电性能提升" in note.subject and expert.name in note.body
    assert notes_of(firm_user)[0].subject.startswith("New bid")  # the firm user reads English
    assert notes_of(expert) == []
    mails = [p.read_text() for p in outbox.glob("*.eml")]
    assert len(mails) == 2 and any(firm_user.email in m for m in mails)
    _bid(challenge, expert, "280000")  # an edit of the same bid
    assert len(notes_of(firm_user)) == 1


def test_a_bid_on_a_hub_city_challenge_notifies_the_firm_only(make, world):
    """On a challenge a hub-city coordinator published for the firm's need, does a bid reach the firm and
    nobody else (not the coordinator, not the bidder)?"""
    coord = make.user(Role.COORDINATOR, hub_city="chongqing")
    need = make.need(world["enterprise"])
    challenge = _challenge(need, coord)
    assert challenge.publisher == "hub_city"
    _bid(challenge, world["expert"])
    [note] = notes_of(world["enterprise"])
    assert note.link == f"/challenges/{challenge.id}"
    assert notes_of(coord) == [] and notes_of(world["expert"]) == []


def test_a_voucher_issue_notifies_the_enterprises_managers(make, world):
    """When a coordinator issues a voucher to an enterprise, do its managers (and only they, not a plain
    member nor the issuer) get an inbox entry linking to the voucher?"""
    firm = world["firm"]
    coord = make.user(Role.COORDINATOR, hub_city="chongqing")
    second_manager = make.user(Role.ENTERPRISE, org=firm)
    member = make.user(Role.ENTERPRISE)
    db.session.add(Membership(user=member, organization=firm, is_manager=False))
    db.session.commit()
    voucher = voucher_ops.issue_voucher(coord, firm, amount=Decimal("50000"),
                                        expires_on=programme_today() + timedelta(days=90), hub_city="chongqing")
    db.session.commit()
    for manager in (world["enterprise"], second_manager):
        [note] = notes_of(manager)
        assert note.kind == "voucher.issue" and note.link == f"/vouchers/{voucher.id}"
        assert voucher.code in note.body and "50000.00" in note.body
    assert notes_of(member) == [] and notes_of(coord) == []
    assert notes_of(world["other_enterprise"]) == []


def _page(client, url="/needs"):
    response = client.get(url)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    found = BADGE.search(page)
    return response.headers.get(pagecache.HEADER), (int(found.group(1)) if found else None), page


def test_the_nav_badge_shows_the_unread_count_and_follows_new_notifications_on_cached_pages(client_as, world):
    """Does the inbox link show the signed-in user's unread count (none at 0, with hidden text for screen
    readers), and does a page cached before a new notification — or before reading them — show the new
    count on the next view?"""
    user = world["enterprise"]
    client = client_as("enterprise")
    client.get("/needs")  # settle the session (its first request stamps it)
    state, count, page = _page(client)
    assert count is None and 'id="nav-inbox"' in page and "nav-inbox-unread" not in page
    assert _page(client)[0] == "hit"

    notify([user], "test.one", "第一条", email=False)
    db.session.commit()
    state, count, page = _page(client)
    assert (state, count) == ("miss", 1)
    assert _page(client)[:2] == ("hit", 1)  # the cached page carries the badge it was rendered with

    notify([user, world["expert"]], "test.two", "第二条", email=False)
    db.session.commit()
    assert _page(client)[:2] == ("miss", 2)
    assert _page(client, "/inbox")[1] == 2  # every page with the layout shows it
    assert _page(client_as("expert"))[1] == 1  # each user sees their own count

    assert client.post("/inbox/read").status_code == 302
    state, count, page = _page(client)
    assert state == "miss" and count is None and "nav-inbox-unread" not in page

