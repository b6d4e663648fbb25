"""Dashboard numbers, computed with portable SQL aggregates (medians in Python).

Per hub city of the need (and overall):
* needs posted — needs that have been published (published_at set), not deleted;
* needs docked — posted needs with ≥ 1 pairing in ``DOCKED_STATES`` (approved or later);
* docking rate — docked / posted, against the programme's 80 % target;
* median days from a need's publication to its first approved pairing (``judged_at`` of docked pairings);
* outcomes — pairings per state, and total contract value of signed contracts;
* cross-region dockings — docked pairings whose provider (capability, or the expert's institute) is in
  another hub city than the need;
* vouchers issued / redeemed (CNY) by issuing hub city.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import and_, func, select, true

from ..accounts.models import ExpertProfile, Organization
from ..core.enums import HubCity
from ..extensions import db
from ..listings.models import Capability, Need
from ..pairings.models import DOCKED_STATES, Pairing, PairingState

TARGET_RATE = 0.8
DOCKED = [s.value for s in DOCKED_STATES]
OVERALL = "__all__"


@dataclass
class CityStats:
    hub_city: str | None
    needs_posted: int = 0
    needs_docked: int = 0
    median_days_to_docking: float | None = None
    outcomes: dict = field(default_factory=lambda: {s.value: 0 for s in PairingState})
    contract_value: Decimal = Decimal("0")
    cross_region_dockings: int = 0
    vouchers_issued: Decimal = Decimal("0")
    vouchers_redeemed: Decimal = Decimal("0")

    @property
    def docking_rate(self) -> float | None:
        return self.needs_docked / self.needs_posted if self.needs_posted else None

    @property
    def meets_target(self) -> bool:
        return self.docking_rate is not None and self.docking_rate >= TARGET_RATE


def _city_filter(column, hub_city):
    return true() if hub_city is None else column == hub_city


def compute(hub_city: str | None = None) -> tuple[list[CityStats], CityStats]:
    """Per-city rows (only the given city when ``hub_city``) and the overall totals of those rows."""
    from ..vouchers.models import EntryKind, Voucher, VoucherEntry

    cities: dict[str | None, CityStats] = {}

    def row(city) -> CityStats:
        if city not in cities:
            cities[city] = CityStats(city)
        return cities[city]

    posted = and_(Need.published_at.is_not(None), Need.deleted_at.is_(None))
    for city, n in db.session.execute(select(Need.hub_city, func.count(Need.id)).where(
            posted, _city_filter(Need.hub_city, hub_city)).group_by(Need.hub_city)):
        row(city).needs_posted = n

    # first approval per docked need: min(judged_at) over its docked pairings
    first = (select(Need.id.label("need_id"), Need.hub_city.label("hub_city"),
                    Need.published_at.label("published_at"), func.min(Pairing.judged_at).label("first_at"))
             .join(Pairing, Pairing.need_id == Need.id)
             .where(posted, Pairing.state.in_(DOCKED), _city_filter(Need.hub_city, hub_city))
             .group_by(Need.id, Need.hub_city, Need.published_at))
    days_by_city: dict[str | None, list[float]] = {}
    all_days: list[float] = []
    for _nid, city, published_at, first_at in db.session.execute(first):
        row(city).needs_docked += 1
        if published_at is not None and first_at is not None:
            if isinstance(first_at, str):
                first_at = _parse(first_at)
            elif first_at.tzinfo is None:
                from datetime import timezone
                first_at = first_at.replace(tzinfo=timezone.utc)
            days = max((first_at - published_at).total_seconds() / 86400, 0.0)
            days_by_city.setdefault(city, []).append(days)
            all_days.append(days)
    for city, values in days_by_city.items():
        row(city).median_days_to_docking = statistics.median(values)

    for city, state, n, value in db.session.execute(
            select(Need.hub_city, Pairing.state, func.count(Pairing.id), func.sum(Pairing.contract_amount))
            .join(Need, Pairing.need_id == Need.id)
            .where(posted, _city_filter(Need.hub_city, hub_city)).group_by(Need.hub_city, Pairing.state)):
        r = row(city)
        r.outcomes[state] = r.outcomes.get(state, 0) + n
        if state == PairingState.CONTRACT_SIGNED and value is not None:
            r.contract_value += Decimal(value)

    # provider city: the capability's hub city, else the expert's institute's hub city
    affiliation = db.aliased(Organization)
    provider_city = func.coalesce(Capability.hub_city, affiliation.hub_city)
    for city, n in db.session.execute(
            select(Need.hub_city, func.count(Pairing.id))
            .join(Need, Pairing.need_id == Need.id)
            .outerjoin(Capability, Pairing.capability_id == Capability.id)
            .outerjoin(ExpertProfile, Pairing.expert_id == ExpertProfile.id)
            .outerjoin(affiliation, ExpertProfile.affiliation_id == affiliation.id)
            .where(posted, Pairing.state.in_(DOCKED), Need.hub_city.is_not(None), provider_city.is_not(None),
                   provider_city != Need.hub_city, _city_filter(Need.hub_city, hub_city))
            .group_by(Need.hub_city)):
        row(city).cross_region_dockings = n

    for city, kind, total in db.session.execute(
            select(Voucher.hub_city, VoucherEntry.kind, func.sum(VoucherEntry.amount))
            .join(Voucher, VoucherEntry.voucher_id == Voucher.id)
            .where(VoucherEntry.kind.in_([EntryKind.ISSUE.value, EntryKind.REDEEM.value]),
                   _city_filter(Voucher.hub_city, hub_city))
            .group_by(Voucher.hub_city, VoucherEntry.kind)):
        r = row(city)
        if kind == EntryKind.ISSUE:
            r.vouchers_issued += Decimal(total or 0)
        else:
            r.vouchers_redeemed += Decimal(total or 0)

    order = {c: i for i, c in enumerate(HubCity.values())}
    rows = sorted(cities.values(), key=lambda r: order.get(r.hub_city, len(order)))
    overall = CityStats(OVERALL)
    for r in rows:
        overall.needs_posted += r.needs_posted
        overall.needs_docked += r.needs_docked
        overall.contract_value += r.contract_value
        overall.cross_region_dockings += r.cross_region_dockings
        overall.vouchers_issued += r.vouchers_issued
        overall.vouchers_redeemed += r.vouchers_redeemed
        for state, n in r.outcomes.items():
            overall.outcomes[state] = overall.outcomes.get(state, 0) + n
    overall.median_days_to_docking = statistics.median(all_days) if all_days else None
    return rows, overall


def _parse(value: str):
    from datetime import datetime, timezone
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
