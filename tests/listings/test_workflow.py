"""The listing workflow at the model and service layer: CHECK constraints, transitions, concurrency."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import Role
from matchmaker.core.time import utcnow
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.listings import operations as ops
from matchmaker.listings.models import Capability, Need


@pytest.fixture(autouse=True)
def _request_context(app, db_session):
    """Refusal messages are translated, and the locale selector reads the request (as in the web app)."""
    with app.test_request_context():
        yield


# --- CHECK constraints --------------------------------------------------------------------------------

def _need_row(world, **overrides) -> Need:
    values = dict(title="低温锂电池放电性能提升", industry="new_energy", status="draft", language="zh",
                  visibility="public", coop_modes=["joint_dev"], hub_city="chongqing",
                  organization_id=world["firm"].id, created_by_id=world["enterprise"].id)
    values.update(overrides)
    return Need(**values)


def _cap_row(world, **overrides) -> Capability:
    values = dict(title="低温电解液配方技术", kind="achievement", field="new_energy", status="draft",
                  language="zh", coop_modes=["license"], created_by_id=world["expert"].id)
    values.update(overrides)
    return Capability(**values)


def _published(world):
    now = utcnow()
    return dict(status="published", submitted_at=now, published_at=now, reviewed_by_id=world["coordinator"].id)


NEED_VIOLATIONS = {
    "returned without reason": lambda w: dict(status="returned", submitted_at=utcnow(), return_reason=None),
    "returned with empty reason": lambda w: dict(status="returned", submitted_at=utcnow(), return_reason=""),
    "published without reviewer": lambda w: {**_published(w), "reviewed_by_id": None},
    "published without publication time": lambda w: {**_published(w), "published_at": None},
    "submitted without submission time": lambda w: dict(status="submitted", submitted_at=None),
    "closed without closing time": lambda w: dict(status="closed", closed_at=None),
    "unknown status": lambda w: dict(status="archived"),
    "unknown industry": lambda w: dict(industry="alchemy"),
    "unknown hub city": lambda w: dict(hub_city="beijing"),
    "unknown visibility": lambda w: dict(visibility="friends"),
    "unknown language": lambda w: dict(language="fr"),
    "budget max below min": lambda w: dict(budget_min=100, budget_max=50),
    "negative budget": lambda w: dict(budget_min=-1),
    "title too short": lambda w: dict(title="abc"),
    "submitted need without organization": lambda w: dict(status="submitted", submitted_at=utcnow(),
                                                          organization_id=None),
}

CAPABILITY_VIOLATIONS = {
    "TRL 10": dict(trl=10),
    "TRL 0": dict(trl=0),
    "unknown kind": dict(kind="rumour"),
    "unknown field": dict(field="alchemy"),
    "unknown status": dict(status="archived"),
}


def test_valid_rows_insert(world):
    """Do the baseline rows used below satisfy every constraint (so each failure below is the one rule)?"""
    db.session.add_all([_need_row(world), _need_row(world, **_published(world)), _cap_row(world, trl=9)])
    db.session.flush()


@pytest.mark.parametrize("case", sorted(NEED_VIOLATIONS))
def test_need_check_constraints(world, case):
    """Does the database itself refuse a need row that breaks this rule?"""
    db.session.add(_need_row(world, **NEED_VIOLATIONS[case](world)))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


@pytest.mark.parametrize("case", sorted(CAPABILITY_VIOLATIONS))
def test_capability_check_constraints(world, case):
    """Does the database itself refuse a capability row that breaks this rule?"""
    db.session.add(_cap_row(world, **CAPABILITY_VIOLATIONS[case]))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


# --- transitions --------------------------------------------------------------------------------------

def _do(action, listing, world):
    owner, coordinator = world["enterprise"], world["coordinator"]
    if action == "submit":
        ops.submit_listing(listing, owner)
    elif action == "publish":
        ops.publish_listing(listing, coordinator, "ok")
    elif action == "return":
        ops.return_listing(listing, coordinator, "请补充指标")
    elif action == "close":
        ops.close_listing(listing, owner)
    elif action == "edit":
        ops.update_listing(listing, owner, {"title": "低温锂电池放电性能提升（修订）"})


#: (from state, action) → resulting state, or None when the operation must be refused
TRANSITION_TABLE = {
    ("draft", "submit"): "submitted", ("draft", "publish"): None, ("draft", "return"): None,
    ("draft", "close"): "closed", ("draft", "edit"): "draft",
    ("submitted", "submit"): None, ("submitted", "publish"): "published", ("submitted", "return"): "returned",
    ("submitted", "close"): "closed", ("submitted", "edit"): "submitted",
    ("published", "submit"): None, ("published", "publish"): None, ("published", "return"): None,
    ("published", "close"): "closed", ("published", "edit"): "submitted",
    ("returned", "submit"): "submitted", ("returned", "publish"): None, ("returned", "return"): None,
    ("returned", "close"): "closed", ("returned", "edit"): "returned",
    ("closed", "submit"): None, ("closed", "publish"): None, ("closed", "return"): None,
    ("closed", "close"): None, ("closed", "edit"): None,
}


@pytest.mark.parametrize("start,action", sorted(TRANSITION_TABLE))
def test_transition_table(make, world, start, action):
    """Does each operation move a listing to the expected state, or refuse it leaving the row untouched?"""
    need = make.need(world["enterprise"], status=start)
    before = {c: getattr(need, c) for c in ("status", "submitted_at", "published_at", "reviewed_by_id",
                                            "closed_at", "return_reason", "title", "version")}
    expected = TRANSITION_TABLE[(start, action)]
    if expected is None:
        with pytest.raises(WorkflowError) as exc:
            _do(action, need, world)
        assert exc.value.reason
        db.session.rollback()
        db.session.refresh(need)
        assert {c: getattr(need, c) for c in before} == before
    else:
        _do(action, need, world)
        db.session.commit()
        assert need.status == expected


def test_transitions_are_audited(make, world):
    """Does every state change leave an audit entry naming the actor, the old and the new state?"""
    need = make.need(world["enterprise"], status="draft")
    ops.submit_listing(need, world["enterprise"])
    ops.return_listing(need, world["coordinator"], "缺少预算")
    ops.submit_listing(need, world["enterprise"])
    ops.publish_listing(need, world["coordinator"])
    db.session.commit()
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.target_type == "needs", AuditEvent.target_id == need.id,
        AuditEvent.to_state.is_not(None)).order_by(AuditEvent.id)).all()
    assert [(e.from_state, e.to_state) for e in events] == [
        (None, "draft"), ("draft", "submitted"), ("submitted", "returned"), ("returned", "submitted"),
        ("submitted", "published")]
    assert events[2].actor_id == world["coordinator"].id and events[2].comment == "缺少预算"


def test_resubmit_clears_return_reason(make, world):
    """Does resubmitting a returned listing clear the old reason (and the DB accept it)?"""
    need = make.need(world["enterprise"], status="returned")
    assert need.return_reason
    ops.submit_listing(need, world["enterprise"])
    db.session.commit()
    assert need.status == "submitted" and need.return_reason is None


def test_return_requires_reason(make, world):
    """Is returning without a (non-blank) reason refused?"""
    need = make.need(world["enterprise"], status="submitted")
    with pytest.raises(WorkflowError):
        ops.return_listing(need, world["coordinator"], "   ")
    assert need.status == "submitted"


def test_owner_cannot_publish_own_listing(make, world):
    """Can a coordinator who owns a listing approve it? (No.)"""
    coordinator = world["coordinator"]
    from matchmaker.accounts.models import Membership
    coordinator.memberships.append(Membership(organization=world["firm"]))
    db.session.commit()
    need = make.need(world["enterprise"], status="submitted")
    with pytest.raises(WorkflowError) as exc:
        ops.publish_listing(need, coordinator)
    assert exc.value.status == 403


def test_scoped_coordinator_cannot_moderate_other_city(make, world):
    """Is a coordinator scoped to Chengdu refused on a Chongqing listing, but allowed on a Chengdu one?"""
    chengdu = make.user(Role.COORDINATOR, hub_city="chengdu")
    cq = make.need(world["enterprise"], status="submitted", hub_city="chongqing")
    cd = make.need(world["enterprise"], status="submitted", hub_city="chengdu")
    with pytest.raises(WorkflowError) as exc:
        ops.publish_listing(cq, chengdu)
    assert exc.value.status == 403
    ops.publish_listing(cd, chengdu)
    db.session.commit()
    assert cd.status == "published"


def test_delete_is_soft_and_once(make, world):
    """Does delete keep the row (for the audit trail), and is a second delete refused?"""
    need = make.need(world["enterprise"], status="published")
    ops.delete_listing(need, world["enterprise"])
    db.session.commit()
    assert db.session.get(Need, need.id).deleted_at is not None
    with pytest.raises(WorkflowError):
        ops.delete_listing(need, world["enterprise"])
    with pytest.raises(WorkflowError):
        ops.submit_listing(need, world["enterprise"])


def test_other_org_cannot_change_need(make, world):
    """Are edit, submit, close and delete by another enterprise refused with 403?"""
    need = make.need(world["enterprise"], status="draft")
    intruder = world["other_enterprise"]
    for operation in (lambda: ops.update_listing(need, intruder, {"title": "被篡改的标题"}),
                      lambda: ops.submit_listing(need, intruder),
                      lambda: ops.close_listing(need, intruder),
                      lambda: ops.delete_listing(need, intruder)):
        with pytest.raises(WorkflowError) as exc:
            operation()
        assert exc.value.status == 403
    db.session.rollback()
    db.session.refresh(need)
    assert need.status == "draft" and need.title != "被篡改的标题" and need.deleted_at is None


def test_need_requires_enterprise(world):
    """Can someone without an organization create a need through the service layer? (No, 403.)"""
    with pytest.raises(WorkflowError) as exc:
        ops.create_listing(Need, world["coordinator"], {"title": "无组织的需求", "industry": "new_energy"})
    assert exc.value.status == 403


# --- concurrency --------------------------------------------------------------------------------------

def test_concurrent_moderation_stale_version_loses(make, world):
    """When another coordinator decides first (version bumped underneath), does the second decision fail
    with StaleDataError instead of silently overwriting?"""
    need = make.need(world["enterprise"], status="submitted")
    other = make.user(Role.COORDINATOR)
    # the other coordinator's publish commits first, straight in the database; our objects stay stale
    session = db.session()
    session.expire_on_commit = False
    db.session.execute(update(Need).where(Need.id == need.id).values(
        status="published", published_at=utcnow(), reviewed_by_id=other.id, version=Need.version + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    session.expire_on_commit = True
    # our session still holds the old version and status
    assert need.status == "submitted"
    ops.return_listing(need, world["coordinator"], "指标不清")
    with pytest.raises(StaleDataError):
        db.session.flush()
    db.session.rollback()
    db.session.refresh(need)
    assert need.status == "published" and need.reviewed_by_id == other.id and need.return_reason is None
