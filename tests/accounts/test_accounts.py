"""Accounts: registration, login/logout, sessions, password change, profile and organization pages."""
from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from matchmaker.accounts import operations as ops
from matchmaker.accounts.models import ExpertProfile, Membership, MembershipRequest, Organization, User
from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.core.time import utcnow
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from tests.helpers import GOOD_PASSWORD, PASSWORD, enterprise_form, login


@pytest.fixture(autouse=True)
def english(app, monkeypatch):
    """Pages in English, so assertions on messages hold once the Chinese catalogue exists."""
    monkeypatch.setattr(app.extensions["babel"], "locale_selector", lambda: "en")


def expert_form(**overrides) -> dict:
    data = {
        "name": "李教授", "email": "li.prof@example.com", "password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD,
        "locale": "en", "account_type": "expert", "title": "教授", "affiliation": "某研究院",
        "fields": ["new_materials", "new_energy"], "languages": ["zh", "en"], "bio": "电池材料二十年。",
    }
    data.update(overrides)
    return data


def user_by_email(email: str) -> User | None:
    return db.session.scalar(db.select(User).where(User.email == email))


def count(model) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model))


def audit_actions() -> list[str]:
    return db.session.scalars(db.select(AuditEvent.action).order_by(AuditEvent.id)).all()


def session_token_of(client) -> str | None:
    with client.session_transaction() as session:
        return session.get("_user_id")


# -- registration --------------------------------------------------------------------------------------

def test_register_enterprise_creates_org_and_manager(client):
    """Does an enterprise registration create the user (lowercased email), a new enterprise it manages,
    sign the user in and land on "my listings"?"""
    response = client.post("/register", data=enterprise_form())
    assert response.status_code == 302 and response.headers["Location"].endswith("/my")
    user = user_by_email("zhang.manager@example.com")
    assert user is not None and user.role_codes == {"enterprise"}
    org = user.primary_organization
    assert org.name == "重庆新能源电池有限公司" and org.kind == "enterprise" and org.hub_city == "chongqing"
    assert user.memberships[0].is_manager is True
    assert session_token_of(client) == user.session_token
    assert "auth.register" in audit_actions() and "org.create" in audit_actions()


def test_register_naming_an_existing_org_only_asks_to_join(client, make):
    """Does registering with an existing enterprise's exact name give a pending request and no membership:
    none of its coordinators-only needs, no posting for it, no manager rights?"""
    firm = make.org(kind="enterprise", name="已有公司")
    manager = make.user(Role.ENTERPRISE, org=firm)
    private = make.need(manager, title="仅协调员可见的需求", visibility="coordinators")
    response = client.post("/register", data=enterprise_form(org_name="已有公司", hub_city=""))
    assert response.status_code == 302
    user = user_by_email("zhang.manager@example.com")
    assert user.memberships == [] and not firm.can_edit(user)
    [join_request] = db.session.scalars(db.select(MembershipRequest).filter_by(user_id=user.id)).all()
    assert join_request.organization_id == firm.id and join_request.status == "pending"
    assert client.get(f"/needs/{private.id}").status_code == 404
    assert client.get("/needs/new").status_code == 403
    assert client.get(f"/organizations/{firm.id}/edit").status_code == 403
    assert "org.join_requested" in audit_actions()
    from matchmaker.notifications.models import Notification
    assert db.session.scalars(db.select(Notification.kind).filter_by(user_id=manager.id)).all() == [
        "org.join_requested"]


def _requester(client, make):
    firm = make.org(kind="enterprise", name="已有公司")
    manager = make.user(Role.ENTERPRISE, org=firm)
    client.post("/register", data=enterprise_form(org_name="已有公司", hub_city=""))
    user = user_by_email("zhang.manager@example.com")
    join_request = db.session.scalars(db.select(MembershipRequest).filter_by(user_id=user.id)).one()
    return firm, manager, user, join_request


def test_manager_approves_a_join_request(app, client, make):
    """Once a manager approves, is the requester a plain member who sees the firm's coordinators-only needs,
    and is a second decision on the same request refused?"""
    firm, manager, user, join_request = _requester(client, make)
    private = make.need(manager, title="仅协调员可见的需求", visibility="coordinators")
    as_manager = login(app.test_client(), manager)
    assert "zhang.manager@example.com" in as_manager.get(f"/organizations/{firm.id}").get_data(as_text=True)
    url = f"/organizations/{firm.id}/join-requests/{join_request.id}/approve"
    assert as_manager.post(url).status_code == 302
    db.session.refresh(user)
    db.session.refresh(join_request)
    assert [(m.organization_id, m.is_manager) for m in user.memberships] == [(firm.id, False)]
    assert join_request.status == "approved" and join_request.decided_by_id == manager.id
    assert client.get(f"/needs/{private.id}").status_code == 200
    assert f'id="join-request-{join_request.id}"' not in client.get("/profile").get_data(as_text=True)
    assert "org.join_approved" in audit_actions()
    before = count(Membership)
    as_manager.post(f"/organizations/{firm.id}/join-requests/{join_request.id}/decline")
    db.session.refresh(join_request)
    assert count(Membership) == before and join_request.status == "approved"


def test_requester_sees_the_join_request_on_their_profile_until_it_is_decided(app, client, make):
    """Does the requester's profile show the pending request, and "declined" after a manager declines it?"""
    firm, manager, user, join_request = _requester(client, make)
    page = client.get("/profile").get_data(as_text=True)
    assert f'id="join-request-{join_request.id}"' in page and "Join request awaiting its managers" in page
    assert login(app.test_client(), manager).post(
        f"/organizations/{firm.id}/join-requests/{join_request.id}/decline").status_code == 302
    page = client.get("/profile").get_data(as_text=True)
    assert "Join request declined" in page and "Join request awaiting its managers" not in page


def test_join_request_is_decided_by_the_firms_managers_only(app, client, make):
    """Can a member who is not a manager, or another firm's manager, decide a request? And a decline
    leaves the requester outside?"""
    firm, manager, user, join_request = _requester(client, make)
    outsider = make.user(Role.ENTERPRISE, org=make.org(kind="enterprise", name="别家公司"))
    plain_member = make.user(Role.ENTERPRISE)
    plain_member.memberships.append(Membership(organization=firm, is_manager=False))
    db.session.commit()
    url = f"/organizations/{firm.id}/join-requests/{join_request.id}/approve"
    assert login(app.test_client(), outsider).post(url).status_code == 403
    assert login(app.test_client(), plain_member).post(url).status_code == 403
    other_org_url = f"/organizations/{outsider.memberships[0].organization_id}/join-requests/{join_request.id}/approve"
    assert login(app.test_client(), outsider).post(other_org_url).status_code == 404
    assert join_request.status == "pending" and user.memberships == []
    login(app.test_client(), manager).post(f"/organizations/{firm.id}/join-requests/{join_request.id}/decline")
    db.session.refresh(user)
    db.session.refresh(join_request)
    assert join_request.status == "declined" and user.memberships == []


def test_register_cannot_join_non_enterprise_org(client, make):
    """Is an enterprise registration that names a university refused with a field message, nothing saved?"""
    make.org(kind="university", name="某大学")
    users_before = count(User)
    response = client.post("/register", data=enterprise_form(org_name="某大学"))
    assert response.status_code == 400 and "not an enterprise" in response.get_data(as_text=True)
    assert count(User) == users_before


def test_register_expert_creates_profile(client, world):
    """Does an expert registration create the expert role and profile, linking an existing affiliation?"""
    response = client.post("/register", data=expert_form())
    assert response.status_code == 302
    user = user_by_email("li.prof@example.com")
    assert user.role_codes == {"expert"} and user.locale == "en" and user.memberships == []
    profile = user.expert_profile
    assert profile.fields == ["new_materials", "new_energy"] and profile.languages == ["zh", "en"]
    assert profile.affiliation_id == world["institute"].id and profile.affiliation_text is None


def test_register_expert_free_text_affiliation(client):
    """Is an affiliation that is not a registered organization kept as free text, creating no organization?"""
    orgs_before = count(Organization)
    client.post("/register", data=expert_form(affiliation="西南某大学材料学院"))
    profile = user_by_email("li.prof@example.com").expert_profile
    assert profile.affiliation_id is None and profile.affiliation_name == "西南某大学材料学院"
    assert count(Organization) == orgs_before


@pytest.mark.parametrize("overrides, message", [
    ({"name": ""}, "This field is required"),
    ({"email": "not-an-email"}, "valid email"),
    ({"email": "x" * 250 + "@example.com"}, "254"),
    ({"confirm": "Something else entirely 9"}, "do not match"),
    ({"account_type": "admin"}, "not a valid choice"),
    ({"account_type": "coordinator"}, "not a valid choice"),
    ({"hub_city": "beijing"}, "not a valid choice"),
    ({"locale": "fr"}, "not a valid choice"),
    ({"org_name": ""}, "Enter your organization"),
    ({"org_name": "新公司", "hub_city": ""}, "hub city"),
    ({"org_name": "长" * 201}, "200"),
    ({"account_type": "expert", "fields": []}, "at least one field"),
    ({"account_type": "expert", "fields": ["astrology"]}, "not a valid choice"),
    ({"account_type": "expert", "fields": ["big_data"], "languages": ["klingon"]}, "not a valid choice"),
])
def test_register_invalid_input_saves_nothing(client, overrides, message):
    """Is each kind of bad registration input answered with a field message (400) and nothing written?"""
    before = (count(User), count(Organization), count(ExpertProfile), count(Membership), count(AuditEvent))
    response = client.post("/register", data=enterprise_form(**overrides))
    assert response.status_code == 400
    assert message.lower() in response.get_data(as_text=True).lower()
    assert (count(User), count(Organization), count(ExpertProfile), count(Membership), count(AuditEvent)) == before
    assert session_token_of(client) is None


@pytest.mark.parametrize("password, message", [
    ("short pass", "at least 12"),
    ("x" * 129, "at most 128"),
    ("password1234", "too common"),
    ("aaaaaaaaaaaaaaa", "too common"),
    ("zhang.manager-rocks-2024", "email address"),
])
def test_register_weak_password_refused(client, password, message):
    """Are short, overlong, common, single-character and email-based passwords refused, nothing saved?"""
    response = client.post("/register", data=enterprise_form(password=password, confirm=password))
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert user_by_email("zhang.manager@example.com") is None


def test_register_duplicate_email_case_insensitive(client, make):
    """Is a second account with the same email, in different case, refused?"""
    make.user(email="taken@example.com")
    before = count(User)
    response = client.post("/register", data=enterprise_form(email="TAKEN@Example.com"))
    assert response.status_code == 400 and "already exists" in response.get_data(as_text=True)
    assert count(User) == before


def test_register_forged_role_fields_ignored(client):
    """Are forged extra fields (roles, is_manager, active, hub scope) ignored: only the chosen role is given?"""
    data = enterprise_form(org_name="伪造公司", roles="admin", role="admin", is_admin="1", is_manager="1",
                           active="0", session_token="fixed")
    data["account_type"] = ["enterprise", "admin"]
    client.post("/register", data=data)
    user = user_by_email("zhang.manager@example.com")
    assert user.role_codes == {"enterprise"} and user.active and user.session_token != "fixed"


def test_signed_in_user_is_sent_away_from_register(client_as):
    """Does a signed-in user visiting /register land on "my listings" instead of making a second account?"""
    response = client_as("enterprise").get("/register")
    assert response.status_code == 302 and response.headers["Location"].endswith("/my")


# -- login and logout ----------------------------------------------------------------------------------

def test_login_success_rotates_token_and_audits(client, make):
    """Does a correct login (email in any case) rotate the session token, sign in and write auth.login?"""
    user = make.user(Role.ENTERPRISE, email="login@example.com")
    old_token = user.session_token
    response = client.post("/login", data={"email": " LOGIN@example.com ", "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/my")
    db.session.refresh(user)
    assert user.session_token != old_token and session_token_of(client) == user.session_token
    assert user.last_login_at is not None
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "auth.login"))
    assert event.actor_id == user.id


@pytest.mark.parametrize("email", ["login@example.com", "nobody@example.com"])
def test_login_failure_is_generic_and_audited(client, make, email):
    """Do a wrong password and an unknown email get the same message, no session, and an anonymous
    auth.login_failed row carrying the lowercased email?"""
    make.user(email="login@example.com")
    response = client.post("/login", data={"email": email.upper(), "password": "wrong password 123"})
    assert response.status_code == 401
    assert "Email or password is incorrect." in response.get_data(as_text=True)
    assert session_token_of(client) is None
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "auth.login_failed"))
    assert event.actor_id is None and event.comment == email


def test_login_inactive_user_refused(client, make):
    """Is a deactivated account refused even with the right password?"""
    make.user(email="gone@example.com", active=False)
    response = client.post("/login", data={"email": "gone@example.com", "password": PASSWORD})
    assert response.status_code == 403 and session_token_of(client) is None


@pytest.mark.parametrize("next_url", ["https://evil.example/phish", "//evil.example/x", "/\\evil.example",
                                      "javascript:alert(1)", "http:/evil.example"])
def test_login_next_external_refused(client, make, next_url):
    """Is an external or protocol-relative ``next`` ignored after login (redirect stays on the site)?"""
    make.user(email="next@example.com")
    response = client.post("/login", query_string={"next": next_url},
                           data={"email": "next@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/my"


def test_login_next_local_followed(client, make):
    """Is a local ``next`` path followed after login?"""
    make.user(email="next@example.com")
    response = client.post("/login?next=/profile", data={"email": "next@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/profile"


def test_login_page_keeps_next_and_redirects_anonymous(client):
    """Does a protected page send an anonymous visitor to the login page with ``next``?"""
    response = client.get("/profile")
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]


def test_logout_invalidates_copied_session(app, client, make):
    """After logout, does a copy of the old session cookie (the old token) no longer sign anyone in?"""
    user = make.user(email="copy@example.com")
    client.post("/login", data={"email": "copy@example.com", "password": PASSWORD})
    cookie = client.get_cookie("session").value
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    assert thief.get("/profile").status_code == 200  # the copy works while the session lives
    old_token = session_token_of(client)

    response = client.post("/logout")
    assert response.status_code == 302
    assert thief.get("/profile").status_code == 302  # …and not after logout
    replay = login(app.test_client(), user)  # login() uses the token the user has *now* — replay the old one
    with replay.session_transaction() as session:
        session["_user_id"] = old_token
    assert replay.get("/profile").status_code == 302
    assert "auth.logout" in audit_actions()


def test_logout_is_post_only(client_as):
    """Is GET /logout refused, so a link or image cannot sign users out?"""
    assert client_as("enterprise").get("/logout").status_code == 405


# -- password change -----------------------------------------------------------------------------------

def test_password_change_rotates_token_and_keeps_this_session(client_as, world, app):
    """Does changing the password rotate the token (other sessions end) while this browser stays signed in?"""
    user = world["enterprise"]
    me = client_as("enterprise")
    other_device = login(app.test_client(), user)
    new = "A brand new long passphrase 42"
    response = me.post("/profile/password", data={"current_password": PASSWORD, "password": new, "confirm": new})
    assert response.status_code == 302
    db.session.refresh(user)
    assert user.check_password(new)
    assert session_token_of(me) == user.session_token
    assert me.get("/profile").status_code == 200
    assert other_device.get("/profile").status_code == 302
    assert "auth.password_change" in audit_actions()


def test_password_change_needs_current_password(client_as, world):
    """Is a password change with a wrong current password refused, leaving the password unchanged?"""
    user = world["enterprise"]
    token = user.session_token
    new = "A brand new long passphrase 42"
    response = client_as("enterprise").post("/profile/password", data={
        "current_password": "not my password", "password": new, "confirm": new})
    assert response.status_code == 403 and "current password is not correct" in response.get_data(as_text=True)
    db.session.refresh(user)
    assert user.check_password(PASSWORD) and user.session_token == token


def test_password_change_weak_new_password(client_as):
    """Is a weak new password refused with a field message?"""
    response = client_as("enterprise").post("/profile/password", data={
        "current_password": PASSWORD, "password": "short", "confirm": "short"})
    assert response.status_code == 400 and "at least 12" in response.get_data(as_text=True)


# -- profile and organizations -------------------------------------------------------------------------

def test_profile_update_ignores_forged_role_fields(client_as, world):
    """Does a profile save change name and locale but ignore forged roles/active fields?"""
    user = world["enterprise"]
    response = client_as("enterprise").post("/profile", data={
        "name": "新名字", "locale": "en", "roles": "admin", "role": "coordinator", "active": "0"})
    assert response.status_code == 302
    db.session.refresh(user)
    assert user.name == "新名字" and user.locale == "en" and user.role_codes == {"enterprise"} and user.active


def test_expert_profile_update(client_as, world):
    """Can an expert edit title, fields, languages, bio and capacity; are unknown field codes refused?"""
    user = world["expert"]
    client = client_as("expert")
    response = client.post("/profile", data={"name": user.name, "locale": "zh_CN", "title": "研究员",
                                             "fields": ["big_data"], "languages": ["en"], "bio": "新简介",
                                             "max_active_pairings": "2"})
    assert response.status_code == 302
    db.session.refresh(user.expert_profile)
    assert user.expert_profile.title == "研究员" and user.expert_profile.fields == ["big_data"]
    assert user.expert_profile.max_active_pairings == 2
    bad = client.post("/profile", data={"name": user.name, "locale": "zh_CN", "fields": ["nonsense"],
                                        "max_active_pairings": "2"})
    assert bad.status_code == 400
    db.session.refresh(user.expert_profile)
    assert user.expert_profile.fields == ["big_data"]


def test_profile_rejects_oversized_name(client_as, world):
    """Is an oversized name refused with a field message rather than truncated or a 500?"""
    response = client_as("enterprise").post("/profile", data={"name": "名" * 101, "locale": "zh_CN"})
    assert response.status_code == 400 and "100" in response.get_data(as_text=True)


def test_profile_shows_edit_link_to_managers(client_as, world):
    """Does a manager's profile link to editing their organization?"""
    page = client_as("enterprise").get("/profile").get_data(as_text=True)
    assert f"/organizations/{world['firm'].id}/edit" in page


def test_org_edit_by_manager(client_as, world):
    """Can an organization's manager edit its details (audited)?"""
    firm = world["firm"]
    response = client_as("enterprise").post(f"/organizations/{firm.id}/edit", data={
        "name": "重庆甲公司（新）", "name_en": "Chongqing Jia Co.", "hub_city": "chengdu", "region": "高新区",
        "description": "储能电池。"})
    assert response.status_code == 302
    db.session.refresh(firm)
    assert firm.name == "重庆甲公司（新）" and firm.hub_city == "chengdu" and firm.name_en == "Chongqing Jia Co."
    assert "org.update" in audit_actions()


def test_org_edit_by_non_manager_is_403(client_as, world):
    """Is editing someone else's organization refused (403) for GET and POST, leaving it unchanged?"""
    firm = world["firm"]
    client = client_as("other_enterprise")
    assert client.get(f"/organizations/{firm.id}/edit").status_code == 403
    assert client.post(f"/organizations/{firm.id}/edit", data={"name": "Hijacked"}).status_code == 403
    db.session.refresh(firm)
    assert firm.name == "重庆甲公司"


def test_org_edit_name_clash_and_bad_city(client_as, world):
    """Are a name already used by another organization and an unknown hub city refused with messages?"""
    firm = world["firm"]
    client = client_as("enterprise")
    clash = client.post(f"/organizations/{firm.id}/edit", data={"name": "成都乙公司", "hub_city": ""})
    assert clash.status_code == 409 and "already uses this name" in clash.get_data(as_text=True)
    bad_city = client.post(f"/organizations/{firm.id}/edit", data={"name": "甲", "hub_city": "atlantis"})
    assert bad_city.status_code == 400
    db.session.refresh(firm)
    assert firm.name == "重庆甲公司"


def test_org_public_page_and_forged_ids(client, world):
    """Is an organization's page public, and do unknown or malformed ids give 404?"""
    page = client.get(f"/organizations/{world['firm'].id}")
    assert page.status_code == 200 and "重庆甲公司" in page.get_data(as_text=True)
    assert client.get("/organizations/999999").status_code == 404
    assert client.get("/organizations/abc").status_code == 404


# -- CSRF ----------------------------------------------------------------------------------------------

def test_post_without_csrf_token_is_refused(app, client, make):
    """With CSRF protection on (as in production), is a login POST without a token refused with 400?"""
    make.user(email="csrf@example.com")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = client.post("/login", data={"email": "csrf@example.com", "password": PASSWORD})
        assert response.status_code == 400
        assert session_token_of(client) is None
        register = client.post("/register", data=enterprise_form())
        assert register.status_code == 400
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert user_by_email("zhang.manager@example.com") is None


# -- session timeouts (the clock is matchmaker.accounts.sessions.utcnow, moved forward by the test) ---------

class Clock:
    def __init__(self):
        from datetime import datetime, timezone
        self.now = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, **delta):
        from datetime import timedelta
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("matchmaker.accounts.sessions.utcnow", clock)
    return clock


def signed_in_client(client, make):
    user = make.user(email="timer@example.com")
    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    return user


def test_session_ends_after_inactivity(client, make, clock):
    """After 30 idle minutes, is the next request logged out (redirect to login with a message, audited),
    while activity every 20 minutes keeps the session alive?"""
    user = signed_in_client(client, make)
    for _ in range(3):
        clock.advance(minutes=20)
        assert client.get("/profile").status_code == 200
    clock.advance(minutes=31)
    response = client.get("/profile?tab=1")
    assert response.status_code == 302 and "/login" in response.location and "next=" in response.location
    assert session_token_of(client) is None
    page = client.get(response.location).get_data(as_text=True)
    assert "Your session has expired. Please log in again." in page
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "auth.session_expired"))
    assert event.actor_id == user.id and event.to_state == "idle"


def test_session_ends_after_maximum_age_despite_activity(client, make, clock):
    """Is a session refused 12 hours after login even when used every 10 minutes?"""
    signed_in_client(client, make)
    for _ in range(71):  # 11 h 50 min of steady use
        clock.advance(minutes=10)
        assert client.get("/profile").status_code == 200
    clock.advance(minutes=11)
    response = client.get("/profile")
    assert response.status_code == 302 and session_token_of(client) is None
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "auth.session_expired"))
    assert event.to_state == "absolute"


def test_session_timeouts_follow_config(app, client, make, clock, monkeypatch):
    """Are the limits the configured ones (MATCHMAKER_SESSION_IDLE_MINUTES / _MAX_HOURS)?"""
    monkeypatch.setitem(app.config, "SESSION_IDLE_MINUTES", 5)
    signed_in_client(client, make)
    clock.advance(minutes=4)
    assert client.get("/profile").status_code == 200
    clock.advance(minutes=6)
    assert client.get("/profile").status_code == 302


def test_expired_session_answers_json_401_on_the_api(client, make, clock):
    """A cookie session that expired gets a JSON 401 with a reason from /api, not a redirect."""
    signed_in_client(client, make)
    clock.advance(hours=13)
    response = client.get("/api/v1/needs")
    assert response.status_code == 401 and "expired" in response.get_json()["reason"]


# -- accounts review (2026-12-01): join requests decided twice at once, NUL characters in account input ------


@pytest.mark.parametrize("first", ["approved", "declined"])
def test_a_join_request_decided_meanwhile_is_not_decided_again(client, make, first):
    """Regression (2026-12-01): If another manager decided the request after this one loaded it, is the second decision refused (409)
    with no membership added — no 'declined' request whose requester is nevertheless a member?"""
    firm, manager, user, join_request = _requester(client, make)
    db.session.execute(update(MembershipRequest).where(MembershipRequest.id == join_request.id)
                       .values(status=first, decided_at=utcnow(), decided_by_id=manager.id)
                       .execution_options(synchronize_session=False))
    with pytest.raises(WorkflowError) as err:
        ops.decide_join_request(join_request, manager, approve=True)
    assert err.value.status == 409
    assert db.session.get(Membership, (user.id, firm.id)) is None
    assert db.session.get(MembershipRequest, join_request.id).status == first


@pytest.mark.parametrize("error", [StaleDataError("stale"), IntegrityError("INSERT", {}, Exception("unique"))])
def test_a_lost_race_on_a_join_request_is_a_message_not_a_500(app, client, make, monkeypatch, error):
    """Regression (2026-12-01): If deciding a join request loses a race at the database (a second approval's duplicate membership),
    does the manager get the organization page with a message, and nothing half-written?"""
    firm, manager, user, join_request = _requester(client, make)

    def lose(*args, **kwargs):
        db.session.add(Membership(user_id=user.id, organization_id=firm.id, is_manager=False))
        raise error

    monkeypatch.setattr(ops, "decide_join_request", lose)
    r = login(app.test_client(), manager).post(f"/organizations/{firm.id}/join-requests/{join_request.id}/approve")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/organizations/{firm.id}")
    assert db.session.get(Membership, (user.id, firm.id)) is None


def test_nul_characters_are_removed_from_profile_and_organization_texts(app, make, world):
    """Regression (2026-12-01): Are NUL characters dropped from a profile name, an expert's affiliation and an organization's name
    (PostgreSQL refuses them: a 500 there), so the saves go through?"""
    expert = world["expert"]
    r = login(app.test_client(), expert).post("/profile", data={
        "name": "李\x00四", "locale": "zh_CN", "fields": ["big_data"], "affiliation": "某\x00研究院",
        "max_active_pairings": "5"})
    assert r.status_code == 302
    db.session.refresh(expert)
    assert expert.name == "李四" and "\x00" not in (expert.expert_profile.affiliation_name or "")
    firm = world["firm"]
    r = login(app.test_client(), world["enterprise"]).post(f"/organizations/{firm.id}/edit", data={
        "name": "重庆\x00甲公司", "hub_city": firm.hub_city or "", "region": "", "description": ""})
    assert r.status_code in (302, 303)
    assert db.session.get(Organization, firm.id).name == "重庆甲公司"


@pytest.mark.parametrize("path,data", [
    ("/login", {"email": "a\x00b@example.com", "password": PASSWORD}),
    ("/password/forgot", {"email": "a\x00@example.com"}),
])
def test_nul_in_an_email_is_an_ordinary_answer(client, world, path, data):
    """Regression (2026-12-01): Do the login and reset forms answer an address with a NUL character like any unknown address (no 500)?"""
    assert client.post(path, data=data).status_code in (200, 302, 400, 401)
