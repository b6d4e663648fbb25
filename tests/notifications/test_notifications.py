"""Do notifications reach the inbox, and does email leave only after the transaction commits?"""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest

from matchmaker.accounts.models import Membership
from matchmaker.challenges import operations as challenge_ops
from matchmaker.core import pagecache
from matchmaker.core.enums import Role
from matchmaker.core.time import programme_today, utcnow
from matchmaker.extensions import db
from matchmaker.notifications.models import Notification
from matchmaker.notifications.operations import notify, unread_count
from matchmaker.pairings.models import Pairing
from matchmaker.vouchers import operations as voucher_ops
from tests.helpers import login, notes_of


@pytest.fixture
def outbox(app, tmp_path):
    saved = app.config.get("MAIL_OUTBOX_DIR")
    app.config["MAIL_OUTBOX_DIR"] = str(tmp_path / "outbox")
    yield tmp_path / "outbox"
    app.config["MAIL_OUTBOX_DIR"] = saved


def _mails(outbox):
    return sorted(outbox.glob("*.eml")) if outbox.exists() else []


def test_email_only_after_commit(make, outbox):
    """Is the email written when the transaction commits, and not before?"""
    user = make.user(Role.EXPERT)
    notify([user], "pairing.approved", "对接已批准", "请查看详情", link="/inbox")
    assert _mails(outbox) == []
    db.session.commit()
    [mail] = _mails(outbox)
    assert user.email in mail.read_text()


def test_rolled_back_notification_sends_nothing(make, outbox):
    """If the change that caused a notification is rolled back, is neither inbox entry nor email left?"""
    user = make.user(Role.EXPERT)
    notify([user], "pairing.approved", "对接已批准")
    db.session.rollback()
    db.session.commit()
    assert _mails(outbox) == []
    assert db.session.scalar(db.select(db.func.count(Notification.id))) == 0


def test_inactive_and_duplicate_recipients_skipped(make, outbox):
    """Does one notify() reach each active user once?"""
    active, inactive = make.user(Role.EXPERT), make.user(Role.EXPERT, active=False)
    created = notify([active, active, inactive], "x", "subject", email=False)
    assert [n.user_id for n in created] == [active.id]


def test_inbox_shows_and_marks_read(make, world, client_as):
    """Does the inbox list the user's notification, and opening it (a POST) mark it read and follow its local
    link?"""
    [note] = notify([world["expert"]], "x", "新的推荐需求", link="/needs", email=False)
    db.session.commit()
    client = client_as("expert")
    assert "新的推荐需求" in client.get("/inbox").get_data(as_text=True)
    response = client.post(f"/inbox/{note.id}")
    assert response.status_code == 302 and response.headers["Location"].endswith("/needs")
    assert unread_count(world["expert"]) == 0


def test_reading_by_get_changes_nothing(make, world, client_as):
    """Regression (2026-12-07): opening the inbox or following a notification by GET marked notifications
    read; do GETs now leave them unread (reading changes state only by a POST)?"""
    [note] = notify([world["expert"]], "x", "新的推荐需求", link="/needs", email=False)
    db.session.commit()
    client = client_as("expert")
    assert client.get("/inbox").status_code == 200
    response = client.get(f"/inbox/{note.id}")
    assert response.status_code == 302 and response.headers["Location"].endswith("/needs")
    assert unread_count(world["expert"]) == 1


def test_external_link_is_not_followed(make, world, client_as):
    """Could a notification link send the user to another site? (It must not.)"""
    [note] = notify([world["expert"]], "x", "s", link="//evil.example/phish", email=False)
    db.session.commit()
    client = client_as("expert")
    for response in (client.get(f"/inbox/{note.id}"), client.post(f"/inbox/{note.id}")):
        assert response.headers["Location"].endswith("/inbox")


def test_a_released_savepoint_waits_for_the_outer_commit(make, outbox):
    """Is mail queued inside a savepoint held back when the savepoint is released, sent when the outer
    transaction commits, and never sent when the savepoint itself is rolled back?"""
    kept, dropped = make.user(Role.EXPERT), make.user(Role.EXPERT)
    sp = db.session.begin_nested()
    notify([kept], "pairing.approved", "保留的通知")
    sp.commit()
    assert _mails(outbox) == []
    sp = db.session.begin_nested()
    notify([dropped], "pairing.approved", "撤销的通知")
    sp.rollback()
    db.session.commit()
    [mail] = _mails(outbox)
    assert kept.email in mail.read_text() and dropped.email not in mail.read_text()


def test_work_rolled_back_after_a_released_savepoint_sends_nothing(make, outbox):
    """When the outer transaction is rolled back after a savepoint was released, is its mail dropped too?"""
    user = make.user(Role.EXPERT)
    sp = db.session.begin_nested()
    notify([user], "pairing.approved", "随后撤销")
    sp.commit()
    db.session.rollback()
    db.session.commit()
    assert _mails(outbox) == []


def test_a_refused_bulk_confirmation_mails_nobody(app, make, world, outbox):
    """A coordinator confirms a bulk assignment whose second pick is malformed (400): are the first pick's
    pairing and its proposal mails both gone, instead of mails about a pairing that does not exist?"""
    need = make.need(world["enterprise"])
    cap = make.capability(world["expert"])
    coord = make.user(Role.COORDINATOR, hub_city="chongqing")
    r = login(app.test_client(), coord).post("/coordinate/assign",
                                               data={"pick": [f"{need.id}:{cap.id}:0.8", "1:2:nan"]})
    assert r.status_code == 400
    assert db.session.scalar(db.select(Pairing.id).where(Pairing.capability_id == cap.id)) is None
    assert _mails(outbox) == []


def test_a_join_request_reaches_an_english_speaking_manager_in_english(client, make):
    """Someone registers on the Chinese pages asking to join a firm whose manager reads English: is the
    manager's notice in English, and a Chinese-reading co-manager's in Chinese?"""
    from tests.helpers import enterprise_form
    firm = make.org(kind="enterprise", name="已有公司")
    english = make.user(Role.ENTERPRISE, org=firm)
    english.locale = "en"
    chinese = make.user(Role.ENTERPRISE, org=firm)
    for m in firm.memberships:
        m.is_manager = True
    db.session.commit()
    client.post("/register?lang=zh", data=enterprise_form(org_name="已有公司", hub_city=""))
    subject = lambda u: db.session.scalars(db.select(Notification.subject).where(  # noqa: E731
        Notification.user_id == u.id)).one()
    assert subject(english).endswith("asks to join 已有公司"), subject(english)
    assert "申请加入" in subject(chinese), subject(chinese)


def test_a_title_with_a_line_break_still_reaches_the_mailbox(make, outbox):
    """A listing title with a line break (possible from a CSV cell) in a notice's subject: is the mail still
    written, with the subject on one line, instead of being dropped?"""
    user = make.user(Role.EXPERT)
    notify([user], "pairing.proposed", "新的配对建议：第一行标题\n第二行")
    db.session.commit()
    [mail] = _mails(outbox)
    from email import message_from_bytes, policy
    assert message_from_bytes(mail.read_bytes(), policy=policy.default)["Subject"] == "新的配对建议：第一行标题 第二行"


# -- notices a firm used to miss (2026-12-02): bids, vouchers, the inbox badge on cached pages ---------------


BADGE = re.compile(r'id="nav-inbox-unread">(\d+)<span class="visually-hidden">')


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
    """Regression (2026-12-02): When an expert bids on a firm's challenge, do the need's owners get an inbox entry (and an email)
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
    """Regression (2026-12-02): On a challenge a hub-city coordinator published for the firm's need, does a bid reach the firm and
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
    """Regression (2026-12-02): When a coordinator issues a voucher to an enterprise, do its managers (and only they, not a plain
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
    """Regression (2026-12-02): Does the inbox link show the signed-in user's unread count (none at 0, with hidden text for screen
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


# -- review fixes (2026-12-01): inbox paging, one mail for a repeated recipient ------------------------------


def test_inbox_with_an_out_of_range_page_still_renders(world, client_as):
    """Regression (2026-12-01): Does /inbox with an absurd page number (too big for the database, or negative) answer 200, not 500?"""
    notify([world["expert"]], "x", "新的推荐需求", email=False)
    db.session.commit()
    client = client_as("expert")
    for page in ("99999999999999999999", "-5"):
        assert client.get(f"/inbox?page={page}").status_code == 200, page


def test_repeated_recipient_gets_one_inbox_entry_and_one_email(make, outbox):
    """Regression (2026-12-01): If notify() is given the same user twice, is there exactly one inbox entry and exactly one e-mail?"""
    user = make.user(Role.EXPERT)
    notify([user, user], "pairing.approved", "对接已批准", "请查看详情", link="/inbox")
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count(Notification.id))
                             .where(Notification.user_id == user.id)) == 1
    mails = sorted(outbox.glob("*.eml")) if outbox.exists() else []
    assert len(mails) == 1 and user.email in mails[0].read_text()
