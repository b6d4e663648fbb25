"""Feedback into ranking: 'not relevant' declines demote a capability for similar needs, contracts boost the
institute, and the match explanation says so."""
from __future__ import annotations

import numpy as np
import pytest

from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.pairings import feedback
from matchmaker.pairings import operations as ops
from matchmaker.suggestions import queries


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.mark.nodb
def test_demotion_grows_with_similarity_and_ignores_unrelated_needs():
    """Is the penalty zero for needs below the similarity floor, full for the same need, and monotone between?"""
    need = _unit([1, 0, 0])
    same = np.stack([_unit([1, 0, 0])])
    close = np.stack([_unit([1, 0.3, 0]), _unit([0, 0, 1])])
    far = np.stack([_unit([0, 1, 0])])
    assert feedback.demotion(need, same) == pytest.approx(feedback.DEMOTE_WEIGHT)
    assert 0 < feedback.demotion(need, close) < feedback.DEMOTE_WEIGHT
    assert feedback.demotion(need, far) == 0.0
    assert feedback.demotion(need, np.zeros((0, 3))) == 0.0


@pytest.mark.nodb
def test_boost_is_small_and_capped():
    """Does each signed contract add a little, never more than the cap?"""
    assert feedback.boost(0) == 0.0
    assert feedback.boost(1) == pytest.approx(feedback.BOOST_PER_CONTRACT)
    assert feedback.boost(100) == pytest.approx(feedback.BOOST_CAP)


@pytest.mark.slow
def test_decline_demotes_for_similar_need_and_page_says_so(matching, make, world, client_as):
    """After the firm declines a capability as not relevant for one battery need, is it demoted (with the
    note shown) for a near-identical need, and less (or not at all) for an unrelated one?"""
    battery = dict(industry="new_energy", background="储能磷酸铁锂电池，北方冬季容量衰减。",
                   problems="零下20℃放电容量只有常温的55%。", targets="-20℃放电容量保持率≥85%。")
    first = make.need(world["enterprise"], title="储能电池低温放电提升", **battery)
    second = make.need(world["enterprise"], title="储能锂电池低温容量衰减改善", **battery)
    unrelated = make.need(world["enterprise"], title="中药材农残快速检测方法", industry="biomedicine",
                          background="中药饮片企业", problems="农残检测周期长", targets="30分钟出结果")
    cap = make.capability(world["expert"], title="低温电解液配方技术")
    before = {s.listing.id: s for s in queries.capabilities_for_need(second, k=5)}[cap.id]
    assert "feedback" not in before.match.components
    p = ops.propose_pairing(first, cap, by=make.user(Role.COORDINATOR))
    ops.respond(p, world["enterprise"], "need", "declined", reason="not_relevant")
    db.session.commit()
    after = {s.listing.id: s for s in queries.capabilities_for_need(second, k=5)}[cap.id]
    assert after.match.components["feedback"] < 0 and after.score < before.score
    html = client_as("enterprise").get(f"/needs/{second.id}/matches").get_data(as_text=True)
    assert "feedback-note" in html
    far = {s.listing.id: s for s in queries.capabilities_for_need(unrelated, k=5)}.get(cap.id)
    assert far is None or far.match.components.get("feedback", 0) > after.match.components["feedback"]
