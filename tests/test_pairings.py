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
