"""Pairing lifecycle: transitions, permissions, declines, concurrency, pages and IDOR."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.listings import operations as listing_ops
from matchmaker.listings import operations as lops
from matchmaker.listings.models import Capability
from matchmaker.notifications.models import Notification
from matchmaker.pairings import assignment as asg
from matchmaker.pairings import operations as ops
from matchmaker.pairings.forms import parse_meeting_time
from matchmaker.pairings.models import ConflictOfInterest, Pairing, PairingResponse
from matchmaker.pairings.models import PairingState as P
from tests.helpers import T0, login, notes_of, pairing_at


def test_schedule_meeting_sets_time_place_audit_and_notifies(pw):
    """Does scheduling an approved pairing store the UTC time and place, audit it and notify both sides?"""
    p = pairing_at(pw, P.APPROVED)
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
    p = pairing_at(pw, state)
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


@pytest.mark.nodb
def test_suggested_state_is_declared_in_the_table():
    """Does the transition table name every stored state (no state without a rule)?"""
    assert set(ops.TRANSITIONS) == set(ALL_STATES)


def test_both_sides_interested_moves_to_review_and_tells_coordinators(pw):
    """Do two interested responses put the pairing in the coordinator's queue and notify the coordinator?"""
    p = pairing_at(pw, P.PENDING_REVIEW)
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
    p = pairing_at(pw, P.PROPOSED)
    ops.respond(p, pw["enterprise"], "need", "declined", reason=reason, message="已有方案" if reason == "other" else None)
    db.session.commit()
    assert p.state == P.DECLINED and p.response_of("need").reason == reason


@pytest.mark.parametrize("reason,message", [(None, None), ("bogus", None), ("other", ""), ("other", "  ")])
def test_decline_without_valid_reason_is_refused(pw, reason, message):
    """Is a decline without a known reason (or 'other' without text) refused with no change?"""
    p = pairing_at(pw, P.PROPOSED)
    with pytest.raises(WorkflowError):
        ops.respond(p, pw["enterprise"], "need", "declined", reason=reason, message=message)
    assert p.state == P.PROPOSED and p.response_of("need") is None


def test_wrong_side_and_double_response_refused(pw):
    """Can the expert answer for the firm, or a side answer twice?"""
    p = pairing_at(pw, P.PROPOSED)
    with pytest.raises(WorkflowError) as err:
        ops.respond(p, pw["expert"], "need", "interested")
    assert err.value.status == 403
    ops.respond(p, pw["enterprise"], "need", "interested")
    with pytest.raises(WorkflowError):
        ops.respond(p, pw["enterprise"], "need", "interested")


def test_reject_requires_comment(pw):
    """Is a rejection without a reason refused?"""
    p = pairing_at(pw, P.PENDING_REVIEW)
    with pytest.raises(WorkflowError) as err:
        ops.judge(p, pw["coord"], approve=False, comment="  ")
    assert err.value.status == 400 and p.state == P.PENDING_REVIEW


def test_judge_permissions(pw, make):
    """May only in-scope coordinators on neither side judge (not the firm, another city's coordinator,
    or a coordinator who belongs to the firm)?"""
    p = pairing_at(pw, P.PENDING_REVIEW)
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
    p = pairing_at(pw, P.APPROVED)
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


@pytest.mark.parametrize("written, stored", [("1,200,000", "1200000.00"), ("120万", "1200000.00"),
                                             ("¥35,000.5", "35000.50")])
def test_contract_amount_as_people_write_it(pw, app, written, stored):
    """Regression (2026-12-07): "1,200,000" and "120万" were refused as a missing amount and the field
    cleared; does the outcome form record them as the amount they name?"""
    p = pairing_at(pw, P.APPROVED)
    db.session.commit()
    client = app.test_client()
    login(client, pw["enterprise"])
    response = client.post(f"/pairings/{p.id}/outcome", data={"outcome": "contract_signed",
                                                               "contract_type": "license", "amount": written})
    assert response.status_code == 303
    db.session.expire_all()
    assert p.state == P.CONTRACT_SIGNED and str(p.contract_amount) == stored


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
    from matchmaker.notifications.models import MailMessage
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
            conn.execute(delete(MailMessage).where(MailMessage.to_addr.like(f"%-{tag}@example.test")))
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

def test_pairing_page_shows_both_sides_history_and_actions(pw, app):
    """Does a party see both listings, the history and only the actions they may take?"""
    p = pairing_at(pw, P.PROPOSED)
    db.session.commit()
    html = login(app.test_client(), pw["expert"]).get(f"/pairings/{p.id}").get_data(as_text=True)
    assert pw["need"].title in html and pw["cap"].title in html and 'id="pairing-history"' in html
    assert 'data-side="capability"' in html and 'data-side="need"' not in html and "judge-form" not in html


def test_idor_other_org_gets_404(pw, app):
    """Is another organization's pairing invisible (404) and unactionable for an outsider?"""
    p = pairing_at(pw, P.PROPOSED)
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
    p = pairing_at(pw, P.PROPOSED)
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
    p = pairing_at(pw, P.PENDING_REVIEW)
    db.session.commit()
    r = login(app.test_client(), pw["coord"]).post(f"/pairings/{p.id}/judge?lang=en",
                                                   data={"decision": "approve", "version": p.version - 1})
    assert r.status_code == 409 and "changed this pairing" in r.get_data(as_text=True)
    db.session.refresh(p)
    assert p.state == P.PENDING_REVIEW


def test_queue_filters_and_highlights_old(pw, app, make):
    """Does the workspace list pending pairings of the coordinator's hub city, oldest first, highlighting those
    waiting more than 3 days, and hide other cities?"""
    old = pairing_at(pw, P.PENDING_REVIEW)
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


# -- lifecycle fixes (2026-12-02): withdrawn listings, what people read about a pairing, withdrawing a pairing ---


def test_closing_a_solved_need_keeps_its_docked_pairings(pw):
    """Regression (2026-12-02): Does a need closed after its pairing was approved leave that pairing approved (meetings and contracts
    go on)?"""
    pairing = pairing_at(pw, P.APPROVED)
    db.session.commit()
    listing_ops.close_listing(pw["need"], pw["enterprise"])
    db.session.commit()
    db.session.refresh(pairing)
    assert pairing.state == P.APPROVED


def test_a_capability_deleted_meanwhile_stops_an_answer_and_a_judgment(pw):
    """Regression (2026-12-02): If the capability was deleted by another request after the pairing was read (its pairings not ended
    yet), are a response and a judgment refused with 409 instead of moving the pairing on?"""
    pairing = pairing_at(pw, P.PENDING_REVIEW)
    db.session.commit()
    from matchmaker.core.time import utcnow
    from matchmaker.listings.models import Capability
    db.session.execute(update(Capability).where(Capability.id == pw["cap"].id).values(deleted_at=utcnow()))
    db.session.expire_all()
    with pytest.raises(WorkflowError) as refused:
        ops.judge(pairing, pw["coord"], approve=True)
    assert refused.value.status == 409
    db.session.rollback()
    assert db.session.get(type(pairing), pairing.id).state == P.PENDING_REVIEW


def test_each_person_is_notified_in_their_own_language(pw, make):
    """Regression (2026-12-02): An expert who uses English declines: does the Chinese-speaking firm get the notice in Chinese, and an
    English-speaking firm member in English?"""
    pw["expert"].locale = "en"
    pw["enterprise"].locale = "zh_CN"
    pairing = pairing_at(pw, P.PROPOSED)
    db.session.commit()
    from flask_babel import force_locale
    with force_locale("en"):  # the actor's language
        ops.respond(pairing, pw["expert"], "capability", "declined", reason="too_early")
    db.session.commit()
    note = notes_of(pw["enterprise"])[-1]
    assert note.subject.startswith("配对已婉拒：") and note.body == "原因：时机尚早", (note.subject, note.body)
    pw["enterprise"].locale = "en"
    second = ops.propose_pairing(pw["need"], make.capability(pw["expert"], title="另一项能力"), by=pw["coord"])
    db.session.commit()
    with force_locale("zh_CN"):
        ops.respond(second, pw["expert"], "capability", "declined", reason="too_costly")
    db.session.commit()
    note = notes_of(pw["enterprise"])[-1]
    assert note.subject.startswith("Pairing declined: ") and note.body == "Reason: Too costly", note.body


def test_the_history_shows_who_answered_and_why_in_words(app, pw):
    """Regression (2026-12-02): Does the pairing's history read "专家方 · 已拒绝 · 原因：…" on the Chinese page, with none of the raw
    codes ("capability: too_early") it used to show?"""
    pairing = pairing_at(pw, P.PROPOSED)
    db.session.commit()
    client = login(app.test_client(), pw["expert"])
    client.post(f"/pairings/{pairing.id}/respond", data={"side": "capability", "decision": "declined",
                                                         "reason": "too_early"})
    page = client.get(f"/pairings/{pairing.id}?lang=zh").get_data(as_text=True)
    history = page.split('id="pairing-history"', 1)[1]
    assert "too_early" not in history and "capability:" not in history
    assert "专家方 · 已婉拒" in history and "时机尚早" in history


def test_decline_has_no_preselected_reason(app, pw):
    """Regression (2026-12-02): Is the reason list on the answer form empty until the person picks one (a preselected "not relevant"
    would demote the capability for similar needs without anyone saying so)?"""
    pairing = pairing_at(pw, P.PROPOSED)
    db.session.commit()
    page = login(app.test_client(), pw["expert"]).get(f"/pairings/{pairing.id}").get_data(as_text=True)
    select = page.split('name="reason"', 1)[1]
    assert select.split("<option", 2)[1].startswith(' value=""')


def test_a_judgment_without_the_version_seen_is_refused(app, pw):
    """Regression (2026-12-02): Is an approval POST that carries no version answered 409, the pairing left awaiting judgment?"""
    pairing = pairing_at(pw, P.PENDING_REVIEW)
    db.session.commit()
    response = login(app.test_client(), pw["coord"]).post(f"/pairings/{pairing.id}/judge",
                                                          data={"decision": "approve"})
    assert response.status_code == 409
    db.session.refresh(pairing)
    assert pairing.state == P.PENDING_REVIEW


def test_the_history_tells_each_message_once_and_leads_a_coordinator_home(app, pw):
    """Regression (2026-12-02): When the second side's "interested" moves the pairing on, is their message shown once in the history
    (not also on the state change), and does a coordinator's breadcrumb lead to their workspace?"""
    pairing = pairing_at(pw, P.PROPOSED)
    ops.respond(pairing, pw["enterprise"], "need", "interested", message="欢迎来厂交流")
    ops.respond(pairing, pw["expert"], "capability", "interested", message="下周可以到厂")
    db.session.commit()
    page = login(app.test_client(), pw["coord"]).get(f"/pairings/{pairing.id}").get_data(as_text=True)
    history = page.split('id="pairing-history"', 1)[1]
    assert history.count("下周可以到厂") == 1
    breadcrumb = page.split('class="breadcrumb"', 1)[1].split("</ol>", 1)[0]
    assert 'href="/coordinate"' in breadcrumb


def test_the_proposer_can_withdraw_a_pairing_not_docked_yet(app, pw):
    """Regression (2026-12-02): Can the firm that proposed a pairing take it back (declined, the expert told, the history saying
    "withdrawn"), while the expert who merely received it may not, and an approved one stays?"""
    pairing = ops.propose_pairing(pw["need"], pw["cap"], by=pw["enterprise"])
    db.session.commit()
    expert = login(app.test_client(), pw["expert"])
    assert expert.post(f"/pairings/{pairing.id}/withdraw").status_code == 403
    before = len(notes_of(pw["expert"]))
    firm = login(app.test_client(), pw["enterprise"])
    assert 'id="withdraw-form"' in firm.get(f"/pairings/{pairing.id}").get_data(as_text=True)
    assert firm.post(f"/pairings/{pairing.id}/withdraw", data={"reason": "需求已调整"}).status_code == 303
    db.session.refresh(pairing)
    assert pairing.state == P.DECLINED and len(notes_of(pw["expert"])) == before + 1
    history = firm.get(f"/pairings/{pairing.id}?lang=zh").get_data(as_text=True).split('id="pairing-history"')[1]
    assert "history-withdrawn" in history and "需求已调整" in history


def test_a_docked_pairing_cannot_be_withdrawn(pw):
    """Regression (2026-12-02): Is an approved pairing out of reach of "withdraw" (409 for the coordinator, no button)?"""
    pairing = pairing_at(pw, P.APPROVED)
    db.session.commit()
    assert not pairing.can_withdraw(pw["coord"])
    with pytest.raises(WorkflowError) as refused:
        ops.withdraw(pairing, pw["coord"])
    assert refused.value.status == 409


# -- pairing and fair review (2026-12-01): one person on both sides, concurrent answers, lost races, NUL, scores ---


def c(app, user):
    return login(app.test_client(), user)


def _approved(pw) -> Pairing:
    p = ops.propose_pairing(pw["need"], pw["cap"], by=pw["enterprise"])
    ops.respond(p, pw["expert"], "capability", "interested")
    ops.judge(p, pw["coord"], True, "同意")
    db.session.commit()
    return p


def _personal_capability(make, user, **kw) -> Capability:
    """A capability ``user`` posts in person (no organization)."""
    data = {"title": "低温电解液配方技术", "kind": "achievement", "summary": "宽温域电解液与负极改性。",
            "description": "团队开发的低温电解液使电池在-30℃保持80%容量。", "field": "new_energy", "trl": 6,
            "ip": "ZL202110000000.1", "coop_modes": ["license"], "hub_city": "chengdu", "region": "高新区"}
    data.update(kw)
    return make._advance(lops.create_listing(Capability, user, data, organization=None), user, "published")


def test_a_member_of_the_firm_cannot_pair_the_firms_need_with_their_own_capability(app, make, world):
    """Regression (2026-12-01): A member of the firm posts the firm's need and, in person, a capability: is proposing need × capability
    refused (operations, page, and the global assignment), so nobody can answer for both sides?"""
    person = make.user(Role.EXPERT, org=world["firm"])
    need = make.need(person)
    cap = _personal_capability(make, person)
    assert need.organization_id == world["firm"].id and cap.organization_id is None
    with pytest.raises(WorkflowError, match="不同的人") as exc:
        ops.propose_pairing(need, cap, by=person)
    assert exc.value.status == 409
    db.session.rollback()
    resp = c(app, person).post("/pairings/propose", data={"need_id": need.id, "capability_id": cap.id})
    assert resp.status_code == 303
    assert db.session.scalar(select(func.count(Pairing.id))) == 0
    # a coordinator cannot propose it either, and the assignment marks the candidate instead of proposing it
    with pytest.raises(WorkflowError, match="不同的人"):
        ops.propose_pairing(need, cap, by=world["coordinator"])
    db.session.rollback()
    candidates, _caps = asg.build_candidates([(need, cap, 0.9)])
    assert candidates[0].excluded == "same_person" and "同一人" in str(asg.REASONS["same_person"])


def test_a_colleague_of_the_firm_on_the_capability_side_is_refused_too(make, world):
    """Regression (2026-12-01): The need is the firm's (posted by someone else); the capability is posted in person by another member
    of the firm: is the pairing refused, while the firm × a real outside expert still pairs?"""
    colleague = make.user(Role.EXPERT, org=world["firm"])
    need = make.need(world["enterprise"])
    cap = _personal_capability(make, colleague)
    with pytest.raises(WorkflowError, match="不同的人"):
        ops.check_pairable(need, cap, cap.expert)
    outside = make.capability(world["expert"])
    ops.check_pairable(need, outside, outside.expert)  # no error


def test_an_answer_sees_the_other_sides_answer_committed_meanwhile(pw):
    """Regression (2026-12-01): The expert's request loaded the pairing (no answers yet); meanwhile the firm's answer is committed by
    another transaction. Does the expert's "interested" still see it and move the pairing to pending_review
    (it locks and re-reads the pairing), instead of leaving it stuck with two answers in "proposed"?"""
    p = ops.propose_pairing(pw["need"], pw["cap"], by=pw["coord"])
    db.session.commit()
    assert p.responses == [] and p.version == 1
    # the other request's answer, written behind this session's back (its loaded state is now stale)
    db.session.execute(insert(PairingResponse.__table__).values(
        pairing_id=p.id, side="need", decision="interested", user_id=pw["enterprise"].id))
    ops.respond(p, pw["expert"], "capability", "interested")
    db.session.commit()
    db.session.expire_all()
    p = db.session.get(Pairing, p.id)
    assert p.state == P.PENDING_REVIEW
    assert sorted(r.side for r in p.responses) == ["capability", "need"]


def test_every_answer_bumps_the_pairing_version(pw):
    """Regression (2026-12-01): Does an "interested" answer that does not change the state still touch the pairing (new version), so a
    concurrent writer of the same pairing fails its version check instead of slipping past?"""
    p = ops.propose_pairing(pw["need"], pw["cap"], by=pw["coord"])
    db.session.commit()
    before = p.version
    ops.respond(p, pw["enterprise"], "need", "interested")
    db.session.commit()
    assert p.state == P.PROPOSED and p.version == before + 1


def test_an_outcome_recorded_on_a_changed_pairing_is_409(app, pw, monkeypatch):
    """Regression (2026-12-01): The expert records an outcome while another transaction has just changed the pairing (its version moved
    between loading and the operation's flush): is the answer 409 with nothing saved, not a 500?"""
    p = _approved(pw)
    real = ops.record_outcome

    def concurrent_change_then(pairing, *args, **kwargs):
        table = Pairing.__table__
        db.session.execute(update(table).where(table.c.id == pairing.id).values(version=table.c.version + 1))
        return real(pairing, *args, **kwargs)

    monkeypatch.setattr(ops, "record_outcome", concurrent_change_then)
    resp = c(app, pw["expert"]).post(f"/pairings/{p.id}/outcome", data={"outcome": "failed", "note": "不合适"})
    assert resp.status_code == 409
    db.session.expire_all()
    assert db.session.get(Pairing, p.id).state == P.APPROVED


def test_a_duplicate_proposal_made_at_the_same_moment_is_409(app, pw, monkeypatch):
    """Regression (2026-12-01): Two proposals of the same need × capability pass the "already exists" check at once; the second insert
    hits the unique index during the operation's flush. Is that a 409 (not a 500), with one pairing left?"""
    db.session.execute(insert(Pairing.__table__).values(
        need_id=pw["need"].id, capability_id=pw["cap"].id, expert_id=pw["cap"].expert_id, state="proposed",
        origin="coordinator"))
    db.session.commit()
    monkeypatch.setattr(ops, "_existing", lambda *args: None)  # the check ran before the other one committed
    resp = c(app, pw["enterprise"]).post("/pairings/propose",
                                         data={"need_id": pw["need"].id, "capability_id": pw["cap"].id})
    assert resp.status_code == 409
    assert db.session.scalar(select(func.count(Pairing.id))) == 1


@pytest.mark.parametrize("error", [StaleDataError("stale"), IntegrityError("INSERT", {}, Exception("unique"))])
def test_a_lost_race_while_answering_is_409(app, pw, monkeypatch, error):
    """Regression (2026-12-01): If the respond operation's own flush loses a race, is the answer 409 (not 500) with nothing saved?"""
    p = ops.propose_pairing(pw["need"], pw["cap"], by=pw["coord"])
    db.session.commit()

    def lose(*args, **kwargs):
        db.session.add(PairingResponse(pairing_id=p.id, side="need", decision="interested",
                                       user_id=pw["enterprise"].id))
        raise error

    monkeypatch.setattr(ops, "respond", lose)
    resp = c(app, pw["enterprise"]).post(f"/pairings/{p.id}/respond",
                                         data={"side": "need", "decision": "interested"})
    assert resp.status_code == 409
    assert db.session.scalar(select(func.count(PairingResponse.id))) == 0


@pytest.mark.parametrize("when,offset", [("0001-01-01T00:00", "840"), ("9999-12-31T23:59", "-840"),
                                         ("0001-01-01T00:00+14:00", None), ("2101-01-01T00:00", "480")])
def test_a_meeting_time_out_of_range_is_refused_not_a_crash(app, pw, when, offset):
    """Regression (2026-12-01): Is a pairing meeting in year 1 or 9999 at an extreme offset refused as bad input (400 from the parser,
    the page redirects with the message) instead of an OverflowError, and the pairing unchanged?"""
    with pytest.raises(WorkflowError) as exc:
        parse_meeting_time(when, offset)
    assert exc.value.status == 400 and "2000" in exc.value.reason
    p = _approved(pw)
    data = {"when": when, "place": "重庆会展中心"}
    if offset is not None:
        data["tz_offset"] = offset
    resp = c(app, pw["enterprise"]).post(f"/pairings/{p.id}/schedule", data=data)
    assert resp.status_code == 303
    db.session.expire_all()
    p = db.session.get(Pairing, p.id)
    assert p.state == P.APPROVED and p.meeting_at is None


def test_nul_characters_are_removed_from_every_pairing_text(app, pw):
    """Regression (2026-12-01): PostgreSQL refuses NUL in text. Are they removed from the proposal message, the answer's message, the
    judgment comment, the meeting place and the outcome note (all through the pages)?"""
    resp = c(app, pw["enterprise"]).post("/pairings/propose", data={
        "need_id": pw["need"].id, "capability_id": pw["cap"].id, "message": "你好\x00，想合作"})
    assert resp.status_code == 303
    p = db.session.scalars(select(Pairing)).one()
    assert p.responses[0].message == "你好，想合作"
    assert c(app, pw["expert"]).post(f"/pairings/{p.id}/respond", data={
        "side": "capability", "decision": "interested", "message": "可以\x00谈"}).status_code == 303
    db.session.expire_all()
    assert c(app, pw["coord"]).post(f"/pairings/{p.id}/judge", data={
        "decision": "approve", "version": str(db.session.get(Pairing, p.id).version),
        "comment": "同意\x00"}).status_code == 303
    assert c(app, pw["enterprise"]).post(f"/pairings/{p.id}/schedule", data={
        "when": "2031-06-01T10:00", "place": "3号\x00会议室"}).status_code == 303
    assert c(app, pw["enterprise"]).post(f"/pairings/{p.id}/outcome", data={
        "outcome": "failed", "note": "价格\x00不合适"}).status_code == 303
    db.session.expire_all()
    p = db.session.get(Pairing, p.id)
    assert p.state == P.FAILED
    assert p.response_of("capability").message == "可以谈"
    assert (p.judgment_comment, p.meeting_place, p.outcome_note) == ("同意", "3号会议室", "价格不合适")
    comments = db.session.scalars(select(AuditEvent.comment).where(AuditEvent.target_type == "pairings")).all()
    assert not any("\x00" in (text or "") for text in comments)


def test_the_way_back_to_approved_is_only_the_meeting_cancellation(pw):
    """Regression (2026-12-01): Is meeting_scheduled → approved absent from the transition table (so e.g. judging again cannot take
    it), and does cancel_meeting refuse any state other than meeting_scheduled?"""
    assert P.APPROVED not in ops.TRANSITIONS[P.MEETING_SCHEDULED]
    p = _approved(pw)
    with pytest.raises(WorkflowError):
        ops.cancel_meeting(p, pw["coord"], "x")
    ops.schedule_meeting(p, pw["coord"], T0, "重庆")
    with pytest.raises(WorkflowError):
        ops.judge(p, pw["coord"], True, "again")


def test_a_score_posted_by_a_party_is_ignored(app, pw):
    """Regression (2026-12-01): The firm posts score=99 with its proposal: is it ignored (the coordinator is never shown a number the
    client made up)?"""
    resp = c(app, pw["enterprise"]).post("/pairings/propose", data={
        "need_id": pw["need"].id, "capability_id": pw["cap"].id, "score": "99"})
    assert resp.status_code == 303
    assert db.session.scalars(select(Pairing.match_score)).one() is None


@pytest.mark.parametrize("score", ["nan", "inf", "-inf", "1e400", "x"])
def test_a_non_finite_score_is_refused(app, pw, score):
    """Regression (2026-12-01): Is a coordinator's proposal or assignment with a score that is not a finite number refused (no pairing,
    no NaN stored), while a finite engine score is kept?"""
    coord = pw["coord"]
    resp = c(app, coord).post("/pairings/propose", data={
        "need_id": pw["need"].id, "capability_id": pw["cap"].id, "score": score})
    assert resp.status_code == 303
    resp = c(app, coord).post("/coordinate/assign", data={"pick": f"{pw['need'].id}:{pw['cap'].id}:{score}"})
    assert resp.status_code == 400
    assert db.session.scalar(select(func.count(Pairing.id))) == 0
    with pytest.raises(WorkflowError, match="有限的数字"):
        ops.propose_pairing(pw["need"], pw["cap"], by=coord, score=float("nan"))
    db.session.rollback()
    resp = c(app, coord).post("/pairings/propose", data={
        "need_id": pw["need"].id, "capability_id": pw["cap"].id, "score": "0.7312"})
    assert resp.status_code == 303
    assert db.session.scalars(select(Pairing.match_score)).one() == pytest.approx(0.7312)
