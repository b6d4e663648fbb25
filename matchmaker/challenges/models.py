"""揭榜挂帅 challenges: a published need plus a reward, deadline and terms; bids from experts or teams.

Challenge states: open → shortlisting → awarded | cancelled (open → cancelled too).
Bid states: submitted → shortlisted → won | not_selected (submitted → not_selected when the challenge closes).
One winning bid per challenge is a partial unique index; one bid per bidder per challenge a UNIQUE constraint.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.audit_labels import register_labels
from ..core.enums import HubCity, LabelledEnum, sql_in
from ..core.scope import coordinator_scope_of
from ..core.time import UTCDateTime, utcnow
from ..extensions import db


class ChallengeStatus(LabelledEnum):
    OPEN = "open", _l("Open for bids")
    SHORTLISTING = "shortlisting", _l("Shortlisting")
    AWARDED = "awarded", _l("Awarded")
    CANCELLED = "cancelled", _l("Cancelled")


class BidStatus(LabelledEnum):
    SUBMITTED = "submitted", _l("Submitted")
    SHORTLISTED = "shortlisted", _l("Shortlisted")
    WON = "won", _l("Winner")
    NOT_SELECTED = "not_selected", _l("Not selected")


register_labels(state_actions={"challenge": ChallengeStatus},
                target_states={"challenges": ChallengeStatus, "challenge_bids": BidStatus},
                actions={  # state changes are composed: challenge.<state>
                    "challenge.publish": _l("Challenge published"),
                    "challenge.invite": _l("Experts invited to bid"),
                    "bid.submit": _l("Bid submitted"),
                    "bid.edit": _l("Bid edited"),
                    "bid.shortlist": _l("Bid shortlisted"),
                    "bid.won": _l("Bid won"),
                    "bid.not_selected": _l("Bid not selected"),
                },
                kinds={"challenge": _l("Challenge")},
                targets={"challenges": _l("Challenge"), "challenge_bids": _l("Bid")},
                categories=[("challenge.", _l("Open challenges")), ("bid.", _l("Bids"))])


class Challenge(db.Model):
    __tablename__ = "challenges"
    __table_args__ = (
        CheckConstraint(f"status IN {sql_in(ChallengeStatus)}", name="status_known"),
        CheckConstraint("publisher IN ('firm', 'hub_city')", name="publisher_known"),
        CheckConstraint("publisher <> 'firm' OR organization_id IS NOT NULL", name="firm_publisher_has_org"),
        CheckConstraint(f"publisher <> 'hub_city' OR (hub_city IS NOT NULL AND hub_city IN {sql_in(HubCity)})",
                        name="city_publisher_has_city"),
        CheckConstraint("reward > 0", name="reward_positive"),
        CheckConstraint("length(terms) > 0", name="terms_not_empty"),
        CheckConstraint("status <> 'awarded' OR awarded_at IS NOT NULL", name="awarded_has_time"),
        CheckConstraint("status <> 'cancelled' OR (closed_at IS NOT NULL AND close_reason IS NOT NULL)",
                        name="cancelled_has_reason"),
        # one live (open / shortlisting) challenge per need
        Index("uq_challenges_live_need", "need_id", unique=True,
              sqlite_where=text("status IN ('open', 'shortlisting')"),
              postgresql_where=text("status IN ('open', 'shortlisting')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id"), nullable=False, index=True)
    #: 'firm' (the need's own enterprise) or 'hub_city' (a coordinator, on behalf of the city)
    publisher: Mapped[str] = mapped_column(String(10), nullable=False)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    hub_city: Mapped[str | None] = mapped_column(String(20), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    #: reward in CNY
    reward: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    terms: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=ChallengeStatus.OPEN.value, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    awarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_reason: Mapped[str | None] = mapped_column(Text)
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    __mapper_args__ = {"version_id_col": version}

    need = relationship("Need", lazy="joined")
    organization = relationship("Organization")
    created_by = relationship("User")
    bids: Mapped[list["Bid"]] = relationship(back_populates="challenge", order_by="Bid.created_at")

    @property
    def is_open_for_bids(self) -> bool:
        return self.status == ChallengeStatus.OPEN and utcnow() < self.deadline

    @property
    def winning_bid(self) -> "Bid | None":
        return next((b for b in self.bids if b.status == BidStatus.WON), None)

    def can_manage(self, user) -> bool:
        """The owning firm, or a coordinator whose scope covers the hub city (admins always): for a hub-city
        challenge the city that published it, which stays in charge if the firm later moves the need; for a
        firm's challenge the need's hub city."""
        if not getattr(user, "is_authenticated", False):
            return False
        if self.need.is_owned_by(user):
            return True
        if self.publisher == "hub_city":
            return coordinator_scope_of(user).covers(self.hub_city)
        return self.need.can_moderate(user)

    def can_view(self, user) -> bool:
        """Whoever may see the need or manage the challenge; besides, as long as the need is neither deleted
        nor hidden from the public, whoever bid on it and, while it is open, every eligible bidder (the
        experts it invites): an edit sends a published need back to review, and the call for bids must not
        vanish meanwhile."""
        if self.can_manage(user) or self.need.can_view(user):
            return True
        from ..core.enums import Visibility
        if self.need.is_deleted or self.need.visibility != Visibility.PUBLIC:
            return False
        if self.status == ChallengeStatus.OPEN and self.can_bid(user):
            return True
        return self.has_bid_from(user)

    def has_bid_from(self, user) -> bool:
        if not getattr(user, "is_authenticated", False):
            return False
        return db.session.scalar(db.select(Bid.id).where(Bid.challenge_id == self.id,
                                                         Bid.bidder_id == user.id)) is not None

    def can_bid(self, user) -> bool:
        """Experts (and institute members) outside the need's own organization."""
        from ..core.enums import OrgKind, Role
        if not getattr(user, "is_authenticated", False) or self.need.is_owned_by(user):
            return False
        if self.need.organization_id is not None and self.need.organization_id in user.organization_ids:
            return False
        return user.has_role(Role.EXPERT) or any(
            m.organization.kind in (OrgKind.UNIVERSITY, OrgKind.INSTITUTE) for m in user.memberships)


class Bid(db.Model):
    __tablename__ = "challenge_bids"
    __table_args__ = (
        UniqueConstraint("challenge_id", "bidder_id"),
        CheckConstraint(f"status IN {sql_in(BidStatus)}", name="status_known"),
        CheckConstraint("budget >= 0", name="budget_not_negative"),
        CheckConstraint("timeline_months BETWEEN 1 AND 120", name="timeline_range"),
        CheckConstraint("length(approach) > 0", name="approach_not_empty"),
        # exactly one winner at most per challenge
        Index("uq_challenge_bids_winner", "challenge_id", unique=True,
              sqlite_where=text("status = 'won'"), postgresql_where=text("status = 'won'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"), nullable=False,
                                              index=True)
    bidder_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    #: the bidder's organization at bid time (team's institute), if any
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    approach: Mapped[str] = mapped_column(Text, nullable=False)
    team_members: Mapped[str] = mapped_column(Text, default="", nullable=False)
    #: budget in CNY
    budget: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    timeline_months: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=BidStatus.SUBMITTED.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)

    challenge: Mapped[Challenge] = relationship(back_populates="bids")
    bidder = relationship("User")
    organization = relationship("Organization")
