"""The coordinator scope: one rule (``User.coordinator_scope``) and every scope-gated route agreeing with it.

People: an admin, an unscoped coordinator, a coordinator of 重庆 (chongqing), one of 成都 (chengdu), an expert
and an anonymous visitor. For each of them and each hub city below, a scope-gated route must allow exactly
when ``coordinator_scope_of(user).covers(city)`` says so.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from flask_login import AnonymousUserMixin
from sqlalchemy import select

from matchmaker.accounts.models import User, UserRole
from matchmaker.core.enums import HubCity, Role
from matchmaker.core.scope import ALL, NONE, CoordinatorScope, coordinator_scope_of
from matchmaker.core.time import utcnow
from matchmaker.extensions import db
from matchmaker.listings.models import Need
from matchmaker.pairings import operations as pairing_ops
from matchmaker.pairings.models import Pairing
from tests.conftest import login

CITIES = ("chongqing", "chengdu", "qingdao")  # two with a scoped coordinator, one with none


# --- (a) the rule itself ---------------------------------------------------------------------------------

def test_admin_covers_every_hub_city(make):
    """Does an administrator's scope cover every hub city, and a listing without one?"""
    scope = make.user(Role.ADMIN).coordinator_scope
    assert scope == ALL and scope.is_all
    assert all(scope.covers(c) for c in HubCity.values()) and scope.covers(None)


def test_admin_with_a_city_scoped_coordinator_role_still_covers_everything(make):
    """Does an administrator who also coordinates one city keep the whole scope (the admin role wins)?"""
    admin = make.user(Role.COORDINATOR, hub_city="chengdu")
    admin.add_role(Role.ADMIN)
    db.session.commit()
    assert admin.coordinator_scope == ALL


def test_unscoped_coordinator_covers_every_hub_city(make):
    """Does a coordinator whose role row has no hub city cover every city, as an administrator does?"""
    scope = make.user(Role.COORDINATOR).coordinator_scope
    assert scope == ALL
    assert all(scope.covers(c) for c in HubCity.values()) and scope.covers(None)


def test_coordinator_of_one_city_covers_only_that_city(make):
    """Does a coordinator of 重庆 cover 重庆 and no other city, nor a listing without a hub city?"""
    scope = make.user(Role.COORDINATOR, hub_city="chongqing").coordinator_scope
    assert scope == CoordinatorScope(cities=frozenset({"chongqing"}))
    assert [c for c in HubCity.values() if scope.covers(c)] == ["chongqing"]
    assert not scope.covers(None) and not scope.is_all and not scope.is_none


def test_coordinator_of_two_cities_covers_both_and_no_other():
    """Does a coordinator with two city-scoped role rows cover both cities and no third?

    The user_roles primary key (user, role) keeps one coordinator row per user in the database today, so
    the user is built in memory: the rule itself must still answer for the set."""
    user = User(email="two@example.test", name="两城协调员",
                roles=[UserRole(role="coordinator", hub_city="chongqing"),
                       UserRole(role="coordinator", hub_city="qingdao")])
    scope = user.coordinator_scope
    assert scope.cities == {"chongqing", "qingdao"}
    assert [c for c in HubCity.values() if scope.covers(c)] == ["chongqing", "qingdao"]


def test_expert_and_anonymous_have_no_scope(make):
    """Do an expert, an anonymous visitor and no user at all get the empty scope, covering nothing?"""
    for who in (make.user(Role.EXPERT), make.user(Role.ENTERPRISE), AnonymousUserMixin(), None):
        scope = coordinator_scope_of(who)
        assert scope == NONE and scope.is_none
        assert not any(scope.covers(c) for c in HubCity.values()) and not scope.covers(None)


def test_sql_condition_selects_what_covers_allows(make):
    """Does ``scope.where(column)`` select exactly the rows whose hub city ``covers`` allows, for each case?"""
    owner = make.user(Role.ENTERPRISE, org=make.org())
    for city in CITIES:
        make.need(owner, hub_city=city)
    make.need(owner, status="draft", hub_city=None)  # only a draft may lack a hub city
    ids = db.session.scalars(select(Need.id)).all()
    for scope in (ALL, NONE, CoordinatorScope(cities=frozenset({"chengdu"})),
                  CoordinatorScope(cities=frozenset({"chongqing", "qingdao"}))):
        picked = set(db.session.scalars(select(Need.id).where(scope.where(Need.hub_city))))
        assert picked == {i for i in ids if scope.covers(db.session.get(Need, i).hub_city)}, scope


# --- (b) every scope-gated route agrees with the rule ---------------------------------------------------

@pytest.fixture
def people(make):
    return {
        "admin": make.user(Role.ADMIN),
        "unscoped coordinator": make.user(Role.COORDINATOR),
        "chongqing coordinator": make.user(Role.COORDINATOR, hub_city="chongqing"),
        "chengdu coordinator": make.user(Role.COORDINATOR, hub_city="chengdu"),
        "expert": make.user(Role.EXPERT),
        "anonymous": None,
    }


@pytest.fixture
def town(make):
    """Per hub city: a submitted need, a pairing waiting for review, a fair, a voucher and a hub-city
    challenge; made through the real operations by people who are not among ``people``."""
    from matchmaker.challenges import operations as challenge_ops
    from matchmaker.fairs import operations as fair_ops
    from matchmaker.vouchers import operations as voucher_ops
    firm = make.org(kind="enterprise", name="范围测试公司")
    owner = make.user(Role.ENTERPRISE, org=firm)
    expert = make.user(Role.EXPERT, org=make.org(kind="institute", name="范围测试研究院"))
    expert.expert_profile.max_active_pairings = 100
    boss = make.user(Role.ADMIN)
    cap = make.capability(expert, title="范围测试能力")
    start = datetime(2031, 5, 20, 1, 0, tzinfo=timezone.utc)
    out = {"firm": firm, "owner": owner, "cap": cap, "by_city": {}}
    for city in CITIES:
        submitted = make.need(owner, status="submitted", hub_city=city, title=f"待审需求-{city}")
        published = make.need(owner, hub_city=city, title=f"已发布需求-{city}")
        pairing = pairing_ops.propose_pairing(published, cap, by=boss)
        pairing_ops.respond(pairing, owner, "need", "interested", message="欢迎")
        pairing_ops.respond(pairing, expert, "capability", "interested", message="可以")
        fair = fair_ops.create_fair(boss, {
            "title": f"范围测试对接会-{city}", "starts_at": start, "ends_at": start + timedelta(hours=2),
            "mode": "onsite", "registration_deadline": start - timedelta(days=1), "place": "会场",
            "hub_city": city, "slot_minutes": 30, "tables": 3})
        voucher = voucher_ops.issue_voucher(boss, firm, amount=Decimal("100"), expires_on=date(2099, 1, 1),
                                            hub_city=city)
        challenge = challenge_ops.publish_challenge(published, boss, reward=Decimal("1000"),
                                                    deadline=utcnow() + timedelta(days=30), terms="范围测试条款")
        assert challenge.publisher == "hub_city"
        db.session.commit()
        out["by_city"][city] = {"submitted": submitted, "published": published, "pairing": pairing,
                                "fair": fair, "voucher": voucher, "challenge": challenge}
    return out


def _client(app, user):
    client = app.test_client()
    return login(client, user) if user is not None else client


def disagreements(app, people, probe) -> list[str]:
    """Ask ``probe(client, city, user)`` (True = the route allowed) for every person and city; list where the
    route and the rule part ways."""
    out = []
    for name, user in people.items():
        client = _client(app, user)
        for city in CITIES:
            expected = coordinator_scope_of(user).covers(city)
            got = probe(client, city, user)
            if got != expected:
                out.append(f"{name} × {city}: the route {'allowed' if got else 'refused'}, "
                           f"the scope says {'allowed' if expected else 'refused'}")
    return out


def _status(resp, allowed: int) -> bool:
    assert resp.status_code < 500, resp.status_code
    return resp.status_code == allowed


def test_review_of_a_submitted_listing_follows_the_scope(app, people, town):
    """May a person open the review page of a submitted need exactly when their scope covers its city?"""
    def probe(client, city, user):
        return _status(client.get(f"/review/needs/{town['by_city'][city]['submitted'].id}"), 200)
    assert not disagreements(app, people, probe)


def test_review_queue_lists_what_the_scope_covers(app, people, town):
    """Does the review queue list a submitted need exactly when the person's scope covers its city?"""
    def probe(client, city, user):
        resp = client.get("/review/")
        return resp.status_code == 200 and f"待审需求-{city}" in resp.get_data(as_text=True)
    assert not disagreements(app, people, probe)


def test_pairing_queue_lists_what_the_scope_covers(app, people, town):
    """Does the coordinator's pairing queue list a pairing exactly when the scope covers its need's city?"""
    def probe(client, city, user):
        resp = client.get("/coordinate")
        return resp.status_code == 200 and f"已发布需求-{city}" in resp.get_data(as_text=True)
    assert not disagreements(app, people, probe)


def test_judging_a_pairing_follows_the_scope(app, people, town):
    """May a person (on neither side) judge a pairing exactly when their scope covers its need's city?

    A rejection without a reason gets through the permission check and is then refused with a message
    (303 back to the pairing); a person out of scope is refused before that (404, 403 or the login page)."""
    def probe(client, city, user):
        pairing = town["by_city"][city]["pairing"]
        resp = client.post(f"/pairings/{pairing.id}/judge", data={"decision": "reject", "version": pairing.version})
        return _status(resp, 303)
    assert not disagreements(app, people, probe)
    assert {p.state for p in db.session.scalars(select(Pairing))} == {"pending_review"}


def test_fair_management_follows_the_scope(app, people, town):
    """May a person (not the organizer) edit a fair exactly when their scope covers the fair's city?"""
    def probe(client, city, user):
        return _status(client.get(f"/fairs/{town['by_city'][city]['fair'].id}/edit"), 200)
    assert not disagreements(app, people, probe)


def test_voucher_pages_follow_the_scope(app, people, town):
    """May a person who is not a member of the firm see a voucher exactly when their scope covers its city?"""
    def probe(client, city, user):
        return _status(client.get(f"/vouchers/{town['by_city'][city]['voucher'].id}"), 200)
    assert not disagreements(app, people, probe)


def test_voucher_issuing_follows_the_scope(app, people, town):
    """May a person issue a voucher in a hub city exactly when their scope covers that city?"""
    def probe(client, city, user):
        resp = client.post("/vouchers/issue", data={"organization_id": town["firm"].id, "hub_city": city,
                                                     "amount": "100", "expires_on": "2099-01-01"})
        return _status(resp, 303)
    assert not disagreements(app, people, probe)


def test_hub_city_challenge_management_follows_the_scope(app, people, town):
    """May a person manage a challenge published by a hub city exactly when their scope covers that city?

    Cancelling without a reason passes the permission check and is then refused as an invalid form (400);
    a person out of scope gets 403 (or the login page)."""
    def probe(client, city, user):
        return _status(client.post(f"/challenges/{town['by_city'][city]['challenge'].id}/cancel", data={}), 400)
    assert not disagreements(app, people, probe)


def test_bulk_assignment_proposes_only_within_the_scope(app, people, town, make):
    """Does confirming a bulk assignment propose a pairing exactly when the scope covers the need's city?"""
    cap = town["cap"]

    def probe(client, city, user):
        need = make.need(town["owner"], hub_city=city, title=f"批量需求-{city}")
        resp = client.post("/coordinate/assign", data={"pick": f"{need.id}:{cap.id}:0.5"})
        assert resp.status_code < 500, resp.status_code
        return db.session.scalar(select(Pairing.id).where(Pairing.need_id == need.id)) is not None
    assert not disagreements(app, people, probe)


def test_bulk_assignment_candidates_follow_the_scope(people, town):
    """Are a hub city's published needs candidates for a coordinator's bulk assignment exactly when the
    scope covers the city?"""
    from matchmaker.pairings.assignment import candidate_needs
    wrong = []
    for name, user in people.items():
        if user is None or not user.is_coordinator:
            continue  # the page is for coordinators only (the authorization matrix checks that)
        for city in CITIES:
            if bool(candidate_needs(user, hub_city=city)) != user.coordinator_scope.covers(city):
                wrong.append(f"{name} × {city}")
    assert not wrong


def test_api_pairing_list_follows_the_scope(app, people, town):
    """Does the API's pairing list include a pairing (of which the caller is no party) exactly when the
    caller's scope covers its need's city?"""
    def probe(client, city, user):
        resp = client.get("/api/v1/pairings?per_page=100")
        if resp.status_code != 200:
            return False
        return town["by_city"][city]["pairing"].id in {p["id"] for p in resp.get_json()["items"]}
    assert not disagreements(app, people, probe)


def test_csv_export_of_work_in_progress_follows_the_scope(app, people, town):
    """Does the CSV export of submitted needs include one exactly when the scope covers its city?"""
    def probe(client, city, user):
        resp = client.get("/bulk/needs.csv?status=submitted")
        return resp.status_code == 200 and f"待审需求-{city}" in resp.get_data(as_text=True)
    assert not disagreements(app, people, probe)


def test_dashboard_opens_on_the_one_city_of_a_scope(app, people):
    """Does the dashboard default to a coordinator's city exactly when their scope is that one city
    (everyone else with a scope sees all cities; people without one are refused)?"""
    for name, user in people.items():
        scope = coordinator_scope_of(user)
        resp = _client(app, user).get("/dashboards/export.csv")
        if scope.is_none:
            assert resp.status_code in (302, 403), name
            continue
        default = next(iter(scope.cities)) if len(scope.cities) == 1 else "all"
        assert resp.status_code == 200, name
        assert f"filename=dashboard-{default}.csv" in resp.headers["Content-Disposition"], name
