"""Which hub cities a person coordinates: the one rule every ``can_*`` method, operation and query asks.

Three cases: ALL (administrators, and coordinators whose role row has no hub city), some hub cities, or NONE
(not a coordinator, or not signed in). A listing, fair or voucher without a hub city is covered only by ALL.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import false, true

from .enums import Role


@dataclass(frozen=True)
class CoordinatorScope:
    """ALL (``everywhere``), a set of hub cities, or NONE (neither). Immutable: compare and share freely."""

    everywhere: bool = False
    cities: frozenset[str] = frozenset()

    @property
    def is_all(self) -> bool:
        return self.everywhere

    @property
    def is_none(self) -> bool:
        return not self.everywhere and not self.cities

    def covers(self, hub_city: str | None) -> bool:
        return self.everywhere or (hub_city is not None and hub_city in self.cities)

    def where(self, column):
        """The same rule as ``covers`` as a SQL condition on a hub-city column."""
        if self.everywhere:
            return true()
        if not self.cities:
            return false()
        return column.in_(sorted(self.cities))


ALL = CoordinatorScope(everywhere=True)
NONE = CoordinatorScope()


def scope_of_roles(role_rows: Iterable) -> CoordinatorScope:
    """From a user's role rows (``.role``, ``.hub_city``): an admin row or an unscoped coordinator row is ALL."""
    cities = set()
    for row in role_rows:
        if row.role == Role.ADMIN or (row.role == Role.COORDINATOR and row.hub_city is None):
            return ALL
        if row.role == Role.COORDINATOR:
            cities.add(row.hub_city)
    return CoordinatorScope(cities=frozenset(cities)) if cities else NONE


def coordinator_scope_of(user) -> CoordinatorScope:
    """``user.coordinator_scope``, and NONE for anonymous users (or no user at all)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return NONE
    return user.coordinator_scope
