"""Regression tests for the accounts review: join requests decided at the same moment, NUL characters in
account and admin input (PostgreSQL refuses them), superseded reset links and API tokens after a reset."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from conftest import PASSWORD, login
from matchmaker.accounts import operations as ops
from matchmaker.accounts.models import Membership, MembershipRequest, Organization
from matchmaker.accounts.tokens import ApiToken
from matchmaker.api import auth
from matchmaker.core.enums import Role
from matchmaker.core.time import utcnow
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from test_accounts import _requester
from test_password_reset import NEW_PASSWORD, _ask, _link, _mails, outbox  # noqa: F401  (outbox: fixture)


# --- join requests decided twice at once ----------------------------------------------------------------

@pytest.mark.parametrize("first", ["approved", "declined"])
def test_a_join_request_decided_meanwhile_is_not_decided_again(client, make, first):
    """If another manager decided the request after this one loaded it, is the second decision refused (409)
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
    """If deciding a join request loses a race at the database (a second approval's duplicate membership),
    does the manager get the organization page with a message, and nothing half-written?"""
    firm, manager, user, join_request = _requester(client, make)

    def lose(*args, **kwargs):
        db.session.add(Membership(user_id=user.id, organization_id=firm.id, is_manager=False))
        raise error

    monkeypatch.setattr(ops, "decide_join_request", lose)
    r = login(app.test_client(), manager).post(f"/organizations/{firm.id}/join-requests/{join_request.id}/approve")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/organizations/{firm.id}")
    assert db.session.get(Membership, (user.id, firm.id)) is None


# --- NUL characters --------------------------------------------------------------------------------------

def test_nul_characters_are_removed_from_profile_and_organization_texts(app, make, world):
    """Are NUL characters dropped from a profile name, an expert's affiliation and an organization's name
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
    """Do the login and reset forms answer an address with a NUL character like any unknown address (no 500)?"""
    assert client.post(path, data=data).status_code in (200, 302, 400, 401)


@pytest.mark.parametrize("query", ["/admin/users?q=a%00b", "/admin/audit?action=a%00b"])
def test_nul_in_admin_filters_is_ignored(app, make, query):
    """Do the admin filters answer a NUL character with a normal page (no 500 on PostgreSQL)?"""
    assert login(app.test_client(), make.user(Role.ADMIN)).get(query).status_code == 200


# --- reset links and API tokens --------------------------------------------------------------------------

def test_a_newer_reset_link_supersedes_the_older_one(client, make, outbox):
    """Once a second link is asked for, does the first stop working while the newest one works?"""
    user = make.user(Role.EXPERT, email="twice@example.test")
    _ask(client, user.email)
    [first] = [_link(m) for m in _mails(outbox)]
    for mail in outbox.glob("*.eml"):  # the outbox's file names do not order two mails of one second
        mail.unlink()
    _ask(client, user.email)
    [second] = [_link(m) for m in _mails(outbox)]
    assert first != second
    assert client.get(first).status_code == 302  # back to the form, with the reason
    assert client.get(second).status_code == 200


def test_a_password_reset_revokes_the_accounts_api_tokens(client, make, outbox):
    """Does resetting the password revoke every API token of the account (an intruder's included), audited,
    and say so?"""
    user = make.user(Role.EXPERT, email="tokens@example.test")
    auth.create_token(user, "intruder")
    db.session.commit()
    _ask(client, user.email)
    link = _link(_mails(outbox)[0])
    r = client.post(link + "?lang=en", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
                    follow_redirects=True)
    assert r.status_code == 200 and "1 API token was revoked" in r.get_data(as_text=True)
    assert db.session.scalar(select(func.count(ApiToken.id)).where(ApiToken.user_id == user.id,
                                                                   ApiToken.revoked_at.is_(None))) == 0
