"""Amounts of money as people type them: "1,200,000", "1 200 000", "¥1,200,000.50", "120万", "1.2亿", "１２０万元".

One reading for every amount field (contracts, vouchers), so a figure written the way Chinese contracts write it
is understood rather than refused as missing.
"""
from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

#: Chinese magnitude words after a number
_UNITS = {"万": Decimal(10_000), "亿": Decimal(100_000_000), "千": Decimal(1_000), "百": Decimal(100)}
_CURRENCY = re.compile(r"^(?:¥|￥|RMB|CNY|人民币)\s*|\s*(?:元|块|RMB|CNY|人民币)$", re.IGNORECASE)
#: digits grouped by thousands with "," or a space (the grouping must be regular: "1,20,0" is refused)
_GROUPED = re.compile(r"^\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?$")
_PLAIN = re.compile(r"^\d+(?:\.\d+)?$")


class AmountError(ValueError):
    """The text is not an amount."""


def parse_amount(text) -> Decimal:
    """The amount ``text`` names, in CNY; raises AmountError when it names none.

    Accepts full-width digits and punctuation, a currency sign or word before or after, thousands separators
    (comma, full-width comma or space, regularly grouped), and one magnitude word (万, 亿, 千, 百)."""
    if isinstance(text, (int, Decimal)):
        return Decimal(text)
    if not isinstance(text, str):
        raise AmountError(text)
    value = unicodedata.normalize("NFKC", text).strip()  # full-width digits, "，" and "．" become ASCII
    for _ in range(2):  # a sign before and a word after: "¥120万元"
        value = _CURRENCY.sub("", value).strip()
    factor = Decimal(1)
    if value and value[-1] in _UNITS:
        factor, value = _UNITS[value[-1]], value[:-1].strip()
    if _GROUPED.match(value):
        value = value.replace(",", "").replace(" ", "")
    elif not _PLAIN.match(value):
        raise AmountError(text)
    try:
        return Decimal(value) * factor
    except InvalidOperation:
        raise AmountError(text) from None
