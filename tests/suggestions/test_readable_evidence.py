"""Is a match's evidence readable by a firm: plain words for what speaks for it, numbers only in tooltips, the
same reasons in the API? (real embedding model and index: a handful of listings)"""
from __future__ import annotations

import re

import pytest

from matchmaker.suggestions.evidence import REASON_KEYS, reasons

pytestmark = pytest.mark.slow


def _visible(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_match_page_names_reasons_in_plain_words_with_numbers_in_tooltips(matching, docking, client_as):
    """On a need's match page, does each result's evidence say why in words ("same meaning",
    "cross-language" …; zh: 含义相近, 跨语言) and keep the component numbers in title attributes only?"""
    need, right = docking["need"], docking["right"]
    html = client_as("enterprise").get(f"/needs/{need.id}/matches?lang=en").get_data(as_text=True)
    card = html[html.index(f'data-id="{right.id}"'):]
    card = card[:card.index('class="card card-listing') if 'class="card card-listing' in card else len(card)]
    shown = _visible(card)
    assert "Why:" in shown and "same meaning" in shown and "cross-language" in shown, shown
    assert not re.search(r"[+-]\d+\.\d\d", shown), shown       # "language calibration +0.18" is gone
    assert "sentence similarity" not in shown and "Score " not in shown
    assert re.search(r'title="meaning [+-]\d+\.\d\d"', card) and "language calibration" in card  # tooltips
    zh = client_as("enterprise").get(f"/needs/{need.id}/matches?lang=zh").get_data(as_text=True)
    assert "含义相近" in zh and "跨语言" in zh


def test_the_api_gives_the_same_reasons_and_content_words(matching, docking, api_as, app):
    """Does the API's match carry the reasons the page names (same keys, in the request's language, with
    their numbers) and shared terms without bare numbers?"""
    need, right = docking["need"], docking["right"]
    body = api_as("enterprise").get(f"/api/v1/needs/{need.id}/matches").json
    item = next(i for i in body["items"] if i["capability"]["id"] == right.id)
    keys = [r["key"] for r in item["reasons"]]
    assert "cross_language" in keys and "same_meaning" in keys and set(keys) <= set(REASON_KEYS)
    by_key = {r["key"]: r for r in item["reasons"]}
    assert by_key["same_meaning"]["value"] == pytest.approx(item["components"]["dense"], abs=1e-3)
    assert by_key["cross_language"]["value"] == pytest.approx(item["components"]["calibration"], abs=1e-3)
    assert not [t for t in item["evidence"]["shared_terms"] if re.fullmatch(r"[\d.%]+", t)]


def test_reasons_name_what_adds_to_the_score(app):
    """Are meaning, terms and similar results named only when they add to the score, cross-language whenever
    the languages differ, and feedback whenever it moved the score — from a Match or a pairing's snapshot?"""
    snap = {"components": {"dense": 1.2, "lexical": 0.01, "calibration": 0.18, "neighbours": 0.33,
                           "feedback": -0.25}, "raw": {"cross_language": 1.0}}
    with app.test_request_context("/?lang=en"):
        got = reasons(snap)
        assert [r["key"] for r in got] == ["same_meaning", "cross_language", "similar_results", "feedback"]
        assert got[1]["title"] == "language calibration +0.18" and got[3]["value"] == -0.25
        same_lang = {"components": {"dense": -0.2, "lexical": 0.9, "calibration": 0.4}, "lang": "zh"}
        assert [r["key"] for r in reasons(same_lang, "zh")] == ["shared_terms"]
        assert [r["key"] for r in reasons(same_lang, "en")] == ["shared_terms", "cross_language"]
