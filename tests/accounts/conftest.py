"""Accounts tests hash passwords with the production argon2 profile (elsewhere tests/conftest.py's cheap one)."""
from __future__ import annotations

import pytest


@pytest.fixture
def fast_password_hashing():
    """Overrides the suite-wide cheap profile: here logins, resets and rehashing run on the real one."""
