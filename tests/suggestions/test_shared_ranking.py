"""A need's ranking is computed once for everyone (suggestions.cache on core.sharedcache), and ahead of its
first view when the index changes (``warm``)."""
from __future__ import annotations

import re

import pytest
from prometheus_client import REGISTRY

from matchmaker.extensions import db
from matchmaker.suggestions import cache as match_cache

pytestmark = pytest.mark.slow


def _rankings() -> float:
    return REGISTRY.get_sample_value("matchmaker_rankings_total", {"kind": "capabilities_for_need"}) or 0


def _ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'match-item" data-id="(\d+)"', html)]


def test_a_need_is_ranked_once_for_every_viewer(matching, docking, client_as):
    """Do the firm, an expert, a coordinator and a visitor see the same ranking of a need, computed once?"""
    match_cache.clear()
    url = f"/needs/{docking['need'].id}/matches"
    client_as("enterprise").get(url)  # loads the engine and ranks
    before = _rankings()
    pages = [client_as(role).get(url) for role in ("expert", "coordinator", None)]
    assert all(p.status_code == 200 for p in pages)
    ids = [_ids(p.get_data(as_text=True)) for p in pages]
    assert ids[0] and ids[0] == ids[1] == ids[2]
    assert _rankings() == before


def test_a_publish_ranks_open_needs_before_their_first_view(app, matching, docking, client_as, world, make):
    """After a capability is published (its index job done), is the match page of an open need already
    ranked — the next viewer's request computes nothing — and does the new capability appear on it?"""
    client_as("expert").get(f"/needs/{docking['need'].id}/matches")  # the engine is loaded
    app.config["RANKING_WARM"] = 5
    try:
        before = _rankings()
        capability = make.capability(world["expert"], title="Solid-state electrolyte for low-temperature "
                                     "lithium batteries", field="new_energy",
                                     summary="Sulfide solid electrolyte keeps 88% capacity at -20 °C",
                                     description="Lithium battery cells with solid electrolyte; low-temperature "
                                                 "discharge capacity retention 88% at -20 °C.")
        db.session.commit()  # the index job runs inline after the commit, then the warm-up
        warmed = _rankings()
        assert warmed >= before + 1
        page = client_as("coordinator").get(f"/needs/{docking['need'].id}/matches")
        assert page.status_code == 200 and capability.id in _ids(page.get_data(as_text=True))
        assert _rankings() == warmed
    finally:
        app.config["RANKING_WARM"] = 0
