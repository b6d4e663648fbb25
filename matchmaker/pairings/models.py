"""A pairing (need × capability or expert) and the responses and judgments on it.

States (stored; transitions live in ``operations``):

    suggested | proposed ──(both sides interested)──► pending_review ──► approved ──► meeting_scheduled
         │                                              │                   │              │
         └──► declined (either side, with a reason)     └──► rejected       └──────────────┴──► in_progress
                                                                                                contract_signed
                                                                                                failed
Responses (interest / decline) are rows of their own, one per side, like Indico's reviews; the coordinator's
judgment is stored on the pairing with its judge and time, and CHECK constraints tie them to the state.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import (CheckConstraint, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint,
                        text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.audit_labels import register_labels
from ..core.enums import LabelledEnum, sql_in
from ..core.scope import coordinator_scope_of
from ..core.time import UTCDateTime, utcnow
from ..extensions import db


class PairingState(LabelledEnum):
    SUGGESTED = "suggested", _l("Suggested")
    PROPOSED = "proposed", _l("Proposed")
    DECLINED = "declined", _l("Declined")
    PENDING_REVIEW = "pending_review", _l("Awaiting coordinator")
    APPROVED = "approved", _l("Approved")
    REJECTED = "rejected", _l("Rejected")
    MEETING_SCHEDULED = "meeting_scheduled", _l("Meeting scheduled")
    IN_PROGRESS = "in_progress", _l("In progress")
    CONTRACT_SIGNED = "contract_signed", _l("Contract signed")
    FAILED = "failed", _l("Failed")


#: states that count as "docked" (an approved pairing) for dashboards and the 80 % target
DOCKED_STATES = (PairingState.APPROVED, PairingState.MEETING_SCHEDULED, PairingState.IN_PROGRESS,
                 PairingState.CONTRACT_SIGNED, PairingState.FAILED)
#: states of a pairing still waiting for answers or a judgment (not docked yet): it may be withdrawn
UNDOCKED_OPEN = (PairingState.SUGGESTED, PairingState.PROPOSED, PairingState.PENDING_REVIEW)
#: states in which an expert's capacity is taken
ACTIVE_STATES = (PairingState.SUGGESTED, PairingState.PROPOSED, PairingState.PENDING_REVIEW,
                 PairingState.APPROVED, PairingState.MEETING_SCHEDULED, PairingState.IN_PROGRESS)


class PairingSide(LabelledEnum):
    NEED = "need", _l("Enterprise side")
    CAPABILITY = "capability", _l("Expert side")


class DeclineReason(LabelledEnum):
    NOT_RELEVANT = "not_relevant", _l("Not relevant")
    TOO_EARLY = "too_early", _l("Too early")
    TOO_COSTLY = "too_costly", _l("Too costly")
    ALREADY_SOLVED = "already_solved", _l("Already solved")
    OTHER = "other", _l("Other")


class ContractType(LabelledEnum):
    TRANSFER = "transfer", _l("Technology transfer")
    LICENSE = "license", _l("Technology licensing")
    DEVELOPMENT = "development", _l("Development contract")
    CONSULTING = "consulting", _l("Consulting contract")
    SERVICE = "service", _l("Service contract")


class DismissReason(LabelledEnum):
    """Why an expert marked a suggested need "not for me" (optional)."""
    NOT_RELEVANT = "not_relevant", _l("Not my field")
    NO_CAPACITY = "no_capacity", _l("No time for it now")
    OTHER = "other", _l("Other")


#: dismissal reasons that say the need does not fit the expert's capabilities: they feed the ranking
#: (``feedback.py``); "no time for it now" says nothing about the fit and does not
RELEVANCE_DISMISSALS = (None, DismissReason.NOT_RELEVANT.value, DismissReason.OTHER.value)


register_labels(state_actions={"pairing": PairingState}, target_states={"pairings": PairingState},
                families={"pairing_side": PairingSide},
                actions={  # state changes are composed: pairing.<state>
                    "pairing.meeting_cancelled": _l("Pairing meeting cancelled"),
                    "pairing.withdrawn": _l("Pairing withdrawn"),
                    "suggestion.dismissed": _l("Suggested need marked “not for me”"),
                    "suggestion.restored": _l("Dismissed need suggested again"),
                },
                kinds={"pairing": _l("Pairing")}, targets={"pairings": _l("Pairing")},
                categories=[("pairing.", _l("Pairings")), ("suggestion.", _l("Suggestions"))])


class Pairing(db.Model):
    __tablename__ = "pairings"
    __table_args__ = (
        CheckConstraint(f"state IN {sql_in(PairingState)}", name="state_known"),
        CheckConstraint("capability_id IS NOT NULL OR expert_id IS NOT NULL", name="has_counterpart"),
        CheckConstraint("origin IN ('engine', 'coordinator', 'need', 'capability')", name="origin_known"),
        # a judgment is recorded exactly when the pairing has been judged
        CheckConstraint("state NOT IN ('approved', 'rejected', 'meeting_scheduled', 'in_progress', "
                        "'contract_signed', 'failed') OR (judged_by_id IS NOT NULL AND judged_at IS NOT NULL)",
                        name="judged_states_have_judge"),
        CheckConstraint("state <> 'rejected' OR (judgment_comment IS NOT NULL AND length(judgment_comment) > 0)",
                        name="rejection_has_reason"),
        CheckConstraint("state <> 'contract_signed' OR (contract_type IS NOT NULL AND contract_amount IS NOT NULL "
                        "AND contract_amount > 0)", name="contract_has_terms"),
        CheckConstraint(f"contract_type IS NULL OR contract_type IN {sql_in(ContractType)}",
                        name="contract_type_known"),
        CheckConstraint("state <> 'failed' OR (outcome_note IS NOT NULL AND length(outcome_note) > 0)",
                        name="failure_has_reason"),
        # one live pairing per need × capability (and per need × expert when no capability is named)
        Index("uq_pairings_need_capability", "need_id", "capability_id", unique=True,
              sqlite_where=text("capability_id IS NOT NULL"), postgresql_where=text("capability_id IS NOT NULL")),
        Index("uq_pairings_need_expert", "need_id", "expert_id", unique=True,
              sqlite_where=text("capability_id IS NULL"), postgresql_where=text("capability_id IS NULL")),
        Index("ix_pairings_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id"), nullable=False, index=True)
    capability_id: Mapped[int | None] = mapped_column(ForeignKey("capabilities.id"), index=True)
    #: the expert behind the capability, or the expert proposed directly
    expert_id: Mapped[int | None] = mapped_column(ForeignKey("expert_profiles.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), nullable=False, default=PairingState.PROPOSED.value)
    #: who started it: the engine, a coordinator, the firm (need side) or the expert (capability side)
    origin: Mapped[str] = mapped_column(String(12), nullable=False)
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: engine score and evidence at proposal time (JSON), shown to the coordinator
    match_score: Mapped[float | None]
    match_evidence: Mapped[dict | None] = mapped_column(db.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)

    judged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    judged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    judgment_comment: Mapped[str | None] = mapped_column(Text)

    meeting_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    meeting_place: Mapped[str | None] = mapped_column(String(300))

    contract_type: Mapped[str | None] = mapped_column(String(16))
    #: contract value in CNY
    contract_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    outcome_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    #: optimistic lock: two coordinators approving at once → exactly one wins
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    __mapper_args__ = {"version_id_col": version}

    need = relationship("Need", lazy="joined")
    capability = relationship("Capability", lazy="joined")
    expert = relationship("ExpertProfile", lazy="joined")
    responses: Mapped[list["PairingResponse"]] = relationship(back_populates="pairing",
                                                              cascade="all, delete-orphan",
                                                              order_by="PairingResponse.created_at")

    def response_of(self, side: str) -> "PairingResponse | None":
        return next((r for r in self.responses if r.side == side), None)

    # parties and permissions (added for the lifecycle; see ``operations``) -------------------------
    @property
    def capability_side_user_ids(self) -> set[int]:
        ids = set()
        if self.capability is not None and self.capability.created_by_id is not None:
            ids.add(self.capability.created_by_id)
        if self.expert is not None:
            ids.add(self.expert.user_id)
        return ids

    @property
    def side_organization_ids(self) -> set[int]:
        """Organizations on either side (the firm; the capability's institute or the expert's affiliation)."""
        ids = {self.need.organization_id} if self.need is not None else set()
        if self.capability is not None:
            ids.add(self.capability.organization_id)
        if self.expert is not None:
            ids.add(self.expert.affiliation_id)
        ids.discard(None)
        return ids

    def is_on_side(self, user, side: str) -> bool:
        if not getattr(user, "is_authenticated", False):
            return False
        if side == PairingSide.NEED:
            return self.need is not None and self.need.is_owned_by(user)
        if side == PairingSide.CAPABILITY:
            if user.id in self.capability_side_user_ids:
                return True
            return self.capability is not None and self.capability.is_owned_by(user)
        return False

    def sides_of(self, user) -> list[str]:
        return [s.value for s in PairingSide if self.is_on_side(user, s.value)]

    def is_party(self, user) -> bool:
        return bool(self.sides_of(user))

    def in_coordinator_scope(self, user) -> bool:
        """A coordinator of the need's hub city (or an unscoped one), or an admin."""
        return coordinator_scope_of(user).covers(self.need.hub_city if self.need is not None else None)

    def can_view(self, user) -> bool:
        return self.is_party(user) or self.in_coordinator_scope(user)

    def can_respond(self, user, side: str) -> bool:
        return (self.state in (PairingState.SUGGESTED, PairingState.PROPOSED)
                and self.is_on_side(user, side) and self.response_of(side) is None)

    def can_withdraw(self, user) -> bool:
        """Whoever proposed it, or a coordinator in scope, may take back a pairing not docked yet."""
        if self.state not in UNDOCKED_OPEN:
            return False
        return bool(getattr(user, "is_authenticated", False)) and (
            self.proposed_by_id == user.id or self.in_coordinator_scope(user))

    def can_judge(self, user) -> bool:
        """Coordinators in scope (or admins) who belong to neither side."""
        if not self.in_coordinator_scope(user) or self.is_party(user):
            return False
        return not (user.organization_ids & self.side_organization_ids)

    def can_schedule(self, user) -> bool:
        return self.in_coordinator_scope(user) or self.is_party(user)

    def can_record_outcome(self, user) -> bool:
        return self.in_coordinator_scope(user) or self.is_party(user)

    @property
    def waiting_since(self) -> datetime:
        return self.updated_at or self.created_at


class ConflictOfInterest(db.Model):
    """A declared conflict: the expert must not be paired with needs of this organization."""

    __tablename__ = "conflicts_of_interest"
    __table_args__ = (UniqueConstraint("expert_id", "organization_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("expert_profiles.id", ondelete="CASCADE"), nullable=False,
                                           index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                                 nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class PairingResponse(db.Model):
    """One side's answer to a pairing: interest (with a message) or a decline with a structured reason."""

    __tablename__ = "pairing_responses"
    __table_args__ = (
        UniqueConstraint("pairing_id", "side"),
        CheckConstraint(f"side IN {sql_in(PairingSide)}", name="side_known"),
        CheckConstraint("decision IN ('interested', 'declined')", name="decision_known"),
        CheckConstraint(f"decision <> 'declined' OR (reason IS NOT NULL AND reason IN {sql_in(DeclineReason)})",
                        name="decline_has_reason"),
        CheckConstraint("reason <> 'other' OR (message IS NOT NULL AND length(message) > 0)",
                        name="other_reason_explained"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairings.id", ondelete="CASCADE"), nullable=False)
    side: Mapped[str] = mapped_column(String(12), nullable=False)
    decision: Mapped[str] = mapped_column(String(12), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(20))
    message: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    pairing: Mapped[Pairing] = relationship(back_populates="responses")
    user = relationship("User")


class NeedDismissal(db.Model):
    """An expert (any user shown suggested needs) marked a suggested need "not for me": it is never suggested to
    them again (page or digest) until they undo it, and it counts against their capabilities for that need and
    needs like it (``feedback.py``). One row per user × need."""

    __tablename__ = "need_dismissals"
    __table_args__ = (
        UniqueConstraint("user_id", "need_id"),
        CheckConstraint(f"reason IS NULL OR reason IN {sql_in(DismissReason)}", name="reason_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"), nullable=False, index=True)
    reason: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    need = relationship("Need")
