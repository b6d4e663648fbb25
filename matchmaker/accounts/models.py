"""Account models. Roles are global (a user may hold several); organization ties are memberships."""
from __future__ import annotations

import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String, Text, UniqueConstraint, JSON
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.enums import HubCity, OrgKind, Role, sql_in
from ..core.scope import CoordinatorScope, scope_of_roles
from ..core.time import UTCDateTime, utcnow
from ..extensions import db

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile


class Organization(db.Model):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint(f"kind IN {sql_in(OrgKind)}", name="kind_known"),
        CheckConstraint(f"hub_city IS NULL OR hub_city IN {sql_in(HubCity)}", name="hub_city_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    name_en: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    hub_city: Mapped[str | None] = mapped_column(String(20), index=True)
    region: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    #: stable key of seeded rows, so `matchmaker seed` can run twice without duplicates
    seed_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    memberships: Mapped[list["Membership"]] = relationship(back_populates="organization",
                                                           cascade="all, delete-orphan")

    def can_edit(self, user) -> bool:
        if not user.is_authenticated:
            return False
        return user.has_role(Role.ADMIN) or any(
            m.organization_id == self.id and m.is_manager for m in user.memberships)

    def __repr__(self) -> str:
        return f"<Organization {self.id} {self.name}>"


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("locale IN ('zh_CN', 'en')", name="locale_known"),
        CheckConstraint("length(email) >= 3", name="email_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN", nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    #: rotated at login, logout and password change; the session holds it, so rotation ends sessions server-side
    session_token: Mapped[str] = mapped_column(String(64), unique=True, nullable=False,
                                               default=lambda: secrets.token_urlsafe(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seed_key: Mapped[str | None] = mapped_column(String(40), unique=True)

    roles: Mapped[list["UserRole"]] = relationship(back_populates="user", cascade="all, delete-orphan",
                                                   lazy="selectin")
    memberships: Mapped[list["Membership"]] = relationship(back_populates="user",
                                                           cascade="all, delete-orphan", lazy="selectin")
    expert_profile: Mapped["ExpertProfile | None"] = relationship(back_populates="user", uselist=False)

    # flask-login ---------------------------------------------------------------
    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.active

    def get_id(self) -> str:
        return self.session_token

    def rotate_session_token(self) -> None:
        self.session_token = secrets.token_urlsafe(32)

    # passwords -----------------------------------------------------------------
    @staticmethod
    def hash_password(password: str) -> str:
        return _hasher.hash(password)

    def set_password(self, password: str) -> None:
        self.password_hash = self.hash_password(password)
        self.rotate_session_token()

    def check_password(self, password: str) -> bool:
        try:
            ok = _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        if ok and _hasher.check_needs_rehash(self.password_hash):
            self.password_hash = _hasher.hash(password)
        return ok

    # roles and organizations ---------------------------------------------------
    @property
    def role_codes(self) -> set[str]:
        return {r.role for r in self.roles}

    def has_role(self, *roles: Role | str) -> bool:
        return bool(self.role_codes & {str(r) for r in roles})

    def add_role(self, role: Role | str) -> None:
        if not self.has_role(role):
            self.roles.append(UserRole(role=str(role)))

    @property
    def is_coordinator(self) -> bool:
        return self.has_role(Role.COORDINATOR, Role.ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.has_role(Role.ADMIN)

    @property
    def coordinator_scope(self) -> CoordinatorScope:
        """The hub cities this person coordinates (ALL for admins); see core.scope."""
        return scope_of_roles(self.roles)

    @property
    def organization_ids(self) -> set[int]:
        return {m.organization_id for m in self.memberships}

    @property
    def primary_organization(self) -> Organization | None:
        return self.memberships[0].organization if self.memberships else None

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class UserRole(db.Model):
    __tablename__ = "user_roles"
    __table_args__ = (CheckConstraint(f"role IN {sql_in(Role)}", name="role_known"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    #: coordinators may be scoped to one hub city; null means all
    hub_city: Mapped[str | None] = mapped_column(String(20))

    user: Mapped[User] = relationship(back_populates="roles")


class Membership(db.Model):
    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                                 primary_key=True, index=True)
    is_manager: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    user: Mapped[User] = relationship(back_populates="memberships")
    organization: Mapped[Organization] = relationship(back_populates="memberships", lazy="joined")


class MembershipRequest(db.Model):
    """Someone asks to join an existing organization. Until a manager of it (or an admin) approves, they are
    not a member: they see and do nothing on its behalf. One request per person and organization."""

    __tablename__ = "membership_requests"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'declined')", name="known_status"),
        CheckConstraint("(status = 'pending') = (decided_at IS NULL)", name="decided_when_not_pending"),
        UniqueConstraint("user_id", "organization_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                                 nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(10), default="pending", nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    organization: Mapped[Organization] = relationship()
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"


class ExpertProfile(db.Model):
    __tablename__ = "expert_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True,
                                         nullable=False)
    title: Mapped[str | None] = mapped_column(String(100))
    affiliation_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    #: free-text affiliation when it is not (yet) an organization on the platform
    affiliation_text: Mapped[str | None] = mapped_column(String(200))
    #: industry codes
    fields: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    languages: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    bio: Mapped[str | None] = mapped_column(Text)
    max_active_pairings: Mapped[int] = mapped_column(default=5, nullable=False)
    #: when the weekly digest of suggested needs was last sent (``matchmaker digest``)
    last_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="expert_profile")
    affiliation: Mapped[Organization | None] = relationship()

    @property
    def affiliation_name(self) -> str | None:
        return self.affiliation.name if self.affiliation is not None else self.affiliation_text

    __table_args__ = (CheckConstraint("max_active_pairings BETWEEN 0 AND 100", name="capacity_range"),)
