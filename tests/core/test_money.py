"""Are amounts read the way people write them, and is anything else refused?"""
from __future__ import annotations

from decimal import Decimal

import pytest

from matchmaker.core.money import AmountError, parse_amount

pytestmark = pytest.mark.nodb


@pytest.mark.parametrize("text, expected", [
    ("1200000", "1200000"), ("1,200,000", "1200000"), ("1 200 000", "1200000"), ("1，200，000", "1200000"),
    ("¥1,200,000.50", "1200000.50"), ("120万", "1200000"), ("120 万元", "1200000"), ("１２０万", "1200000"),
    ("1.2亿", "120000000"), ("RMB 3500", "3500"), ("3500元", "3500"), ("￥120万元", "1200000"), ("0.5万", "5000"),
])
def test_written_amounts_are_read(text, expected):
    """Regression (2026-12-07): "1,200,000" and "120万" were refused as a missing contract amount; are they,
    and the other ways contracts write amounts, read as the amount they name?"""
    assert parse_amount(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["", "abc", "1,20,0", "12,34", "--5", "1e5", "NaN", "万", "1.2.3", "5万万", None])
def test_non_amounts_are_refused(text):
    """Is text that names no amount (or groups digits irregularly) refused rather than guessed?"""
    with pytest.raises(AmountError):
        parse_amount(text)
