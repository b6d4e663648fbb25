"""Inbox paging, duplicate notification mail, the days-to-first-approval KPI after a re-publication, and the
token page's time zone."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from conftest import login
from matchmaker.accounts.tokens import ApiToken
from matchmaker.core.enums import Role
from matchmaker.core.time import utcnow
from matchmaker.dashboards import metrics
from matchmaker.extensions import db
from matchmaker.listings import operations as ops
from matchmaker.notifications.models import Notification
from matchmaker.notifications.operations import notify
from matchmaker.pairings.models import Pairing
from test_notifications import outbox  # noqa: F401  (the fixture: a temporary mail outbox)


def test_inbox_with_an_out_of_range_page_still_renders(world, client_as):
    """Does /inbox with an absurd page number (too big for the database, or negative) answer 200, not 500?"""
    notify([world["expert"]], "x", "新的推荐需求", email=False)
    db.session.commit()
    client = client_as("expert")
    for page in ("99999999999999999999", "-5"):
        assert client.get(f"/inbox?page={page}").status_code == 200, page


def test_repeated_recipient_gets_one_inbox_entry_and_one_email(make, outbox):
    """If notify() is given the same user twice, is there exactly one inbox entry and exactly one e-mail?"""
    user = make.user(Role.EXPERT)
    notify([user, user], "pairing.approved", "对接已批准", "请查看详情", link="/inbox")
    db.session.commit()
    assert db.session.scalar(db.select(db.func.count(Notification.id))
                             .where(Notification.user_id == user.id)) == 1
    mails = sorted(outbox.glob("*.eml")) if outbox.exists() else []
    assert len(mails) == 1 and user.email in mails[0].read_text()


def test_republishing_an_edited_need_keeps_its_first_publication_date_and_kpi(make, world):
    """Does a need first approved 5 days after publication still count 5 days to docking (and keep its
    publication date) after it is edited and published again?"""
    need = make.need(world["enterprise"])
    cap = make.capability(world["expert"])
    first_published = utcnow().replace(microsecond=0) - timedelta(days=30)
    need.published_at = first_published
    db.session.commit()
    db.session.add(Pairing(need_id=need.id, capability_id=cap.id, expert_id=cap.expert_id, state="approved",
                           origin="coordinator", judged_by_id=world["coordinator"].id,
                           judged_at=first_published + timedelta(days=5)))
    db.session.commit()

    def median_days():
        rows, _overall = metrics.compute()
        return {r.hub_city: r for r in rows}["chongqing"].median_days_to_docking

    assert median_days() == pytest.approx(5.0)

    assert ops.update_listing(need, world["enterprise"], {"title": "低温锂电池放电性能提升（修订）"})
    db.session.commit()
    assert need.status == "submitted"
    ops.publish_listing(need, make.moderator())
    db.session.commit()
    db.session.expire_all()
    assert need.status == "published" and need.published_at == first_published
    assert median_days() == pytest.approx(5.0)


def test_token_times_are_shown_in_beijing_time(app, world):
    """Does the token list show created, last-used and expiry times in Beijing time, like every other page,
    so a token made late in the UTC evening shows the next day's date?"""
    user = world["enterprise"]
    token, _secret = ApiToken.generate(user, "CRM sync")
    token.created_at = datetime(2026, 3, 1, 20, 30, tzinfo=timezone.utc)    # 2026-03-02 04:30 in Beijing
    token.last_used_at = datetime(2026, 3, 5, 17, 15, tzinfo=timezone.utc)  # 2026-03-06 01:15 in Beijing
    token.expires_at = datetime(2099, 6, 30, 18, 0, tzinfo=timezone.utc)    # 2099-07-01 in Beijing
    db.session.add(token)
    db.session.commit()
    page = login(app.test_client(), user).get("/profile/tokens").get_data(as_text=True)
    assert "2026-03-02 04:30" in page and "2026-03-06 01:15" in page and "2099-07-01" in page
    assert "2026-03-01 20:30" not in page and "2099-06-30" not in page
