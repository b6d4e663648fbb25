"""Do coordinators see the engine's evidence and confidence on every pairing they judge, including one a firm
proposed by hand? (real embedding model and index: a handful of listings)"""
from __future__ import annotations

import re

import pytest

from matchmaker.extensions import db
from matchmaker.pairings import operations as ops
from matchmaker.pairings.models import Pairing

pytestmark = pytest.mark.slow


def _visible(html: str) -> str:
    """The text a reader sees: no tags, so no attribute (tooltip) either."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start:html.index("</div></div>", start)]


def test_a_firms_proposal_carries_the_engines_evidence_to_the_judging_coordinator(
        matching, docking, world, client_as):
    """When the firm proposes a pairing from its match page (posting no score it could make up), does the
    pairing keep the engine's match of the two (score, confidence, band, evidence), and do the coordinator's
    queue and the pairing page show the band first and the reasons in plain words, the numbers only in tooltips?"""
    need, cap = docking["need"], docking["right"]
    firm = client_as("enterprise")
    res = firm.post("/pairings/propose", data={"need_id": need.id, "capability_id": cap.id, "score": "99"})
    assert res.status_code in (302, 303), res.get_data(as_text=True)
    pairing = db.session.query(Pairing).filter_by(need_id=need.id, capability_id=cap.id).one()
    snap = pairing.match_evidence
    assert snap and snap["band"] in ("strong", "possible", "weak") and 0 <= snap["confidence"] <= 1
    assert pairing.match_score == pytest.approx(snap["score"]) and pairing.match_score != 99
    assert snap["raw"]["cross_language"] == 1.0 and snap["lang"] == "en"
    assert snap["evidence"]["doc_sentence"] and snap["evidence"]["shared_terms"]
    ops.respond(pairing, world["expert"], "capability", "interested")
    db.session.commit()

    coordinator = client_as("coordinator")
    queue = coordinator.get("/coordinate?lang=en").get_data(as_text=True)
    row = queue[queue.index(f'data-pairing-id="{pairing.id}"'):]
    row = row[:row.index("</tr>")]
    assert f'data-band="{snap["band"]}"' in row and 'data-reason="cross_language"' in row

    page = coordinator.get(f"/pairings/{pairing.id}?lang=en").get_data(as_text=True)
    why = _section(page, "pairing-evidence")
    assert why.index("match-band") < why.index("data-reason=")            # the band first
    assert f"confidence {snap['confidence']:.2f}" in why                     # … its number in the tooltip
    shown = _visible(why)
    assert "cross-language" in shown and "same meaning" in shown, shown
    assert not re.search(r"[+-]\d+\.\d\d", shown), shown                    # no "language calibration +0.18"
    assert "language calibration" not in shown and "language calibration" in why
    assert snap["evidence"]["shared_terms"][0] in shown

    zh = _visible(_section(coordinator.get(f"/pairings/{pairing.id}?lang=zh").get_data(as_text=True),
                           "pairing-evidence"))
    assert "跨语言" in zh and "含义相近" in zh, zh


def test_a_pairing_without_a_snapshot_is_explained_when_its_page_renders(matching, docking, world, client_as):
    """Does a pairing with no stored match (made before the snapshot existed, or by the demo seed) show the
    engine's evidence and band all the same, computed for the page and not written to the database?"""
    need, cap = docking["need"], docking["right"]
    pairing = ops.propose_pairing(need, cap, by=world["coordinator"], snapshot=False)
    db.session.commit()
    assert pairing.match_evidence is None and pairing.match_score is None
    page = client_as("coordinator").get(f"/pairings/{pairing.id}?lang=en").get_data(as_text=True)
    why = _section(page, "pairing-evidence")
    assert "match-band" in why and "same meaning" in _visible(why)
    db.session.refresh(pairing)
    assert pairing.match_evidence is None
