"""What "not for me" does with the real model and index: the need leaves the expert's suggestions and digest
(until undone), needs like it drop on their suggestions, and their capability stops being a strong match for it.
(real model; slow)"""
from __future__ import annotations

from datetime import timedelta

import pytest

from matchmaker.core.time import utcnow
from matchmaker.extensions import db
from matchmaker.pairings import feedback
from matchmaker.pairings import operations as ops
from matchmaker.pairings.cli import send_digests
from matchmaker.suggestions import queries
from tests.helpers import BRINE_CAP, BRINE_NEED, FILLERS, OFF_TOPIC_CAPS, notes_of, unrelated_pool

pytestmark = pytest.mark.slow

#: the same problem in other words, posted by another firm
BRINE_NEED_2 = dict(BRINE_NEED, title="煤化工浓盐水COD去除",
                    background="煤化工园区反渗透浓盐水，含盐量高，COD超标。",
                    problems="浓水COD约700mg/L，芬顿法污泥多、成本高。")


@pytest.fixture
def brine_needs(floor, make, world):
    """The expert's brine-wastewater capability; two brine needs of two firms among needs about nothing it does."""
    cap = make.capability(world["expert"], **BRINE_CAP)
    first = make.need(world["enterprise"], **BRINE_NEED)
    second = make.need(world["other_enterprise"], **BRINE_NEED_2)
    fillers = [make.need(world["other_enterprise"], title=t, problems=d, targets=d, background=d,
                         industry="smart_manufacturing") for t, d in FILLERS]
    return {"cap": cap, "first": first, "second": second, "fillers": fillers}


def _suggested(user) -> dict:
    return {s.listing.id: s for s in queries.needs_for_user(user, k=10)[0]}


def test_a_dismissed_need_leaves_the_suggestions_and_the_digest_until_undone(brine_needs, world, client_as):
    """Once the expert marks a suggested need "not for me", is it gone from /suggestions (after a reload) and
    from the digest, while the other need stays, and does "suggest it again" bring it back?"""
    first, second = brine_needs["first"], brine_needs["second"]
    expert = client_as("expert")
    page = expert.get("/suggestions").get_data(as_text=True)
    assert f'data-id="{first.id}"' in page and f'data-id="{second.id}"' in page
    assert f'action="/suggestions/{first.id}/dismiss"' in page and f'action="/suggestions/{first.id}/interested"' in page
    expert.post(f"/suggestions/{first.id}/dismiss", data={"reason": "not_relevant"})
    page = expert.get("/suggestions").get_data(as_text=True)
    assert f'data-id="{first.id}"' not in page and f'data-id="{second.id}"' in page
    send_digests(now=utcnow() + timedelta(minutes=1))
    [digest] = [n for n in notes_of(world["expert"]) if n.kind == "digest.needs"]
    assert f"/needs/{second.id}" in digest.body and f"/needs/{first.id}\n" not in digest.body + "\n"
    expert.post(f"/suggestions/{first.id}/restore")
    assert first.id in _suggested(world["expert"])


def test_needs_like_a_dismissed_one_drop_on_the_experts_suggestions(brine_needs, world):
    """Is a need like the one the expert dismissed as "not my field" demoted on their suggestions, with the
    note, and never presented as strong — while "no time for it now" says nothing about the fit and demotes
    nothing?"""
    first, second = brine_needs["first"], brine_needs["second"]
    before = _suggested(world["expert"])[second.id]
    assert "feedback" not in before.match.components
    ops.dismiss_need(first, world["expert"], reason="no_capacity")
    db.session.commit()
    same = _suggested(world["expert"])[second.id]  # the pool lost the dismissed need: scores move a little
    assert "feedback" not in same.match.components
    ops.restore_need(first, world["expert"])
    ops.dismiss_need(first, world["expert"], reason="not_relevant")
    db.session.commit()
    after = _suggested(world["expert"]).get(second.id)
    assert after is not None, "a possible match stays suggested, lower"
    assert after.match.components["feedback"] < 0 and after.score < same.score  # the same pool as `same`
    assert after.band != "strong" and feedback.NOTE_LIKE_DISMISSED in after.match.feedback_notes


def test_a_dismissal_turns_the_experts_strong_match_for_that_need_to_possible(floor, make, world, client_as,
                                                                              api_as):
    """When the expert marks a need "not for me", does their capability — a strong match for it before — stop
    being presented as strong on the firm's match page and in the API ("no good match yet"), with the note?"""
    need = make.need(world["enterprise"], **BRINE_NEED)
    for kw in OFF_TOPIC_CAPS:
        make.capability(world["expert"], **kw)
    unrelated_pool(make, world["expert"])
    cap = make.capability(world["expert"], **BRINE_CAP)
    assert {s.listing.id: s.band for s in queries.capabilities_for_need(need)}[cap.id] == "strong"
    client_as("expert").post(f"/suggestions/{need.id}/dismiss")  # no reason given: counts as not the fit
    [s] = [s for s in queries.capabilities_for_need(need) if s.listing.id == cap.id]
    assert s.band == "possible" and feedback.NOTE_DISMISSED in s.match.feedback_notes
    html = client_as("enterprise").get(f"/needs/{need.id}/matches?lang=en").get_data(as_text=True)
    assert "No good match yet." in html and 'data-band="strong"' not in html
    assert api_as("enterprise").get(f"/api/v1/needs/{need.id}/matches").json["state"] == "no_strong_match"
