"""Pairing lifecycle: transitions, permissions, declines, concurrency, pages and IDOR."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.notifications.models import Notification
from matchmaker.pairings import operations as ops
from matchmaker.pairings.models import ConflictOfInterest, Pairing, PairingState as P


@pytest.fixture
def pw(make, world):
    """A published need of the firm, a published capability of the institute's expert, and a scoped coordinator."""
    need = make.need(world["enterprise"])
    cap = make.capability(world["expert"])
    coord = make.user(Role.COORDINATOR, hub_city="chongqing")
    return {**world, "need": need, "cap": cap, "coord": coord}


def _pairing(pw, state: str) -> Pairing:
    """A pairing driven through the real operations up to ``state``."""
    p = ops.propose_pairing(pw["need"], pw["cap"], by=pw["coord"])
    if state == P.PROPOSED:
        return p
    if state == P.DECLINED:
        ops.respond(p, pw["expert"], "capability", "declined", reason="too_early")
        return p
    ops.respond(p, pw["enterprise"], "need", "interested", message="欢迎")
    ops.respond(p, pw["expert"], "capability", "interested", message="可以")
    if state == P.PENDING_REVIEW:
        return p
    ops.judge(p, pw["coord"], approve=(state != P.REJECTED), comment="理由充分")
    if state in (P.APPROVED, P.REJECTED):
        return p
    if state == P.MEETING_SCHEDULED:
        ops.schedule_meeting(p, pw["coord"], datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc), "重庆会展中心 3 号桌")
        return p
    if state in (P.IN_PROGRESS, P.CONTRACT_SIGNED, P.FAILED):
        ops.record_outcome(p, pw["enterprise"], state, contract_type="license", amount="500000",
                           note="未达成一致")
        return p
    raise AssertionError(state)


def test_schedule_meeting_sets_time_place_audit_and_notifies(pw):
    """Does scheduling an approved pairing store the UTC time and place, audit it and notify both sides?"""
    p = _pairing(pw, P.APPROVED)
    when = datetime(2026, 12, 1, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    ops.schedule_meeting(p, pw["coord"], when, "重庆会展中心")
    db.session.commit()
    assert p.state == P.MEETING_SCHEDULED
    assert p.meeting_at == datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
    assert p.meeting_place == "重庆会展中心"
    ev = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "pairing.meeting_scheduled")).one()
    assert (ev.from_state, ev.to_state, ev.target_id) == (P.APPROVED, P.MEETING_SCHEDULED, p.id)
    notified = set(db.session.scalars(select(Notification.user_id).where(
        Notification.kind == "pairing.meeting_scheduled")))
    assert {pw["enterprise"].id, pw["expert"].id} <= notified


ALL_STATES = [s.value for s in P]
#: (state reached, action) → allowed?  Every action tried from every state; only the listed pairs are legal.
LEGAL = {
    (P.PROPOSED, "respond"), (P.PENDING_REVIEW, "approve"), (P.PENDING_REVIEW, "reject"),
    (P.APPROVED, "schedule"), (P.MEETING_SCHEDULED, "schedule"),
    (P.APPROVED, "in_progress"), (P.MEETING_SCHEDULED, "in_progress"),
    (P.APPROVED, "contract_signed"), (P.MEETING_SCHEDULED, "contract_signed"), (P.IN_PROGRESS, "contract_signed"),
    (P.APPROVED, "failed"), (P.MEETING_SCHEDULED, "failed"), (P.IN_PROGRESS, "failed"),
}
ACTIONS = ["respond", "approve", "reject", "schedule", "in_progress", "contract_signed", "failed"]
REACHABLE = [P.PROPOSED, P.DECLINED, P.PENDING_REVIEW, P.APPROVED, P.REJECTED, P.MEETING_SCHEDULED,
             P.IN_PROGRESS, P.CONTRACT_SIGNED, P.FAILED]


def _do(pw, p, action):
    if action == "respond":
        ops.respond(p, pw["enterprise"], "need", "interested")
    elif action == "approve":
        ops.judge(p, pw["coord"], True, "ok")
    elif action == "reject":
        ops.judge(p, pw["coord"], False, "不合适")
    elif action == "schedule":
        ops.schedule_meeting(p, pw["coord"], datetime(2027, 1, 5, 3, 0, tzinfo=timezone.utc), "视频会议")
    else:
        ops.record_outcome(p, pw["coord"], action, contract_type="development", amount=100000, note="说明")


@pytest.mark.parametrize("state", REACHABLE)
def test_transition_table(pw, state):
    """From each reachable state, is every action outside the legal transitions refused with a reason and no
    state change, and every legal one carried out? (Each action runs in its own savepoint.)"""
    p = _pairing(pw, state)
    db.session.commit()
    before = (p.state, p.version)
    for action in ACTIONS:
        sp = db.session.begin_nested()
        if (state, action) in LEGAL:
            _do(pw, p, action)
            assert p.version > before[1] or action == "respond"  # one response alone keeps the state
        else:
            with pytest.raises(WorkflowError) as err:
                _do(pw, p, action)
            assert err.value.reason and err.value.status in (400, 403, 409), action
        sp.rollback()
        db.session.refresh(p)
        assert (p.state, p.version) == before, action


def test_suggested_state_is_declared_in_the_table():
    """Does the transition table name every stored state (no state without a rule)?"""
    assert set(ops.TRANSITIONS) == set(ALL_STATES)


def test_both_sides_interested_moves_to_review_and_tells_coordinators(pw):
    """Do two interested responses put the pairing in the coordinator's queue and notify the coordinator?"""
    p = _pairing(pw, P.PENDING_REVIEW)
    db.session.commit()
    assert p.state == P.PENDING_REVIEW
    assert db.session.scalar(select(Notification.id).where(
        Notification.user_id == pw["coord"].id, Notification.kind == "pairing.pending_review")) is not None


def test_proposer_side_counts_as_interested(pw):
    """When the firm proposes, is only the expert's interest still needed?"""
    p = ops.propose_pairing(pw["need"], pw["cap"], by=pw["enterprise"])
    assert p.origin == "need" and p.response_of("need").decision == "interested"
    ops.respond(p, pw["expert"], "capability", "interested")
    assert p.state == P.PENDING_REVIEW


@pytest.mark.parametrize("reason", ["not_relevant", "too_early", "too_costly", "already_solved", "other"])
def test_decline_with_each_reason(pw, reason):
    """Does a decline with each structured reason close the pairing and keep the reason?"""
    p = _pairing(pw, P.PROPOSED)
    ops.respond(p, pw["enterprise"], "need", "declined", reason=reason, message="已有方案" if reason == "other" else None)
    db.session.commit()
    assert p.state == P.DECLINED and p.response_of("need").reason == reason


@pytest.mark.parametrize("reason,message", [(None, None), ("bogus", None), ("other", ""), ("other", "  ")])
def test_decline_without_valid_reason_is_refused(pw, reason, message):
    """Is a decline without a known reason (or 'other' without text) refused with no change?"""
    p = _pairing(pw, P.PROPOSED)
    with pytest.raises(WorkflowError):
        ops.respond(p, pw["enterprise"], "need", "declined", reason=reason, message=message)
    assert p.state == P.PROPOSED and p.response_of("need") is None


def test_wrong_side_and_double_response_refused(pw):
    """Can the expert answer for the firm, or a side answer twice?"""
    p = _pairing(pw, P.PROPOSED)
    with pytest.raises(WorkflowError) as err:
        ops.respond(p, pw["expert"], "need", "interested")
    assert err.value.status == 403
    ops.respond(p, pw["enterprise"], "need", "interested")
    with pytest.raises(WorkflowError):
        ops.respond(p, pw["enterprise"], "need", "interested")


def test_reject_requires_comment(pw):
    """Is a rejection without a reason refused?"""
    p = _pairing(pw, P.PENDING_REVIEW)
    with pytest.raises(WorkflowError) as err:
        ops.judge(p, pw["coord"], approve=False, comment="  ")
    assert err.value.status == 400 and p.state == P.PENDING_REVIEW


def test_judge_permissions(pw, make):
    """May only in-scope coordinators on neither side judge (not the firm, another city's coordinator,
    or a coordinator who belongs to the firm)?"""
    p = _pairing(pw, P.PENDING_REVIEW)
    chengdu = make.user(Role.COORDINATOR, hub_city="chengdu")
    insider = make.user(Role.COORDINATOR, org=pw["firm"], hub_city="chongqing")
    for user in (pw["enterprise"], pw["expert"], chengdu, insider):
        assert not p.can_judge(user)
        with pytest.raises(WorkflowError) as err:
            ops.judge(p, user, True, "ok")
        assert err.value.status == 403
    assert p.can_judge(pw["admin"]) and p.can_judge(pw["coordinator"])  # unscoped coordinator


def test_contract_needs_type_and_positive_amount(pw):
    """Is a signed contract without a type or with a non-positive amount refused?"""
    p = _pairing(pw, P.APPROVED)
    for ctype, amount in [(None, 100), ("license", 0), ("license", -5), ("license", "abc"), ("nope", 10),
                          ("license", "NaN")]:
        with pytest.raises(WorkflowError):
            ops.record_outcome(p, pw["enterprise"], "contract_signed", contract_type=ctype, amount=amount)
        assert p.state == P.APPROVED
    with pytest.raises(WorkflowError):
        ops.record_outcome(p, pw["enterprise"], "failed", note="")
    ops.record_outcome(p, pw["enterprise"], "contract_signed", contract_type="license", amount="1234.5")
    db.session.commit()
    assert p.state == P.CONTRACT_SIGNED and str(p.contract_amount) == "1234.50"


def test_propose_refusals(pw, make):
    """Are same-organization, unpublished, duplicate, conflicted and unauthorized proposals refused?"""
    from flask_babel import force_locale
    with force_locale("en"):
        _propose_refusals(pw, make)


def _propose_refusals(pw, make):
    own_cap = make.capability(pw["enterprise"])
    with pytest.raises(WorkflowError, match="own organization"):
        ops.propose_pairing(pw["need"], own_cap, by=pw["coord"])
    draft = make.capability(pw["expert"], status="draft")
    with pytest.raises(WorkflowError, match="published"):
        ops.propose_pairing(pw["need"], draft, by=pw["coord"])
    with pytest.raises(WorkflowError) as err:
        ops.propose_pairing(pw["need"], pw["cap"], by=pw["other_enterprise"])
    assert err.value.status == 403
    ops.propose_pairing(pw["need"], pw["cap"], by=pw["coord"])
    with pytest.raises(WorkflowError, match="already exists"):
        ops.propose_pairing(pw["need"], pw["cap"], by=pw["enterprise"])
    other_need = make.need(pw["enterprise"], title="另一个需求")
    db.session.add(ConflictOfInterest(expert_id=pw["expert"].expert_profile.id, organization_id=pw["firm"].id,
                                      note="亲属"))
    db.session.flush()
    with pytest.raises(WorkflowError, match="conflict"):
        ops.propose_pairing(other_need, pw["cap"], by=pw["coord"])


def test_concurrent_approval_exactly_one_wins(app):
    """Two coordinators load the same pending pairing in separate connections and both approve: does exactly one
    commit win while the other gets StaleDataError (the view turns it into a 409), leaving one audit entry?"""
    import uuid

    from sqlalchemy import create_engine, delete
    from sqlalchemy.orm import scoped_session, sessionmaker
    from sqlalchemy.orm.exc import StaleDataError

    from matchmaker.accounts.models import ExpertProfile, Membership, Organization, User, UserRole
    from matchmaker.listings.models import Capability, Need
    from matchmaker.pairings.models import PairingResponse

    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    tag = uuid.uuid4().hex[:8]
    setup = sessionmaker(bind=engine)()
    firm = Organization(name=f"并发公司{tag}", kind="enterprise", hub_city="chongqing")
    inst = Organization(name=f"并发研究院{tag}", kind="institute", hub_city="chengdu")
    users = [User(email=f"{n}-{tag}@example.test", name=n, password_hash="x") for n in ("firm", "exp", "c1", "c2")]
    users[0].memberships.append(Membership(organization=firm))
    users[1].memberships.append(Membership(organization=inst))
    users[2].roles.append(UserRole(role="coordinator"))
    users[3].roles.append(UserRole(role="coordinator"))
    profile = ExpertProfile(user=users[1], fields=[], languages=[])
    setup.add_all([firm, inst, *users, profile])
    setup.flush()
    from matchmaker.core.time import utcnow
    stamp = dict(status="published", submitted_at=utcnow(), published_at=utcnow(), reviewed_by_id=users[2].id)
    need = Need(title="并发需求测试", industry="new_energy", organization_id=firm.id, created_by_id=users[0].id,
                hub_city="chongqing", **stamp)
    cap = Capability(title="并发能力测试", kind="achievement", field="new_energy", organization_id=inst.id,
                     created_by_id=users[1].id, expert_id=profile.id, hub_city="chengdu", **stamp)
    setup.add_all([need, cap])
    setup.flush()
    pairing = Pairing(need_id=need.id, capability_id=cap.id, expert_id=profile.id, state="pending_review",
                      origin="coordinator")
    setup.add(pairing)
    setup.commit()
    pid, uids = pairing.id, [u.id for u in users]
    ids = dict(firm=firm.id, inst=inst.id, need=need.id, cap=cap.id, profile=profile.id)
    setup.close()

    original = db.session
    s1, s2 = scoped_session(sessionmaker(bind=engine)), scoped_session(sessionmaker(bind=engine))
    try:
        p1, c1 = s1.get(Pairing, pid), s1.get(User, uids[2])
        p2, c2 = s2.get(Pairing, pid), s2.get(User, uids[3])
        assert p1.version == p2.version  # both coordinators see the same version
        db.session = s1
        ops.judge(p1, c1, True, "第一位")
        s1.commit()
        db.session = s2
        with pytest.raises(StaleDataError):
            ops.judge(p2, c2, True, "第二位")
            s2.commit()
        s2.rollback()
        db.session = original
        check = sessionmaker(bind=engine)()
        row = check.get(Pairing, pid)
        assert row.state == "approved" and row.judged_by_id == uids[2] and row.judgment_comment == "第一位"
        assert check.scalar(select(db.func.count(AuditEvent.id)).where(
            AuditEvent.target_type == "pairings", AuditEvent.target_id == pid,
            AuditEvent.action == "pairing.approved")) == 1
        check.close()
    finally:
        db.session = original
        s1.remove()
        s2.remove()
        with engine.begin() as conn:
            conn.execute(delete(AuditEvent).where(AuditEvent.target_type == "pairings", AuditEvent.target_id == pid))
            conn.execute(delete(Notification).where(Notification.user_id.in_(uids)))
            conn.execute(delete(PairingResponse).where(PairingResponse.pairing_id == pid))
            conn.execute(delete(Pairing).where(Pairing.id == pid))
            conn.execute(delete(Capability).where(Capability.id == ids["cap"]))
            conn.execute(delete(Need).where(Need.id == ids["need"]))
            conn.execute(delete(ExpertProfile).where(ExpertProfile.id == ids["profile"]))
            conn.execute(delete(UserRole).where(UserRole.user_id.in_(uids)))
            conn.execute(delete(Membership).where(Membership.user_id.in_(uids)))
            conn.execute(delete(User).where(User.id.in_(uids)))
            conn.execute(delete(Organization).where(Organization.id.in_([ids["firm"], ids["inst"]])))
        engine.dispose()


# -- pages ---------------------------------------------------------------------------------------

from tests.conftest import login  # noqa: E402


def test_pairing_page_shows_both_sides_history_and_actions(pw, app):
    """Does a party see both listings, the history and only the actions they may take?"""
    p = _pairing(pw, P.PROPOSED)
    db.session.commit()
    html = login(app.test_client(), pw["expert"]).get(f"/pairings/{p.id}").get_data(as_text=True)
    assert pw["need"].title in html and pw["cap"].title in html and 'id="pairing-history"' in html
    assert 'data-side="capability"' in html and 'data-side="need"' not in html and "judge-form" not in html


def test_idor_other_org_gets_404(pw, app):
    """Is another organization's pairing invisible (404) and unactionable for an outsider?"""
    p = _pairing(pw, P.PROPOSED)
    db.session.commit()
    c = login(app.test_client(), pw["other_enterprise"])
    assert c.get(f"/pairings/{p.id}").status_code == 404
    assert c.post(f"/pairings/{p.id}/respond", data={"side": "need", "decision": "declined",
                                                     "reason": "too_early"}).status_code == 404
    assert c.post(f"/pairings/{p.id}/judge", data={"decision": "approve"}).status_code == 404
    db.session.refresh(p)
    assert p.state == P.PROPOSED and p.response_of("need") is None
    assert c.get("/pairings/999999").status_code == 404
    assert f'data-pairing-id="{p.id}"' not in c.get("/pairings").get_data(as_text=True)
    assert f'data-pairing-id="{p.id}"' in login(app.test_client(), pw["enterprise"]).get("/pairings").get_data(
        as_text=True)


def test_full_loop_through_the_pages(pw, app):
    """Can the firm and the expert answer, the coordinator approve, a meeting be scheduled and an outcome
    recorded, all through POST forms?"""
    p = _pairing(pw, P.PROPOSED)
    db.session.commit()
    firm, exp, coord = (login(app.test_client(), pw[k]) for k in ("enterprise", "expert", "coord"))
    assert firm.post(f"/pairings/{p.id}/respond", data={"side": "need", "decision": "interested"}).status_code == 303
    assert exp.post(f"/pairings/{p.id}/respond", data={"side": "capability", "decision": "interested",
                                                       "message": "很感兴趣"}).status_code == 303
    db.session.refresh(p)
    assert p.state == P.PENDING_REVIEW
    queue = coord.get("/coordinate").get_data(as_text=True)
    assert f'data-pairing-id="{p.id}"' in queue
    assert coord.post(f"/pairings/{p.id}/judge", data={"decision": "approve", "version": p.version}).status_code == 303
    assert coord.post(f"/pairings/{p.id}/schedule", data={"when": "2026-12-01T10:00", "place": "重庆会展中心"}
                      ).status_code == 303
    db.session.refresh(p)
    assert p.state == P.MEETING_SCHEDULED and p.meeting_at.hour == 2  # 10:00 Beijing time = 02:00 UTC
    r = firm.post(f"/pairings/{p.id}/outcome", data={"outcome": "contract_signed", "contract_type": "license",
                                                    "amount": "-1"}, follow_redirects=True)
    assert "alert-danger" in r.get_data(as_text=True)  # the reason is shown (translated), nothing saved
    db.session.refresh(p)
    assert p.state == P.MEETING_SCHEDULED and p.contract_amount is None
    firm.post(f"/pairings/{p.id}/outcome", data={"outcome": "contract_signed", "contract_type": "license",
                                                "amount": "800000"})
    db.session.refresh(p)
    assert p.state == P.CONTRACT_SIGNED
    assert "pairing-history" in firm.get(f"/pairings/{p.id}").get_data(as_text=True)


def test_judging_a_stale_page_is_409(pw, app):
    """When the pairing changed since the coordinator loaded it, does the approval answer 409 with a clear
    message and change nothing?"""
    p = _pairing(pw, P.PENDING_REVIEW)
    db.session.commit()
    r = login(app.test_client(), pw["coord"]).post(f"/pairings/{p.id}/judge?lang=en",
                                                   data={"decision": "approve", "version": p.version - 1})
    assert r.status_code == 409 and "changed this pairing" in r.get_data(as_text=True)
    db.session.refresh(p)
    assert p.state == P.PENDING_REVIEW


def test_queue_filters_and_highlights_old(pw, app, make):
    """Does the workspace list pending pairings of the coordinator's hub city, oldest first, highlighting those
    waiting more than 3 days, and hide other cities?"""
    old = _pairing(pw, P.PENDING_REVIEW)
    old.updated_at = datetime.now(timezone.utc) - timedelta(days=5)
    db.session.commit()
    db.session.execute(db.update(Pairing).where(Pairing.id == old.id).values(
        updated_at=datetime.now(timezone.utc) - timedelta(days=5)))
    db.session.commit()
    html = login(app.test_client(), pw["coord"]).get("/coordinate").get_data(as_text=True)
    assert f'class="table-warning waiting-long" data-pairing-id="{old.id}"' in html
    chengdu = make.user(Role.COORDINATOR, hub_city="chengdu")
    assert f'data-pairing-id="{old.id}"' not in login(app.test_client(), chengdu).get("/coordinate").get_data(
        as_text=True)
    assert login(app.test_client(), pw["coord"]).get("/coordinate?industry=bogus").status_code == 400
    assert login(app.test_client(), pw["enterprise"]).get("/coordinate").status_code == 403


def test_propose_from_matches_and_bulk_confirm(pw, app, make):
    """Can the need's owner propose from the matches page, and a coordinator confirm bulk proposals (with a
    refused one reported, not a 500)?"""
    c = login(app.test_client(), pw["enterprise"])
    r = c.post("/pairings/propose", data={"need_id": pw["need"].id, "capability_id": pw["cap"].id})
    assert r.status_code == 303
    p = db.session.scalars(select(Pairing).where(Pairing.need_id == pw["need"].id)).one()
    assert p.origin == "need"
    cap2 = make.capability(make.user(Role.EXPERT, org=make.org(kind="university")))
    coord = login(app.test_client(), pw["coord"])
    r = coord.post("/coordinate/assign", data={"pick": [f"{pw['need'].id}:{cap2.id}:1.5",
                                                        f"{pw['need'].id}:{pw['cap'].id}:1.0"]},
                   follow_redirects=True)
    assert r.status_code == 200 and "alert-warning" in r.get_data(as_text=True)  # the refused one, with its reason
    assert db.session.scalar(select(Pairing.origin).where(Pairing.capability_id == cap2.id)) == "coordinator"
    assert coord.post("/coordinate/assign", data={"pick": ["x:y"]}).status_code == 400
    assert login(app.test_client(), pw["other_enterprise"]).post(
        "/pairings/propose", data={"need_id": pw["need"].id, "capability_id": cap2.id}).status_code == 403


# -- weekly digest -------------------------------------------------------------------------------

def test_digest_lists_new_needs_once(app, make, world):
    """Does `matchmaker digest` give each expert one notification listing the new needs in their fields, and
    nothing more on the next run until another need is published?"""
    from matchmaker.pairings.cli import digest_command
    expert = world["expert"]
    expert.expert_profile.fields = ["new_energy"]
    db.session.commit()
    need = make.need(world["enterprise"], title="新能源需求一")
    make.need(world["enterprise"], title="无关行业需求", industry="biomedicine")
    runner = app.test_cli_runner()
    result = runner.invoke(digest_command)
    assert result.exit_code == 0, result.output
    notes = db.session.scalars(select(Notification).where(Notification.user_id == expert.id,
                                                          Notification.kind == "digest.needs")).all()
    assert len(notes) == 1 and f"/needs/{need.id}" in notes[0].body and "无关行业需求" not in notes[0].body
    assert expert.expert_profile.last_digest_at is not None
    runner.invoke(digest_command)
    assert db.session.scalar(select(db.func.count(Notification.id)).where(
        Notification.user_id == expert.id, Notification.kind == "digest.needs")) == 1
