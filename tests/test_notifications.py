"""Do notifications reach the inbox, and does email leave only after the transaction commits?"""
from __future__ import annotations

import pytest

from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.notifications.models import Notification
from matchmaker.notifications.operations import notify, unread_count


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
    """Does the inbox list the user's notification, and opening it mark it read and follow its local link?"""
    [note] = notify([world["expert"]], "x", "新的推荐需求", link="/needs", email=False)
    db.session.commit()
    client = client_as("expert")
    assert "新的推荐需求" in client.get("/inbox").get_data(as_text=True)
    response = client.get(f"/inbox/{note.id}")
    assert response.status_code == 302 and response.headers["Location"].endswith("/needs")
    assert unread_count(world["expert"]) == 0


def test_external_link_is_not_followed(make, world, client_as):
    """Could a notification link send the user to another site? (It must not.)"""
    [note] = notify([world["expert"]], "x", "s", link="//evil.example/phish", email=False)
    db.session.commit()
    response = client_as("expert").get(f"/inbox/{note.id}")
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
    from conftest import login
    from matchmaker.pairings.models import Pairing
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
    from test_accounts import enterprise_form
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
