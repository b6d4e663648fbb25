"""Pairing fixtures, for tests/pairings/ (``tests.helpers.pairing_at(pw, state)`` drives one to a state)."""
from __future__ import annotations

import pytest

from matchmaker.core.enums import Role


@pytest.fixture
def pw(make, world):
    """A published need of the firm, a published capability of the institute's expert, and a scoped coordinator."""
    need = make.need(world["enterprise"])
    cap = make.capability(world["expert"])
    coord = make.user(Role.COORDINATOR, hub_city="chongqing")
    return {**world, "need": need, "cap": cap, "coord": coord}
