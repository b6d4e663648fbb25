"""Glue between the web app and the matching engine (matchmaker.matching).

Filled in when the engine lands: until then listings are stored and browsed, and sync is a no-op.
"""
from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> str:
    cjk = len(_CJK.findall(text or ""))
    latin = len(_LATIN.findall(text or ""))
    if cjk == 0 and latin == 0:
        return "other"
    # A Chinese need mentioning "PLC" or "SLAM" is still Chinese: one CJK char outweighs a few Latin ones.
    return "zh" if cjk * 3 >= latin else "en"


def init_matching(app) -> None:
    app.extensions["matchmaker.engine"] = None


def sync_listing(kind: str, listing_id: int) -> None:
    return None
