"""Needs (技术需求) and capabilities (科技成果/专家能力/共享仪器与平台).

Both share one workflow: draft → submitted → published | returned (reason) → closed, with soft delete.
The rules that can be stated on a single row are CHECK constraints, so no code path can store an
inconsistent listing; transitions themselves live in ``operations``.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from ..core.enums import (CapabilityKind, HubCity, Industry, Language, ListingStatus,
                          Visibility, sql_in)
from ..core.scope import coordinator_scope_of
from ..core.time import UTCDateTime, utcnow
from ..extensions import db


def _workflow_constraints() -> tuple:
    return (
        CheckConstraint(f"status IN {sql_in(ListingStatus)}", name="status_known"),
        CheckConstraint(f"language IN {sql_in(Language)}", name="language_known"),
        CheckConstraint(f"hub_city IS NULL OR hub_city IN {sql_in(HubCity)}", name="hub_city_known"),
        CheckConstraint("status <> 'returned' OR (return_reason IS NOT NULL AND length(return_reason) > 0)",
                        name="returned_has_reason"),
        CheckConstraint("status NOT IN ('submitted', 'published') OR submitted_at IS NOT NULL",
                        name="submitted_has_time"),
        CheckConstraint("status <> 'published' OR (published_at IS NOT NULL AND reviewed_by_id IS NOT NULL)",
                        name="published_is_reviewed"),
        CheckConstraint("status <> 'closed' OR closed_at IS NOT NULL", name="closed_has_time"),
        CheckConstraint("length(title) BETWEEN 4 AND 200", name="title_length"),
    )


class ListingMixin:
    """Columns and helpers common to needs and capabilities."""

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    hub_city: Mapped[str | None] = mapped_column(String(20), index=True)
    region: Mapped[str | None] = mapped_column(String(100))
    #: cooperation mode codes (CoopMode)
    coop_modes: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    language: Mapped[str] = mapped_column(String(8), default="zh", nullable=False)
    status: Mapped[str] = mapped_column(String(12), default=ListingStatus.DRAFT.value, nullable=False,
                                        index=True)
    return_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    seed_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    #: optimistic lock: two moderators acting on the same listing cannot both win
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr
    def organization_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("organizations.id"), index=True)

    @declared_attr
    def created_by_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("users.id"), index=True)

    @declared_attr
    def reviewed_by_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("users.id"))

    @declared_attr
    def organization(cls):
        return relationship("Organization", lazy="joined")

    @declared_attr
    def created_by(cls):
        return relationship("User", foreign_keys=[cls.created_by_id])

    @declared_attr.directive
    def __mapper_args__(cls):
        return {"version_id_col": cls.version}

    kind_name = "listing"

    # state ------------------------------------------------------------------------
    @property
    def is_published(self) -> bool:
        return self.status == ListingStatus.PUBLISHED and self.deleted_at is None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def is_editable_state(self) -> bool:
        return self.status in (ListingStatus.DRAFT, ListingStatus.RETURNED, ListingStatus.PUBLISHED)

    # permissions ------------------------------------------------------------------
    def is_owned_by(self, user) -> bool:
        if not getattr(user, "is_authenticated", False):
            return False
        if self.created_by_id == user.id:
            return True
        return self.organization_id is not None and self.organization_id in user.organization_ids

    def can_view(self, user) -> bool:
        if self.is_deleted:
            return bool(getattr(user, "is_authenticated", False) and user.is_admin)
        if self.is_owned_by(user):
            return True
        if getattr(user, "is_authenticated", False) and user.is_coordinator:
            # published listings serve docking across hub cities; work in progress only where they moderate
            return self.is_published or self.can_moderate(user)
        return self.is_published and self._publicly_visible()

    def _publicly_visible(self) -> bool:
        return True

    def can_view_contact(self, user) -> bool:
        if self.is_owned_by(user):
            return True
        return bool(getattr(user, "is_authenticated", False) and user.is_coordinator) and self.can_view(user)

    def manages(self, user) -> bool:
        """Who edits, submits, closes and deletes it as its owner (see ``is_owned_by``)."""
        return self.is_owned_by(user)

    def can_edit(self, user) -> bool:
        return not self.is_deleted and self.manages(user) and self.status != ListingStatus.CLOSED

    def can_submit(self, user) -> bool:
        return self.can_edit(user) and self.status in (ListingStatus.DRAFT, ListingStatus.RETURNED)

    def can_close(self, user) -> bool:
        # a coordinator closes listings where they moderate: their hub cities (unscoped ones and admins anywhere)
        return self.can_edit(user) or (
            not self.is_deleted and self.status != ListingStatus.CLOSED and self.can_moderate(user))

    def can_delete(self, user) -> bool:
        return not self.is_deleted and (self.manages(user) or
                                        bool(getattr(user, "is_authenticated", False) and user.is_admin))

    def can_moderate(self, user) -> bool:
        return coordinator_scope_of(user).covers(self.hub_city)

    # matching ---------------------------------------------------------------------
    def matching_text(self) -> str:
        raise NotImplementedError


class Need(ListingMixin, db.Model):
    __tablename__ = "needs"
    __table_args__ = _workflow_constraints() + (
        CheckConstraint(f"industry IN {sql_in(Industry)}", name="industry_known"),
        CheckConstraint(f"visibility IN {sql_in(Visibility)}", name="visibility_known"),
        CheckConstraint("budget_min IS NULL OR budget_min >= 0", name="budget_min_positive"),
        CheckConstraint("budget_max IS NULL OR budget_min IS NULL OR budget_max >= budget_min",
                        name="budget_range_ordered"),
        CheckConstraint("status = 'draft' OR organization_id IS NOT NULL", name="submitted_need_has_org"),
    )
    kind_name = "need"

    industry: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    background: Mapped[str] = mapped_column(Text, default="", nullable=False)
    problems: Mapped[str] = mapped_column(Text, default="", nullable=False)
    targets: Mapped[str] = mapped_column(Text, default="", nullable=False)
    #: budget in 万元 (10k CNY)
    budget_min: Mapped[int | None]
    budget_max: Mapped[int | None]
    deadline: Mapped[date | None] = mapped_column(Date)
    visibility: Mapped[str] = mapped_column(String(16), default=Visibility.PUBLIC.value, nullable=False)
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    #: when the firm and the hub city's coordinators were told that a strong match was published for this
    #: need, which had none before (``suggestions.alerts``): set once, so they are told once
    strong_match_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def _publicly_visible(self) -> bool:
        return self.visibility == Visibility.PUBLIC

    def matching_text(self) -> str:
        return "\n".join(p for p in (self.title, self.problems, self.targets, self.background) if p)

    def __repr__(self) -> str:
        return f"<Need {self.id} {self.status} {self.title!r}>"


class Capability(ListingMixin, db.Model):
    __tablename__ = "capabilities"
    __table_args__ = _workflow_constraints() + (
        CheckConstraint(f"kind IN {sql_in(CapabilityKind)}", name="kind_known"),
        CheckConstraint(f"field IN {sql_in(Industry)}", name="field_known"),
        CheckConstraint("trl IS NULL OR trl BETWEEN 1 AND 9", name="trl_range"),
    )
    kind_name = "capability"

    kind: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    summary: Mapped[str] = mapped_column(Text, default="", nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    field: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    trl: Mapped[int | None]
    #: patent numbers and other IP, free text
    ip: Mapped[str | None] = mapped_column(Text)
    expert_id: Mapped[int | None] = mapped_column(ForeignKey("expert_profiles.id"), index=True)

    expert = relationship("ExpertProfile", lazy="joined")

    def can_view_contact(self, user) -> bool:
        # Capabilities are meant to be found: their owner is shown to every signed-in user.
        return bool(getattr(user, "is_authenticated", False))

    def manages(self, user) -> bool:
        """An institute's members share its listings, but an expert's own capability is theirs: a colleague
        may not edit, close or delete it; the one who posted it and the organization's managers may."""
        if not self.is_owned_by(user):
            return False
        if self.created_by_id == user.id or self.expert is None or self.expert.user_id == user.id:
            return True
        return any(m.organization_id == self.organization_id and m.is_manager for m in user.memberships)

    def matching_text(self) -> str:
        return "\n".join(p for p in (self.title, self.summary, self.description) if p)

    def __repr__(self) -> str:
        return f"<Capability {self.id} {self.status} {self.title!r}>"
