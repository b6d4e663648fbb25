"""Vouchers and their ledger.

Every movement is a VoucherEntry: ``issue`` (+amount), ``redeem`` / ``expire`` / ``revoke`` (−amount). The
voucher's ``balance`` column is the running sum of its entries, updated in the same transaction as the entry
and guarded by CHECK (0 ≤ balance ≤ amount), so no code path can leave a negative balance. A voucher is
redeemed at most once against a given pairing (UNIQUE voucher_id, pairing_id).
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import (Boolean, CheckConstraint, Date, ForeignKey, Index, Numeric, String, Text,
                        UniqueConstraint, case, func, select, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.audit_labels import register_labels
from ..core.enums import HubCity, LabelledEnum, sql_in
from ..core.scope import coordinator_scope_of
from ..core.time import UTCDateTime, programme_today, utcnow
from ..extensions import db


class VoucherStatus(LabelledEnum):
    ACTIVE = "active", _l("Active")
    EXHAUSTED = "exhausted", _l("Used up")
    EXPIRED = "expired", _l("Expired")
    REVOKED = "revoked", _l("Revoked")


class EntryKind(LabelledEnum):
    ISSUE = "issue", _l("Issued")
    REDEEM = "redeem", _l("Redeemed")
    EXPIRE = "expire", _l("Expired")
    REVOKE = "revoke", _l("Revoked")


register_labels(state_actions={"voucher": EntryKind}, target_states={"vouchers": VoucherStatus},
                actions={  # voucher.expire / voucher.revoke are composed
                    "voucher.issue": _l("Voucher issued"),
                    "voucher.redeem": _l("Voucher redeemed"),
                },
                kinds={"voucher": _l("Voucher")}, targets={"vouchers": _l("Voucher")},
                categories=[("voucher.", _l("Innovation vouchers"))])

#: what the ledger says of a system movement (no actor), by kind, in the reader's language
SYSTEM_ENTRY_NOTES = {
    EntryKind.EXPIRE.value: _l("Closed automatically after the expiry date"),
}


class Voucher(db.Model):
    __tablename__ = "vouchers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("balance >= 0 AND balance <= amount", name="balance_in_range"),
        CheckConstraint(f"hub_city IN {sql_in(HubCity)}", name="hub_city_known"),
        CheckConstraint(f"status IN {sql_in(VoucherStatus)}", name="status_known"),
        CheckConstraint("status <> 'active' OR balance > 0", name="active_has_balance"),
        CheckConstraint("status NOT IN ('expired', 'revoked', 'exhausted') OR balance = 0",
                        name="closed_is_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: short human-readable serial: city prefix, issue day, random hex, e.g. CQ-20260101-3F9A0C51D2
    code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), nullable=False, index=True)
    #: the hub city that issued (and funds) the voucher
    hub_city: Mapped[str] = mapped_column(String(20), nullable=False, index=True)
    #: face value in CNY
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    #: remaining balance in CNY = sum of the ledger entries (kept in step, checked by tests)
    balance: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    expires_on: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default=VoucherStatus.ACTIVE.value)
    note: Mapped[str | None] = mapped_column(Text)
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    organization = relationship("Organization", lazy="joined")
    issued_by = relationship("User")
    entries: Mapped[list["VoucherEntry"]] = relationship(back_populates="voucher",
                                                         order_by="VoucherEntry.id")

    def can_view(self, user) -> bool:
        if not getattr(user, "is_authenticated", False):
            return False
        # coordinators see the vouchers of the hub cities they issue for, as on the voucher index
        return self.organization_id in user.organization_ids or coordinator_scope_of(user).covers(self.hub_city)

    def can_redeem(self, user) -> bool:
        return getattr(user, "is_authenticated", False) and self.organization_id in user.organization_ids

    @property
    def is_past_expiry(self) -> bool:
        """Past its last day (Beijing time) though ``expire_due`` may not have run yet."""
        return self.expires_on < programme_today()

    @property
    def display_status(self) -> str:
        """The status to show: an active voucher past its last day is expired even before ``expire_due``
        has closed its ledger."""
        if self.status == VoucherStatus.ACTIVE.value and self.is_past_expiry:
            return VoucherStatus.EXPIRED.value
        return self.status

    def can_administer(self, user) -> bool:
        return coordinator_scope_of(user).covers(self.hub_city)

    def ledger_balance(self) -> Decimal:
        """The balance recomputed from the ledger (the column must always equal it)."""
        return db.session.scalar(select(func.coalesce(func.sum(signed_amount()), 0))
                                 .where(VoucherEntry.voucher_id == self.id))


def issuing_cities(user) -> list[str]:
    """The hub cities whose vouchers ``user`` issues: those of their coordinator scope."""
    scope = coordinator_scope_of(user)
    return [c for c in HubCity.values() if scope.covers(c)]


class VoucherEntry(db.Model):
    __tablename__ = "voucher_entries"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"kind IN {sql_in(EntryKind)}", name="kind_known"),
        CheckConstraint("(kind = 'redeem') = (pairing_id IS NOT NULL)", name="redeem_has_pairing"),
        # no double redemption of the same voucher on the same pairing
        UniqueConstraint("voucher_id", "pairing_id"),
        # one issue entry per voucher
        Index("uq_voucher_entries_issue", "voucher_id", unique=True,
              sqlite_where=text("kind = 'issue'"), postgresql_where=text("kind = 'issue'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    #: always positive; the sign follows from the kind (issue +, everything else −)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    pairing_id: Mapped[int | None] = mapped_column(ForeignKey("pairings.id"), index=True)
    #: redemption across regions: the voucher's city differs from the capability's
    cross_region: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    provider_hub_city: Mapped[str | None] = mapped_column(String(20))
    balance_after: Mapped[Decimal] = mapped_column(Numeric(14, 2), nullable=False)
    #: null for system movements (scheduled expiry)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    voucher: Mapped[Voucher] = relationship(back_populates="entries")
    pairing = relationship("Pairing")
    actor = relationship("User")

    @property
    def signed(self) -> Decimal:
        return self.amount if self.kind == EntryKind.ISSUE else -self.amount

    @property
    def display_note(self):
        """The note to show: a person's own words (e.g. a reason for revoking) as written; for a system
        movement a translated label by kind, never its stored note (older expiry entries hold the English
        word "expired")."""
        if self.actor_id is None:
            return SYSTEM_ENTRY_NOTES.get(self.kind)
        return self.note


def signed_amount():
    """SQL expression: the entry's amount with the sign of its kind."""
    return case((VoucherEntry.kind == EntryKind.ISSUE.value, VoucherEntry.amount), else_=-VoucherEntry.amount)
