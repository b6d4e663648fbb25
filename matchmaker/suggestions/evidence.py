"""A match's evidence in plain words: which parts of the ranking speak for it ("same meaning", "shared
terms", "cross-language", "similar results", "feedback"), each with its number for a tooltip. One home for
the pages (the ``match_reasons`` template filter) and the API (``reasons`` of a match).

Works on an engine Match and on a pairing's snapshot of one (``pairings.operations.match_to_json``).
"""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

VISIBLE = 0.05   # a component adding less than this (in standard deviations) is not named

#: (component, key, plain words, the number's name in the tooltip); the order the pages name them in
COMPONENTS = (
    ("dense", "same_meaning", _l("same meaning"), _l("meaning")),
    ("lexical", "shared_terms", _l("shared terms"), _l("keywords")),
    ("calibration", "cross_language", _l("cross-language"), _l("language calibration")),
    ("neighbours", "similar_results", _l("similar results"), _l("similar results")),
    ("feedback", "feedback", _l("feedback"), _l("feedback")),
)
REASON_KEYS = tuple(key for _name, key, _label, _number in COMPONENTS)


def _get(match, name, default=None):
    if isinstance(match, dict):
        return match.get(name, default)
    return getattr(match, name, default)


def is_cross_language(match, source_lang: str | None = None) -> bool:
    raw = _get(match, "raw") or {}
    if raw.get("cross_language") is not None:
        return bool(raw.get("cross_language"))
    lang = _get(match, "lang")
    return bool(source_lang and lang and lang in ("zh", "en") and source_lang in ("zh", "en") and lang != source_lang)


def reasons(match, source_lang: str | None = None) -> list[dict]:
    """What speaks for ``match``, in the pages' order: ``key``, ``label`` (the viewer's language), ``value`` (the
    component's share of the score) and ``title`` (the number, for a tooltip). Meaning, terms and similar
    results count when they add to the score; "cross-language" whenever the texts' languages differ; feedback
    whenever it moved the score (either way)."""
    components = _get(match, "components") or {}
    cross = is_cross_language(match, source_lang)
    out = []
    for name, key, label, number in COMPONENTS:
        value = float(components.get(name) or 0.0)
        shown = cross if key == "cross_language" else value != 0 if key == "feedback" else value >= VISIBLE
        if shown:
            out.append({"key": key, "label": str(label), "value": round(value, 4),
                        "title": f"{number} {value:+.2f}"})
    return out


def numbers(match) -> str:
    """Every number behind a match, for the tooltip of its evidence line."""
    parts = []
    confidence, score = _get(match, "confidence"), _get(match, "score")
    if confidence is not None:
        parts.append("%s %.2f" % (_("confidence"), float(confidence)))
    if score is not None:
        parts.append("%s %.2f" % (_("score"), float(score)))
    components = _get(match, "components") or {}
    for name, _key, _label, number in COMPONENTS:
        if name in components:
            parts.append(f"{number} {float(components[name]):+.2f}")
    return " · ".join(parts)
