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
