"""Admin pages: who may see them, user search, activation, roles, self-protection and the audit trail."""
from __future__ import annotations

import pytest

from matchmaker.accounts.models import User, UserRole
from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from tests.helpers import PASSWORD, login


@pytest.fixture(autouse=True)
def english(app, monkeypatch):
    """Pages in English, so assertions on messages hold once the Chinese catalogue exists."""
    monkeypatch.setattr(app.extensions["babel"], "locale_selector", lambda: "en")


def events(action: str) -> list[AuditEvent]:
    return db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)).all()


ADMIN_GETS = ["/admin/users", "/admin/audit", "/admin/users/{id}"]
ADMIN_POSTS = [("/admin/users/{id}/active", {"active": "0"}),
               ("/admin/users/{id}/roles", {"role": "admin"}),
               ("/admin/users/{id}/roles/enterprise/revoke", {})]


@pytest.mark.parametrize("role", ["enterprise", "expert", "coordinator"])
def test_admin_pages_forbidden_to_non_admins(client_as, world, role):
    """Do non-admin users get 403 on every admin page and action, changing nothing?"""
    client = client_as(role)
    target = world["enterprise"]
    for url in ADMIN_GETS:
        assert client.get(url.format(id=target.id)).status_code == 403
    for url, data in ADMIN_POSTS:
        assert client.post(url.format(id=target.id), data=data).status_code == 403
    db.session.refresh(target)
    assert target.active and target.role_codes == {"enterprise"}
    assert not events("admin.role_grant")


def test_admin_pages_redirect_anonymous_to_login(client, world):
    """Are anonymous visitors sent to the login page (GET) and refused (POST)?"""
    for url in ADMIN_GETS:
        response = client.get(url.format(id=world["enterprise"].id))
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    for url, data in ADMIN_POSTS:
        response = client.post(url.format(id=world["enterprise"].id), data=data)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_user_list_search_and_role_filter(client_as, world):
    """Does the user list search by name/email (case-insensitive) and filter by role?"""
    admin = client_as("admin")
    everyone = admin.get("/admin/users").get_data(as_text=True)
    assert world["enterprise"].email in everyone and world["expert"].email in everyone
    by_email = admin.get("/admin/users", query_string={"q": world["expert"].email.upper()}).get_data(as_text=True)
    assert world["expert"].email in by_email and world["enterprise"].email not in by_email
    coordinators = admin.get("/admin/users", query_string={"role": "coordinator"}).get_data(as_text=True)
    assert world["coordinator"].email in coordinators and world["expert"].email not in coordinators
    nothing = admin.get("/admin/users", query_string={"q": "%_no_such_person"}).get_data(as_text=True)
    assert "No account matches" in nothing


def test_user_list_bad_filters_do_not_crash(client_as):
    """Do an unknown role, an oversized query and a non-numeric page give a normal page, not a 500?"""
    admin = client_as("admin")
    response = admin.get("/admin/users", query_string={"role": "superuser", "q": "x" * 500, "page": "abc"})
    assert response.status_code == 200 and "not a valid choice" in response.get_data(as_text=True).lower()
    assert admin.get("/admin/users?page=-3").status_code == 200
    assert admin.get("/admin/users/999999").status_code == 404


def test_user_list_paginates(client_as, make, app):
    """With more users than a page holds, is the list split into pages?"""
    for _ in range(app.config["PAGE_SIZE"] + 1):
        make.user(Role.EXPERT)
    admin = client_as("admin")
    first = admin.get("/admin/users").get_data(as_text=True)
    assert "1 / 2" in first
    assert admin.get("/admin/users?page=2").status_code == 200


def test_grant_coordinator_with_hub_scope(client_as, world):
    """Can an admin grant the coordinator role limited to a hub city, audited as admin.role_grant?"""
    target = world["expert"]
    response = client_as("admin").post(f"/admin/users/{target.id}/roles",
                                       data={"role": "coordinator", "hub_city": "qingdao"})
    assert response.status_code == 303
    db.session.refresh(target)
    role = next(r for r in target.roles if r.role == "coordinator")
    assert role.hub_city == "qingdao"
    event = events("admin.role_grant")[0]
    assert event.actor_id == world["admin"].id and event.target_id == target.id
    assert event.to_state == "coordinator:qingdao"


def test_regrant_changes_scope(client_as, world):
    """Does granting coordinator again with another city change the scope (audited), not duplicate it?"""
    target = world["coordinator"]
    client_as("admin").post(f"/admin/users/{target.id}/roles", data={"role": "coordinator", "hub_city": "chengdu"})
    db.session.refresh(target)
    roles = [r for r in target.roles if r.role == "coordinator"]
    assert len(roles) == 1 and roles[0].hub_city == "chengdu"
    assert events("admin.role_scope")


@pytest.mark.parametrize("data", [{"role": "superuser"}, {"role": "enterprise", "hub_city": "qingdao"},
                                  {"role": "coordinator", "hub_city": "atlantis"}, {}])
def test_grant_role_bad_input_refused(client_as, world, data):
    """Are unknown roles, a hub scope on a non-coordinator role and unknown cities refused (4xx), nothing saved?"""
    target = world["expert"]
    response = client_as("admin").post(f"/admin/users/{target.id}/roles", data=data, follow_redirects=True)
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert "can be limited to a hub city" in response.get_data(as_text=True)
    db.session.refresh(target)
    assert target.role_codes == {"expert"}
    assert not events("admin.role_grant")


def test_grant_expert_role_creates_profile(client_as, world):
    """Does granting the expert role to an enterprise member give them an (empty) expert profile?"""
    target = world["enterprise"]
    client_as("admin").post(f"/admin/users/{target.id}/roles", data={"role": "expert"})
    db.session.refresh(target)
    assert target.has_role(Role.EXPERT) and target.expert_profile is not None


def test_revoke_role_audited(client_as, world):
    """Can an admin revoke another user's role, audited as admin.role_revoke?"""
    target = world["coordinator"]
    response = client_as("admin").post(f"/admin/users/{target.id}/roles/coordinator/revoke")
    assert response.status_code == 303
    db.session.refresh(target)
    assert not target.has_role(Role.COORDINATOR)
    assert events("admin.role_revoke")[0].from_state == "coordinator"


def test_revoke_unknown_role_is_400(client_as, world):
    """Is revoking a role that does not exist in the vocabulary a 400?"""
    assert client_as("admin").post(f"/admin/users/{world['expert'].id}/roles/wizard/revoke").status_code == 400


def test_admin_cannot_demote_self(client_as, world):
    """Is an admin's attempt to remove their own admin role refused with a clear message, role kept?"""
    admin = world["admin"]
    response = client_as("admin").post(f"/admin/users/{admin.id}/roles/admin/revoke", follow_redirects=True)
    assert "cannot remove your own administrator role" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.is_admin and not events("admin.role_revoke")


def test_admin_cannot_deactivate_self(client_as, world):
    """Is an admin's attempt to deactivate themselves refused with a clear message, account kept active?"""
    admin = world["admin"]
    response = client_as("admin").post(f"/admin/users/{admin.id}/active", data={"active": "0"},
                                       follow_redirects=True)
    assert "cannot deactivate your own account" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.active and not events("admin.deactivate")


def test_deactivate_ends_sessions_and_blocks_login(app, client_as, world):
    """Does deactivating a user sign them out at once (token rotated), block login, and get audited?"""
    target = world["enterprise"]
    victim_client = client_as("enterprise")
    assert victim_client.get("/profile").status_code == 200
    old_token = target.session_token
    response = client_as("admin").post(f"/admin/users/{target.id}/active", data={"active": "0"})
    assert response.status_code == 303
    db.session.refresh(target)
    assert not target.active and target.session_token != old_token
    assert victim_client.get("/profile").status_code == 302
    login_attempt = app.test_client().post("/login", data={"email": target.email, "password": PASSWORD})
    assert login_attempt.status_code == 403
    event = events("admin.deactivate")[0]
    assert event.actor_id == world["admin"].id and event.to_state == "inactive"


def test_reactivate_user(client_as, world):
    """Can a deactivated user be activated again (audited as admin.activate)?"""
    target = world["expert"]
    admin = client_as("admin")
    admin.post(f"/admin/users/{target.id}/active", data={"active": "0"})
    admin.post(f"/admin/users/{target.id}/active", data={"active": "1"})
    db.session.refresh(target)
    assert target.active and events("admin.activate")


def test_active_flag_must_be_0_or_1(client_as, world):
    """Is a forged activation value refused with 400?"""
    response = client_as("admin").post(f"/admin/users/{world['expert'].id}/active", data={"active": "yes"})
    assert response.status_code == 400


def test_self_escalation_by_non_admin_refused(client_as, world):
    """Can an enterprise member grant themselves admin by posting the admin form? (No: 403.)"""
    me = world["enterprise"]
    response = client_as("enterprise").post(f"/admin/users/{me.id}/roles", data={"role": "admin"})
    assert response.status_code == 403
    db.session.refresh(me)
    assert not me.is_admin
    assert db.session.scalar(db.select(db.func.count()).select_from(UserRole).where(UserRole.role == "admin")) == 1


def test_audit_page_filters_by_prefix(client_as, world, client):
    """Does the audit page list events and filter them by action prefix?"""
    client.post("/login", data={"email": "nobody@example.com", "password": "whatever whatever"})
    admin = client_as("admin")
    admin.post(f"/admin/users/{world['expert'].id}/roles", data={"role": "coordinator"})
    all_events = admin.get("/admin/audit").get_data(as_text=True)
    assert "auth.login_failed" in all_events and "admin.role_grant" in all_events
    only_auth = admin.get("/admin/audit", query_string={"action": "auth."}).get_data(as_text=True)
    assert "auth.login_failed" in only_auth and "admin.role_grant" not in only_auth
    assert admin.get("/admin/audit", query_string={"action": "%" * 100}).status_code == 200


def test_admin_post_without_csrf_token_is_refused(app, client_as, world):
    """With CSRF on, is an admin role grant without a token refused with 400 and nothing changed?"""
    target = world["expert"]
    admin = client_as("admin")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = admin.post(f"/admin/users/{target.id}/roles", data={"role": "admin"})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code == 400
    db.session.refresh(target)
    assert not target.is_admin


def test_admin_user_detail_shows_roles_and_actions(client_as, world):
    """Does a user's admin page show their roles and the grant/deactivate controls?"""
    page = client_as("admin").get(f"/admin/users/{world['coordinator'].id}").get_data(as_text=True)
    assert "Coordinator" in page and "Deactivate and sign out" in page and "Grant role" in page


def test_two_admins_granting_the_same_role_at_once_is_a_message_not_a_500(client_as, world, monkeypatch):
    """Another administrator grants the same role between this page's read and its write (the row already
    exists at commit): is the answer a redirect with a message, the role there once?"""
    from matchmaker.admin import operations as ops
    target = world["expert"]
    real = ops.grant_role

    def other_admin_first(admin, user, role, hub_city=None):
        user.roles  # noqa: B018  (this request has read the roles: the other grant is not seen)
        db.session.execute(db.insert(UserRole).values(user_id=user.id, role=role, hub_city=None))
        return real(admin, user, role, hub_city)

    monkeypatch.setattr(ops, "grant_role", other_admin_first)
    response = client_as("admin").post(f"/admin/users/{target.id}/roles", data={"role": "coordinator"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/admin/users/{target.id}")


def test_create_admin_brings_a_deactivated_administrator_back(world):
    """When every administrator was deactivated, does `create-admin EMAIL` sign the account back in (active
    again, audited), as its message claims?"""
    from matchmaker.admin.operations import bootstrap_admin
    admin = world["admin"]
    admin.active = False
    db.session.commit()
    bootstrap_admin(admin.email)
    db.session.commit()
    assert db.session.get(User, admin.id).active
    assert [e.target_id for e in events("admin.activate")] == [admin.id]


# -- accounts review (2026-12-01): NUL characters in the admin filters ---------------------------------------


@pytest.mark.parametrize("query", ["/admin/users?q=a%00b", "/admin/audit?action=a%00b"])
def test_nul_in_admin_filters_is_ignored(app, make, query):
    """Regression (2026-12-01): Do the admin filters answer a NUL character with a normal page (no 500 on PostgreSQL)?"""
    assert login(app.test_client(), make.user(Role.ADMIN)).get(query).status_code == 200
