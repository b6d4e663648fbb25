"""The coordinator moderation queue and review page: scope, ordering, decisions, concurrent reviews."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.helpers import login
from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.core.time import utcnow
from matchmaker.extensions import db
from matchmaker.listings.models import Need

EN = "?lang=en"


def fresh(obj):
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


def audit_count(need, to_state) -> int:
    return db.session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.target_type == "needs", AuditEvent.target_id == need.id, AuditEvent.to_state == to_state))


@pytest.fixture
def scoped(app, make):
    """A coordinator scoped to Chengdu, signed in."""
    user = make.user(Role.COORDINATOR, hub_city="chengdu")
    return user, login(app.test_client(), user)


@pytest.mark.parametrize("role,status", [(None, 302), ("enterprise", 403), ("expert", 403),
                                         ("coordinator", 200), ("admin", 200)])
def test_queue_access(client_as, role, status):
    """Is the queue only for coordinators and admins (anonymous → login, others → 403)?"""
    assert client_as(role).get("/review/").status_code == status


def test_queue_lists_submitted_oldest_first_with_waiting_time(client_as, make, world):
    """Does the queue show only submitted listings, oldest first, highlighting those waiting > 3 days?"""
    old = make.need(world["enterprise"], status="submitted", title="等待很久的需求")
    new = make.need(world["enterprise"], status="submitted", title="刚提交的需求")
    cap = make.capability(world["expert"], status="submitted", title="等待中的能力")
    make.need(world["enterprise"], status="draft", title="草稿需求不应出现")
    make.need(world["enterprise"], status="published", title="已发布需求不应出现")
    db.session.execute(update(Need).where(Need.id == old.id).values(submitted_at=utcnow() - timedelta(days=5))
                       .execution_options(synchronize_session=False))
    db.session.commit()
    page = client_as("coordinator").get("/review/" + EN).get_data(as_text=True)
    assert "草稿需求不应出现" not in page and "已发布需求不应出现" not in page
    assert page.index("等待很久的需求") < page.index("刚提交的需求") < page.index("等待中的能力")
    row = page[page.index(f'data-listing-id="{old.id}" data-kind="needs"') - 60:][:200]
    assert "waiting-long" in row
    new_row = page[page.index(f'data-listing-id="{new.id}" data-kind="needs"') - 60:][:200]
    assert "waiting-long" not in new_row
    assert "5 days" in page
    assert cap.title in page
    # Regression (2026-12-07): the Chinese page said "38秒钟"; the short form reads "38秒"
    zh = client_as("coordinator").get("/review/").get_data(as_text=True)
    assert "5天" in zh and "秒钟" not in zh


def test_queue_filters(client_as, make, world):
    """Do the hub-city and industry filters narrow the queue (and unknown values get ignored)?"""
    make.need(world["enterprise"], status="submitted", title="重庆新能源需求", hub_city="chongqing",
              industry="new_energy")
    make.need(world["enterprise"], status="submitted", title="青岛海洋需求", hub_city="qingdao", industry="marine")
    client = client_as("coordinator")
    page = client.get("/review/?hub_city=qingdao").get_data(as_text=True)
    assert "青岛海洋需求" in page and "重庆新能源需求" not in page
    page = client.get("/review/?industry=new_energy").get_data(as_text=True)
    assert "重庆新能源需求" in page and "青岛海洋需求" not in page
    response = client.get("/review/?hub_city=atlantis&industry=alchemy")
    assert response.status_code == 200 and "青岛海洋需求" in response.get_data(as_text=True)


def test_scoped_coordinator_sees_and_moderates_only_own_city(make, world, scoped):
    """Does a Chengdu coordinator see only Chengdu listings, and find no unpublished Chongqing one (404: not
    theirs to review, and not shown before publication)?"""
    user, client = scoped
    cq = make.need(world["enterprise"], status="submitted", title="重庆的需求", hub_city="chongqing")
    cd = make.need(world["enterprise"], status="submitted", title="成都的需求", hub_city="chengdu")
    page = client.get("/review/").get_data(as_text=True)
    assert "成都的需求" in page and "重庆的需求" not in page
    assert client.get(f"/review/needs/{cq.id}").status_code == 404
    assert client.post(f"/review/needs/{cq.id}/publish", data={"version": str(cq.version)}).status_code == 404
    assert client.post(f"/review/needs/{cq.id}/return", data={"reason": "不行"}).status_code == 404
    assert fresh(cq).status == "submitted"
    assert client.post(f"/review/needs/{cd.id}/publish", data={"version": str(cd.version)}).status_code == 303
    assert fresh(cd).status == "published" and fresh(cd).reviewed_by_id == user.id


def test_publish_with_comment(client_as, make, world):
    """Does Publish (POST) publish the listing and keep the optional comment in the audit trail?"""
    need = make.need(world["enterprise"], status="submitted")
    response = client_as("coordinator").post(f"/review/needs/{need.id}/publish",
                                             data={"comment": "内容完整", "version": str(need.version)})
    assert response.status_code == 303 and response.headers["Location"].endswith("/review/")
    need = fresh(need)
    assert need.status == "published" and need.reviewed_by_id == world["coordinator"].id
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.target_id == need.id,
                                                        AuditEvent.to_state == "published")).one()
    assert event.comment == "内容完整"


def test_return_requires_reason(client_as, make, world):
    """Is Return without a reason refused with a message (400), leaving the listing submitted?"""
    need = make.need(world["enterprise"], status="submitted")
    client = client_as("coordinator")
    for reason in ("", "   ", None):
        data = {"version": str(need.version)}
        if reason is not None:
            data["reason"] = reason
        response = client.post(f"/review/needs/{need.id}/return" + EN, data=data)
        assert response.status_code == 400
        assert "Tell the owner what to change." in response.get_data(as_text=True)
    response = client.post(f"/review/needs/{need.id}/return" + EN,
                           data={"reason": "长" * 2001, "version": str(need.version)})
    assert response.status_code == 400
    assert fresh(need).status == "submitted" and audit_count(need, "returned") == 0


def test_return_shows_reason_to_owner(client_as, make, world):
    """After Return, does the owner see the reason on the listing and in "My listings"?"""
    need = make.need(world["enterprise"], status="submitted")
    client_as("coordinator").post(f"/review/needs/{need.id}/return",
                                  data={"reason": "请补充预算范围", "version": str(need.version)})
    assert fresh(need).status == "returned"
    owner = client_as("enterprise")
    assert "请补充预算范围" in owner.get(f"/needs/{need.id}").get_data(as_text=True)
    assert "请补充预算范围" in owner.get("/my").get_data(as_text=True)
    assert "请补充预算范围" not in client_as("other_enterprise").get("/my").get_data(as_text=True)


def test_review_is_post_only(client_as, make, world):
    """Are publish and return refused over GET (405)?"""
    need = make.need(world["enterprise"], status="submitted")
    client = client_as("coordinator")
    assert client.get(f"/review/needs/{need.id}/publish").status_code == 405
    assert client.get(f"/review/needs/{need.id}/return").status_code == 405
    assert fresh(need).status == "submitted"


def test_review_page_content(client_as, make, world):
    """Does the review page show the full listing, the private contact and both decision forms?"""
    need = make.need(world["enterprise"], status="submitted", contact_phone="023-99990000")
    page = client_as("coordinator").get(f"/review/needs/{need.id}").get_data(as_text=True)
    assert need.title in page and "023-99990000" in page
    assert 'id="publish-form"' in page and 'id="return-form"' in page


def test_not_submitted_listing_has_no_decision(client_as, make, world):
    """Is a draft listing not publishable from the review page (no forms; POST refused, unchanged)?"""
    need = make.need(world["enterprise"], status="draft")
    client = client_as("coordinator")
    page = client.get(f"/review/needs/{need.id}").get_data(as_text=True)
    assert 'id="publish-form"' not in page
    response = client.post(f"/review/needs/{need.id}/publish", data={"version": str(need.version)})
    assert response.status_code in (303, 409)
    assert fresh(need).status == "draft"


def test_capability_moderation(client_as, make, world):
    """Can capabilities be published through the same review page?"""
    cap = make.capability(world["expert"], status="submitted")
    client = client_as("coordinator")
    assert client.get(f"/review/capabilities/{cap.id}").status_code == 200
    assert client.post(f"/review/capabilities/{cap.id}/publish",
                       data={"version": str(cap.version)}).status_code == 303
    assert fresh(cap).status == "published"


def test_concurrent_double_moderation_one_wins(app, client_as, make, world):
    """Two coordinators open the same listing; the first publishes, the second returns it with the stale
    form: does exactly one decision win, with a 409 and a clear message for the second?"""
    need = make.need(world["enterprise"], status="submitted")
    second_coordinator = make.user(Role.COORDINATOR)
    first, second = client_as("coordinator"), login(app.test_client(), second_coordinator)
    seen = str(need.version)
    assert 'value="%s"' % seen in first.get(f"/review/needs/{need.id}").get_data(as_text=True)
    assert 'value="%s"' % seen in second.get(f"/review/needs/{need.id}").get_data(as_text=True)

    assert first.post(f"/review/needs/{need.id}/publish", data={"version": seen}).status_code == 303
    response = second.post(f"/review/needs/{need.id}/return" + EN, data={"reason": "重复审核", "version": seen})
    assert response.status_code == 409
    assert "Someone else has already reviewed this listing" in response.get_data(as_text=True)
    need = fresh(need)
    assert need.status == "published" and need.return_reason is None
    assert need.reviewed_by_id == world["coordinator"].id
    assert audit_count(need, "published") == 1 and audit_count(need, "returned") == 0


def test_double_publish_by_same_coordinator(client_as, make, world):
    """Does a double-clicked Publish transition the listing only once?"""
    need = make.need(world["enterprise"], status="submitted")
    client = client_as("coordinator")
    seen = str(need.version)
    assert client.post(f"/review/needs/{need.id}/publish", data={"version": seen}).status_code == 303
    assert client.post(f"/review/needs/{need.id}/publish", data={"version": seen}).status_code == 409
    assert audit_count(fresh(need), "published") == 1


def test_race_between_check_and_commit(monkeypatch, app, client_as, make, world):
    """If another coordinator commits between our checks and our commit (optimistic lock fires), is the
    request answered with 409 and rolled back rather than a 500 or a double transition?"""
    from matchmaker.listings import operations as ops
    from matchmaker.review import views as review_views

    need = make.need(world["enterprise"], status="submitted")
    other = make.user(Role.COORDINATOR)
    real_publish = ops.publish_listing

    def racing_publish(listing, moderator, comment=None):
        # the other coordinator's return lands in the database first, bumping the version
        db.session.execute(update(Need).where(Need.id == listing.id).values(
            status="returned", return_reason="另一位协调员退回", reviewed_by_id=other.id,
            version=Need.version + 1).execution_options(synchronize_session=False))
        real_publish(listing, moderator, comment)

    monkeypatch.setattr(review_views.ops, "publish_listing", racing_publish)
    response = client_as("coordinator").post(f"/review/needs/{need.id}/publish" + EN,
                                             data={"version": str(need.version)})
    assert response.status_code == 409
    assert "Someone else has already reviewed this listing" in response.get_data(as_text=True) \
        or "changed" in response.get_data(as_text=True)
    need = fresh(need)
    # our whole transaction was rolled back (including the racing write it shared in this test)
    assert need.status == "submitted" and audit_count(need, "published") == 0


def test_owner_edit_during_review_is_detected(client_as, make, world):
    """If the owner edits a submitted listing after the coordinator opened it, is the stale decision refused?"""
    need = make.need(world["enterprise"], status="submitted")
    seen = str(need.version)
    from matchmaker.listings import operations as ops
    with client_as("enterprise").application.test_request_context():
        ops.update_listing(need, world["enterprise"], {"targets": "新的指标"})
        db.session.commit()
    response = client_as("coordinator").post(f"/review/needs/{need.id}/publish" + EN, data={"version": seen})
    assert response.status_code == 409 and "owner changed this listing" in response.get_data(as_text=True)
    assert fresh(need).status == "submitted"


def test_a_decision_without_the_version_seen_is_not_taken(client_as, make, world):
    """Is a publish POST that carries no version (so nobody can tell what the coordinator saw) answered
    with 409 and the current listing, instead of publishing whatever the owner changed meanwhile?"""
    need = make.need(world["enterprise"], status="submitted")
    response = client_as("coordinator").post(f"/review/needs/{need.id}/publish", data={"comment": ""})
    assert response.status_code == 409 and fresh(need).status == "submitted"


def test_a_listing_closed_during_review_says_so(client_as, make, world):
    """The owner closes a submitted need while the coordinator reads it: is the coordinator's decision a 409
    that says the listing was closed (not that someone else reviewed it)?"""
    need = make.need(world["enterprise"], status="submitted")
    seen = str(need.version)
    assert client_as("enterprise").post(f"/needs/{need.id}/close").status_code == 303
    response = client_as("coordinator").post(f"/review/needs/{need.id}/publish" + EN, data={"version": seen})
    assert response.status_code == 409
    assert "closed while you were reviewing" in response.get_data(as_text=True)
    assert fresh(need).status == "closed"


def test_the_queue_reads_its_owners_in_a_fixed_number_of_queries(app, make, world):
    """Does the moderation queue cost the same number of queries for 3 and for 12 listings posted by people
    without an organization (no query per owner)?"""
    from sqlalchemy import event

    from matchmaker.core.enums import Role
    coordinator = login(app.test_client(), make.user(Role.COORDINATOR))

    def queries_for_queue() -> int:
        seen = []
        listener = lambda *args: seen.append(1)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert coordinator.get("/review/").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen)

    def add(n):
        for _ in range(n):
            make.capability(make.user(Role.EXPERT), status="submitted", organization_id=None)

    add(3)
    few = queries_for_queue()
    add(9)
    assert queries_for_queue() == few


def test_a_scoped_coordinator_is_offered_only_their_cities(app, make):
    """Does the queue's city filter of a Chongqing-only coordinator list Chongqing and not Qingdao (choosing a
    city they cannot moderate only showed an empty queue), while an unscoped coordinator gets every city?"""
    from matchmaker.core.enums import Role

    def options(user):
        page = login(app.test_client(), user).get("/review/").get_data(as_text=True)
        select = page.split('name="hub_city"', 1)[1].split("</select>", 1)[0]
        return set(__import__("re").findall(r'<option value="(\w*)"', select)) - {""}

    assert options(make.user(Role.COORDINATOR, hub_city="chongqing")) == {"chongqing"}
    assert "qingdao" in options(make.user(Role.COORDINATOR))
