"""Voucher ledger operations. Each movement (entry + balance + audit) happens in the caller's single
transaction; functions flush, never commit.

Concurrency: the voucher row (and the pairing row, for the per-contract cap) is locked with SELECT … FOR
UPDATE on PostgreSQL; SQLite serialises writers (the first write takes the database lock). The balance is
re-read after locking and written with a compare-and-set on the old value, and a CHECK keeps it ≥ 0, so two
concurrent redemptions can never overdraw a voucher.
"""
from __future__ import annotations

import logging
import secrets
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..core import audit
from ..core.enums import HubCity
from ..core.scope import coordinator_scope_of
from ..core.time import programme_today
from ..core.workflow import RACE_ERRORS, WorkflowError, lock_row
from ..extensions import db
from ..pairings.models import Pairing, PairingState
from .models import EntryKind, Voucher, VoucherEntry, VoucherStatus

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
#: a distinct prefix per hub city (the first two letters would give Chongqing and Chengdu both "CH")
CODE_PREFIXES = {HubCity.CHONGQING.value: "CQ", HubCity.CHENGDU.value: "CD", HubCity.DEYANG.value: "DY",
                 HubCity.MEISHAN.value: "MS", HubCity.ZIYANG.value: "ZY", HubCity.QINGDAO.value: "QD"}
#: random bytes in a code (hex: twice as many characters), and how many draws a clash may cost
CODE_RANDOM_BYTES = 5
CODE_ATTEMPTS = 5


def _money(value) -> Decimal:
    """The amount in CNY to the fen; more decimals are refused, never rounded away."""
    if value is None:
        raise WorkflowError(_("Give an amount."), 400)
    try:
        exact = Decimal(str(value) if isinstance(value, float) else value)
        amount = exact.quantize(CENT)
    except (InvalidOperation, ValueError, TypeError):  # not a number, or too many digits to keep cents
        raise WorkflowError(_("The amount is too large."), 400) from None
    if amount != exact:
        raise WorkflowError(_("Give the amount in CNY with at most two decimals (to the fen)."), 400)
    if amount <= 0:  # quantize raised for NaN and infinity
        raise WorkflowError(_("The amount must be more than zero."), 400)
    return amount


def issue_voucher(user, organization, *, amount, expires_on: date, hub_city: str, note: str | None = None
                  ) -> Voucher:
    """A hub city (its coordinator, or an admin) issues a voucher to an enterprise."""
    if hub_city not in HubCity.values():
        raise WorkflowError(_("Unknown hub city."), 400)
    if not coordinator_scope_of(user).covers(hub_city):
        raise WorkflowError(_("Only coordinators of this hub city (or administrators) may issue its vouchers."),
                            403)
    if organization is None or organization.kind != "enterprise":
        raise WorkflowError(_("Vouchers are issued to enterprises only."), 400)
    amount = _money(amount)
    if expires_on is None or expires_on < programme_today():
        raise WorkflowError(_("The expiry date cannot be in the past."), 400)
    voucher = _insert_with_new_code(hub_city, lambda code: Voucher(
        code=code, organization_id=organization.id, hub_city=hub_city, amount=amount, balance=amount,
        expires_on=expires_on, status=VoucherStatus.ACTIVE.value, note=note, issued_by_id=user.id))
    db.session.add(VoucherEntry(voucher_id=voucher.id, kind=EntryKind.ISSUE.value, amount=amount,
                                balance_after=amount, actor_id=user.id, note=note))
    audit.record("voucher.issue", actor=user, target=voucher, to_state=VoucherStatus.ACTIVE,
                 comment=f"{amount} CNY to organization {organization.id}")
    db.session.flush()
    from ..notifications.operations import notify
    notify([u for u in _managers_of(organization) if u.id != user.id], "voucher.issue",
           _l("Innovation voucher issued to %(org)s", org=organization.name),
           _l("%(city)s issued voucher %(code)s of %(amount)s CNY, valid until %(day)s.",
              city=HubCity.label_of(hub_city), code=voucher.code, amount=amount, day=expires_on.isoformat()),
           link=f"/vouchers/{voucher.id}")
    return voucher


def _managers_of(organization) -> list:
    """The organization's managers: who hears that a voucher was issued to it."""
    from ..accounts.models import Membership, User
    return list(db.session.scalars(select(User).join(Membership, Membership.user_id == User.id).where(
        Membership.organization_id == organization.id, Membership.is_manager.is_(True)).order_by(User.id)))


def new_code(hub_city: str) -> str:
    """e.g. CQ-20260101-3F9A0C51D2: the issuing city, the day, and random hex."""
    return (f"{CODE_PREFIXES[hub_city]}-{programme_today():%Y%m%d}-"
            f"{secrets.token_hex(CODE_RANDOM_BYTES).upper()}")


def _insert_with_new_code(hub_city: str, build) -> Voucher:
    """Insert ``build(code)`` under a fresh random code. Each try runs in a savepoint: a code already taken
    (UNIQUE) undoes only that try, and another code is drawn."""
    for _attempt in range(CODE_ATTEMPTS):
        voucher = build(new_code(hub_city))
        try:
            with db.session.begin_nested():
                db.session.add(voucher)
                db.session.flush()
        except IntegrityError:
            if db.session.scalar(select(Voucher.id).where(Voucher.code == voucher.code)) is None:
                raise  # another constraint than the code's
            log.warning("voucher code %s was taken; drawing another", voucher.code)
            continue
        return voucher
    raise WorkflowError(_("No free voucher code could be drawn. Nothing was issued; please try again."))


def _lock_voucher(voucher_id: int) -> Voucher:
    voucher = lock_row(Voucher, voucher_id)
    if voucher is None:
        raise WorkflowError(_("No such voucher."), 404)
    return voucher


def _set_balance(voucher: Voucher, old: Decimal, new: Decimal, status: str) -> None:
    """Compare-and-set: refuses if the balance moved since it was read (belt and braces over the lock)."""
    result = db.session.execute(update(Voucher.__table__).where(
        Voucher.__table__.c.id == voucher.id, Voucher.__table__.c.balance == old,
        Voucher.__table__.c.status == VoucherStatus.ACTIVE.value).values(balance=new, status=status))
    if result.rowcount != 1:
        raise WorkflowError(_("The voucher's balance changed while you were redeeming it. Nothing was "
                              "redeemed; please try again."))
    db.session.refresh(voucher)


def redeemed_on_pairing(pairing_id: int) -> Decimal:
    return db.session.scalar(select(func.coalesce(func.sum(VoucherEntry.amount), 0)).where(
        VoucherEntry.pairing_id == pairing_id, VoucherEntry.kind == EntryKind.REDEEM.value)) or Decimal(0)


def provider_hub_city(pairing: Pairing) -> str | None:
    if pairing.capability is not None and pairing.capability.hub_city:
        return pairing.capability.hub_city
    expert = pairing.expert
    if expert is not None and expert.affiliation is not None:
        return expert.affiliation.hub_city
    return None


def eligible_pairings(organization_ids) -> list[Pairing]:
    """Pairings of the organization's needs with a signed contract: what vouchers can be redeemed on."""
    from ..listings.models import Need
    ids = list(organization_ids)
    if not ids:
        return []
    return db.session.scalars(select(Pairing).join(Need, Pairing.need_id == Need.id).where(
        Need.organization_id.in_(ids), Pairing.state == PairingState.CONTRACT_SIGNED.value)
        .order_by(Pairing.id)).unique().all()


def redeem(voucher: Voucher, pairing: Pairing | None, amount, user) -> VoucherEntry:
    """Redeem ``amount`` of the voucher against a signed service contract of the firm's own need."""
    if not voucher.can_redeem(user):
        raise WorkflowError(_("Only members of the enterprise holding this voucher may redeem it."), 403)
    if pairing is None or pairing.need is None or pairing.need.organization_id != voucher.organization_id:
        raise WorkflowError(_("This pairing is not one of your enterprise's needs."), 404)
    amount = _money(amount)
    voucher = _lock_voucher(voucher.id)
    # lock the pairing too: the per-contract cap is shared by every voucher of the firm
    pairing = db.session.execute(select(Pairing).where(Pairing.id == pairing.id).with_for_update(of=Pairing)
                                 .execution_options(populate_existing=True)).unique().scalar_one()
    if voucher.status != VoucherStatus.ACTIVE:
        raise WorkflowError(_("This voucher is %(status)s and cannot be redeemed.",
                              status=VoucherStatus.label_of(voucher.status)))
    if voucher.is_past_expiry:
        raise WorkflowError(_("This voucher expired on %(day)s.", day=voucher.expires_on.isoformat()))
    if pairing.state != PairingState.CONTRACT_SIGNED:
        raise WorkflowError(_("Vouchers can only be redeemed against a pairing with a signed service contract."))
    if amount > voucher.balance:
        raise WorkflowError(_("The amount (%(amount)s CNY) is more than the voucher's remaining balance "
                              "(%(balance)s CNY).", amount=amount, balance=voucher.balance), 400)
    already = db.session.scalar(select(VoucherEntry.id).where(VoucherEntry.voucher_id == voucher.id,
                                                              VoucherEntry.pairing_id == pairing.id))
    if already is not None:
        raise WorkflowError(_("This voucher has already been redeemed against this pairing."))
    room = Decimal(pairing.contract_amount) - redeemed_on_pairing(pairing.id)
    if amount > room:
        raise WorkflowError(_("The amount (%(amount)s CNY) is more than what remains of the contract value "
                              "after earlier redemptions (%(room)s CNY).", amount=amount, room=room), 400)
    old = voucher.balance
    new = old - amount
    _set_balance(voucher, old, new, VoucherStatus.EXHAUSTED.value if new == 0 else VoucherStatus.ACTIVE.value)
    provider_city = provider_hub_city(pairing)
    entry = VoucherEntry(voucher_id=voucher.id, kind=EntryKind.REDEEM.value, amount=amount,
                         pairing_id=pairing.id, provider_hub_city=provider_city,
                         cross_region=bool(provider_city and provider_city != voucher.hub_city),
                         balance_after=new, actor_id=user.id)
    db.session.add(entry)
    db.session.flush()
    audit.record("voucher.redeem", actor=user, target=voucher, from_state=str(old), to_state=str(new),
                 comment=f"pairing {pairing.id}: {amount} CNY" + (" (cross-region)" if entry.cross_region else ""))
    return entry


def _close(voucher: Voucher, user, kind: EntryKind, status: VoucherStatus, note: str | None) -> VoucherEntry:
    voucher = _lock_voucher(voucher.id)
    if voucher.status != VoucherStatus.ACTIVE:
        raise WorkflowError(_("This voucher is %(status)s already.", status=VoucherStatus.label_of(voucher.status)))
    old = voucher.balance
    _set_balance(voucher, old, Decimal("0.00"), status.value)
    entry = VoucherEntry(voucher_id=voucher.id, kind=kind.value, amount=old, balance_after=Decimal("0.00"),
                         actor_id=getattr(user, "id", None), note=note)
    db.session.add(entry)
    db.session.flush()
    audit.record(f"voucher.{kind.value}", actor=user, target=voucher, from_state=VoucherStatus.ACTIVE,
                 to_state=status, comment=note)
    return entry


def revoke(voucher: Voucher, user, reason: str) -> VoucherEntry:
    if not voucher.can_administer(user):
        raise WorkflowError(_("Only coordinators of the issuing hub city (or administrators) may revoke it."), 403)
    if not reason:
        raise WorkflowError(_("Give a reason for revoking."), 400)
    return _close(voucher, user, EntryKind.REVOKE, VoucherStatus.REVOKED, reason)


def expire_due(today: date | None = None) -> int:
    """Expire every active voucher past its expiry date (system action); returns how many expired (one refused
    meanwhile is logged and skipped)."""
    today = today or programme_today()
    ids = db.session.scalars(select(Voucher.id).where(Voucher.status == VoucherStatus.ACTIVE.value,
                                                      Voucher.expires_on < today)).all()
    expired = 0
    for vid in ids:
        # one savepoint per voucher: a voucher refused (e.g. used up or revoked since the list was read)
        # is skipped, the others still expire. System entries carry no note: the page labels them by kind.
        try:
            with db.session.begin_nested():
                _close(db.session.get(Voucher, vid), None, EntryKind.EXPIRE, VoucherStatus.EXPIRED, None)
        except (WorkflowError, *RACE_ERRORS) as exc:
            log.warning("voucher %s not expired: %s", vid, getattr(exc, "reason", exc))
            continue
        expired += 1
    return expired
