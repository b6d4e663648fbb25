"""``core.statemachine.StateMachine``: one check-and-move for the listing, pairing, fair and challenge workflows."""
from __future__ import annotations

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import select

from matchmaker.challenges import operations as challenge_ops
from matchmaker.core.audit import AuditEvent
from matchmaker.core.enums import ListingStatus
from matchmaker.core.workflow import WorkflowError
from matchmaker.extensions import db
from matchmaker.fairs import operations as fair_ops
from matchmaker.fairs.models import FairStatus
from matchmaker.listings import operations as listing_ops
from matchmaker.pairings import operations as pairing_ops
from matchmaker.pairings.models import PairingState as P


def _events(listing):
    return db.session.scalars(select(AuditEvent).where(
        AuditEvent.target_type == listing.__tablename__, AuditEvent.target_id == listing.id)
        .order_by(AuditEvent.id)).all()


def test_illegal_move_is_refused_before_anything_changes(make, world):
    """Is a move the domain's table leaves out refused (409, the domain's words) with the row and trail untouched?"""
    need = make.need(world["enterprise"], status="closed")
    before = len(_events(need))
    with pytest.raises(WorkflowError) as info:
        listing_ops.MACHINE.move(need, ListingStatus.PUBLISHED, world["coordinator"])
    assert info.value.status == 409
    assert info.value.reason == gettext("A %(kind)s cannot go from “%(frm)s” to “%(to)s”.", kind="need",
                                        frm=ListingStatus.label_of("closed"), to=ListingStatus.label_of("published"))
    assert need.status == ListingStatus.CLOSED
    assert len(_events(need)) == before


def test_move_sets_state_and_writes_the_audit_entry(make, world):
    """Does a move set the state, return where it came from and audit ``<noun>.<to>`` with from, to and comment?"""
    need = make.need(world["enterprise"], status="published")
    frm = listing_ops.MACHINE.move(need, ListingStatus.SUBMITTED, world["enterprise"], "edited")
    db.session.flush()
    assert (frm, need.status) == (ListingStatus.PUBLISHED, ListingStatus.SUBMITTED)
    last = _events(need)[-1]
    assert (last.action, last.actor_id, last.from_state, last.to_state, last.comment) == (
        "need.submitted", world["enterprise"].id, "published", "submitted", "edited")


def test_the_four_workflows_keep_their_tables_and_words(app):
    """Does each domain's machine use that domain's own table, field, audit noun and (translated) refusal?"""
    machines = {
        "listing": (listing_ops.MACHINE, listing_ops.TRANSITIONS, "status"),
        "pairing": (pairing_ops.MACHINE, pairing_ops.TRANSITIONS, "state"),
        "fair": (fair_ops.MACHINE, fair_ops.TRANSITIONS, "status"),
        "challenge": (challenge_ops.MACHINE, challenge_ops.TRANSITIONS, "status"),
    }
    for machine, table, field in machines.values():
        assert machine.transitions is table and machine.field == field
    assert pairing_ops.MACHINE.touch == "updated_at"  # a pairing's move bumps its version

    class Fair:
        status = FairStatus.HELD

    with app.test_request_context(), force_locale("zh"):
        reason = fair_ops.MACHINE.refuse(Fair(), FairStatus.OPEN).reason
        assert reason == gettext("A fair cannot go from “%(frm)s” to “%(to)s”.",
                                 frm=FairStatus.label_of(FairStatus.HELD), to=FairStatus.label_of(FairStatus.OPEN))
        assert "A fair" not in reason  # the msgid is unchanged, so the zh translation still applies


def test_a_move_left_out_of_the_table_on_purpose(make, world):
    """Can an operation make a move its table leaves out (``checked=False``) with its own audit action?"""
    need = make.need(world["enterprise"], status="closed")
    listing_ops.MACHINE.move(need, ListingStatus.DRAFT, world["admin"], "restored", action="need.restored",
                             checked=False)
    db.session.flush()
    last = _events(need)[-1]
    assert (need.status, last.action, last.from_state, last.to_state) == ("draft", "need.restored", "closed", "draft")
    assert not listing_ops.MACHINE.allows(ListingStatus.CLOSED, ListingStatus.DRAFT)


def test_pairing_refusal_reads_as_before(app):
    """Is a pairing's refused move worded exactly as the pairing workflow always said it?"""
    class Pairing:
        state = P.DECLINED

    with app.test_request_context():
        exc = pairing_ops.MACHINE.refuse(Pairing(), P.APPROVED)
        before = gettext("A pairing cannot go from “%(frm)s” to “%(to)s”.", frm=P.label_of(P.DECLINED),
                         to=P.label_of(P.APPROVED))  # what pairings.operations._check said
    assert (exc.status, exc.reason) == (409, before)
