"""The load test's building blocks (not the benchmark itself, see scripts/load.sh): the N-times seeder and the
match-page memo that keeps the match page fast under load."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from prometheus_client import REGISTRY

from matchmaker.extensions import db
from matchmaker.listings.models import Capability, Need
from matchmaker.seeding import SEEDS_DIR, load_seeds
from matchmaker.suggestions import cache as match_cache


def _seed_rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (SEEDS_DIR / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _count(model, pattern: str = "%") -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(model.seed_key.like(pattern)))


def test_scaled_seed_multiplies_listings_and_stays_idempotent():
    """Does --scale 3 give three times the seeded listings, deterministic and different texts, and add
    nothing when run again (plain seed included)?"""
    needs, caps = _seed_rows("needs.jsonl"), _seed_rows("capabilities.jsonl")
    added = load_seeds("Load-test-password-2026", scale=3)
    assert added["needs"] == 3 * len(needs) and added["capabilities"] == 3 * len(caps)
    assert _count(Need, "%-x2") == len(needs) and _count(Capability, "%-x1") == len(caps)
    assert load_seeds("Load-test-password-2026", scale=3) == {k: 0 for k in added}
    assert load_seeds("Load-test-password-2026") == {k: 0 for k in added}

    original = db.session.scalar(select(Need).where(Need.seed_key == needs[0]["key"]))
    variant = db.session.scalar(select(Need).where(Need.seed_key == needs[0]["key"] + "-x1"))
    assert variant.title.endswith(original.title) and variant.title != original.title
    assert variant.background != original.background and variant.status == original.status
    titles = db.session.scalars(select(Capability.title).where(Capability.seed_key.like("%-x%"))).all()
    assert len(set(titles)) == len(titles)  # every generated capability has its own title


def test_plain_seed_adds_no_variants():
    load_seeds("Load-test-password-2026")
    assert _count(Need, "%-x%") == 0 and _count(Need) == len(_seed_rows("needs.jsonl"))


@pytest.mark.nodb
def test_scale_below_one_is_refused():
    with pytest.raises(ValueError):
        load_seeds("Load-test-password-2026", scale=0)


def _ranking_misses() -> float:
    return REGISTRY.get_sample_value("matchmaker_cache_lookups_total", {"cache": "ranking", "result": "miss"}) or 0


def _match_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'match-item" data-id="(\d+)"', html)]


@pytest.mark.slow
def test_match_page_memo_follows_need_edits_and_unpublished_capabilities(matching, docking, client_as,  # noqa: F811
                                                                          world):
    """Is the second view served from the memo, and does the memo give way when the need changes or a
    ranked capability is closed?"""
    from matchmaker.listings import operations as ops

    match_cache.clear()
    url = f"/needs/{docking['need'].id}/matches?lang=en"
    first = client_as("enterprise").get(url)
    assert first.status_code == 200
    misses = _ranking_misses()
    again = client_as("enterprise").get(url)
    assert _match_ids(again.get_data(as_text=True)) == _match_ids(first.get_data(as_text=True))
    assert _ranking_misses() == misses  # served from the memo

    ops.close_listing(docking["right"], world["expert"])
    db.session.commit()
    closed = _match_ids(client_as("enterprise").get(url).get_data(as_text=True))
    assert docking["right"].id not in closed

    need = db.session.get(Need, docking["need"].id)
    ops.update_listing(need, world["enterprise"], {"targets": need.targets + " 成本降低20%。"})
    db.session.commit()
    client_as("enterprise").get(url)
    assert _ranking_misses() > misses
