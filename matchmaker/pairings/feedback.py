"""Feedback into ranking: what happened to past pairings adjusts future matches, visibly.

* **Demotion**: when a capability was declined as "not relevant" for some needs, it is demoted for a new need
  by ``DEMOTE_WEIGHT × s`` where ``s`` is how similar the new need is to the most similar of those needs:
  ``s = max(0, (cos − SIMILARITY_FLOOR) / (1 − SIMILARITY_FLOOR))`` over the engine's need vectors (the floor
  removes the baseline similarity any two needs of this domain have).
* **Boost**: each signed contract of an institute (the capability's organization) adds ``BOOST_PER_CONTRACT``
  to its capabilities, at most ``BOOST_CAP``.

Scores are in the engine's units (standard deviations above a typical listing), so a full demotion (the same need)
moves a capability half a standard deviation down. The delta is put into ``match.components['feedback']``
and ``match.feedback_notes`` says why, for the evidence panel. Measured on the seeds: ``docs/feedback.md``.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

DEMOTE_WEIGHT = 0.5  # floor × weight chosen on the seed simulation, docs/feedback.md
SIMILARITY_FLOOR = 0.6
BOOST_PER_CONTRACT = 0.15
BOOST_CAP = 0.45

NOTE_DEMOTED = _l("demoted: declined as not relevant for a similar need")
NOTE_BOOSTED = _l("boosted: the institute has signed contracts through the platform")


# -- the formula (pure; shared by the app and the simulation) ----------------------------------------

def demotion(need_vec: np.ndarray, declined_vecs: np.ndarray, floor: float | None = None,
             weight: float | None = None) -> float:
    """Penalty for a capability declined for the needs of ``declined_vecs`` (rows, L2-normalised)."""
    if declined_vecs is None or not len(declined_vecs):
        return 0.0
    floor = SIMILARITY_FLOOR if floor is None else floor
    weight = DEMOTE_WEIGHT if weight is None else weight
    cos = float(np.max(declined_vecs @ need_vec))
    return weight * max(0.0, (cos - floor) / (1.0 - floor))


def boost(signed_contracts: int) -> float:
    return min(BOOST_CAP, BOOST_PER_CONTRACT * max(0, signed_contracts))


# -- the app hook ------------------------------------------------------------------------------------

def _declined_not_relevant(cap_ids) -> dict[int, list[int]]:
    from ..extensions import db
    from .models import DeclineReason, Pairing, PairingResponse
    rows = db.session.execute(
        select(Pairing.capability_id, Pairing.need_id).join(PairingResponse, PairingResponse.pairing_id == Pairing.id)
        .where(Pairing.capability_id.in_(list(cap_ids)), PairingResponse.decision == "declined",
               PairingResponse.reason == DeclineReason.NOT_RELEVANT)).all()
    out = defaultdict(list)
    for cap_id, need_id in rows:
        out[cap_id].append(need_id)
    return out


def _contracts_by_org(org_ids) -> dict[int, int]:
    from ..extensions import db
    from ..listings.models import Capability
    from .models import Pairing, PairingState
    org_ids = [o for o in org_ids if o is not None]
    if not org_ids:
        return {}
    return dict(db.session.execute(
        select(Capability.organization_id, func.count(Pairing.id)).join(Capability, Pairing.capability_id == Capability.id)
        .where(Capability.organization_id.in_(org_ids), Pairing.state == PairingState.CONTRACT_SIGNED)
        .group_by(Capability.organization_id)).all())


def need_vectors(engine, need_ids, extra=None) -> dict[int, np.ndarray]:
    """Need vectors from the engine's index; ``extra`` {id: text} encodes needs not (yet) indexed."""
    found = {}
    indexed = engine.doc_ids("need")
    ids = [i for i in need_ids if i in indexed]
    if ids:
        vecs = engine._kind("need").vectors.reconstruct(ids)
        found.update({i: v / (np.linalg.norm(v) or 1.0) for i, v in zip(ids, vecs, strict=True)})
    missing = {i: t for i, t in (extra or {}).items() if i not in found}
    if missing:
        vecs = engine.embedder.encode_documents(list(missing.values()))
        found.update(dict(zip(missing, vecs, strict=True)))
    return found


def apply_feedback(need, matches, engine, capabilities=None):
    """Adjust engine matches for ``need`` by past declines and contracts; returns them re-sorted."""
    if not matches:
        return matches
    from ..extensions import db
    from ..listings.models import Capability, Need
    cap_ids = [m.doc_id for m in matches]
    declined = _declined_not_relevant(cap_ids)
    caps = capabilities or {c.id: c for c in db.session.scalars(select(Capability).where(Capability.id.in_(cap_ids)))}
    contracts = _contracts_by_org({c.organization_id for c in caps.values()})
    if not declined and not contracts:
        return matches
    vecs = {}
    if declined:
        other_ids = {n for ns in declined.values() for n in ns if n != need.id}
        texts = {need.id: need.matching_text()}
        texts.update({n.id: n.matching_text() for n in db.session.scalars(select(Need).where(Need.id.in_(other_ids)))})
        vecs = need_vectors(engine, [need.id, *other_ids], extra=texts)
    for m in matches:
        delta, notes = 0.0, []
        others = [n for n in declined.get(m.doc_id, []) if n != need.id and n in vecs]
        if others and need.id in vecs:
            d = demotion(vecs[need.id], np.stack([vecs[n] for n in others]))
            if d > 0:
                delta -= d
                notes.append(NOTE_DEMOTED)
        cap = caps.get(m.doc_id)
        b = boost(contracts.get(cap.organization_id, 0)) if cap is not None else 0.0
        if b > 0:
            delta += b
            notes.append(NOTE_BOOSTED)
        if notes:
            m.components = {**(m.components or {}), "feedback": round(delta, 4)}
            m.score = float(m.score) + delta
            m.feedback_notes = notes
            # the confidence stays the engine's (a boost never raises the band), but a result declined as
            # not relevant for a similar need is no longer presented as a strong match
            if delta < 0 and m.band == "strong":
                m.band = "possible"
    return sorted(matches, key=lambda m: -m.score)


# -- simulation on the seeds (docs/feedback.md) -------------------------------------------------------

def simulate(seeds_dir="seeds", top: int = 3, k: int = 20, floors=(0.5, 0.6, 0.7, 0.8), weights=(0.5, 1.0),
             cache_dir: str | None = "/tmp/matchmaker-feedback-cache") -> dict:
    """Rank capabilities for every seed need that has true pairs. For half of the needs (even positions), the
    firm declines every wrong capability among its top ``top`` as not relevant. For the other half, compare
    the rank of each true capability before and after the demotion, for each (floor, weight)."""
    import json
    import tempfile
    from pathlib import Path

    from ..matching.embedders import CachedEmbedder, load_embedder
    from ..matching.engine import Doc, MatchEngine
    seeds = Path(seeds_dir)
    needs = [json.loads(line) for line in (seeds / "needs.jsonl").read_text("utf-8").splitlines() if line.strip()]
    caps = [json.loads(line) for line in (seeds / "capabilities.jsonl").read_text("utf-8").splitlines()
            if line.strip()]
    pairs = json.loads((seeds / "pairs.json").read_text("utf-8"))
    nid = {n["key"]: i + 1 for i, n in enumerate(needs)}
    cid = {c["key"]: i + 1 for i, c in enumerate(caps)}
    truth = defaultdict(set)
    for p in pairs:
        if p["need"] in nid and p["capability"] in cid:
            truth[nid[p["need"]]].add(cid[p["capability"]])

    def need_text(n):
        return "\n".join(n.get(f, "") for f in ("problems", "targets", "background") if n.get(f))

    def cap_text(c):
        return "\n".join(c.get(f, "") for f in ("summary", "description") if c.get(f))

    embedder = load_embedder()
    if cache_dir:
        embedder = CachedEmbedder(embedder, Path(cache_dir))
    engine = MatchEngine(tempfile.mkdtemp(prefix="feedback-sim-"), embedder=embedder, sentence_vectors=False)
    engine.rebuild("need", [Doc(nid[n["key"]], n["title"], need_text(n)) for n in needs])
    engine.rebuild("capability", [Doc(cid[c["key"]], c["title"], cap_text(c)) for c in caps])
    full = {nid[n["key"]]: n["title"] + "\n" + need_text(n) for n in needs}
    rankings = {i: [(m.doc_id, float(m.score)) for m in engine.search("capability", [full[i]], k=k, evidence=False)]
                for i in truth}
    ids = sorted(truth)
    train, test = ids[0::2], ids[1::2]
    declined = defaultdict(list)
    for i in train:
        for doc_id, _score in rankings[i][:top]:
            if doc_id not in truth[i]:
                declined[doc_id].append(i)
    vecs = need_vectors(engine, ids)

    def summary(r):
        r = np.asarray(r, dtype=float)
        return {"mrr": round(float(np.mean(np.where(r <= k, 1.0 / r, 0.0))), 4),
                "recall@1": round(float(np.mean(r <= 1)), 4), "recall@3": round(float(np.mean(r <= 3)), 4),
                "mean_rank": round(float(np.mean(r)), 3)}

    def rank_of(order, t):
        return order.index(t) + 1 if t in order else k + 1

    before = [rank_of([d for d, _ in rankings[i]], t) for i in test for t in truth[i]]
    runs = []
    for floor in floors:
        for weight in weights:
            after, demoted = [], 0
            for i in test:
                adj = []
                for doc_id, score in rankings[i]:
                    others = declined.get(doc_id, [])
                    d = demotion(vecs[i], np.stack([vecs[n] for n in others]), floor, weight) if others else 0.0
                    demoted += d > 0
                    adj.append((doc_id, score - d))
                order = [d for d, _ in sorted(adj, key=lambda x: -x[1])]
                after += [rank_of(order, t) for t in truth[i]]
            b, a = np.asarray(before), np.asarray(after)
            runs.append({"floor": floor, "weight": weight, "demoted_suggestions": demoted, **summary(after),
                         "improved": int(np.sum(a < b)), "worsened": int(np.sum(a > b))})
    return {"model": embedder.model_id, "train_needs": len(train), "test_needs": len(test),
            "declines": sum(len(v) for v in declined.values()), "declined_capabilities": len(declined),
            "true_pairs_tested": len(before), "before": summary(before), "after": runs}


if __name__ == "__main__":  # python -m matchmaker.pairings.feedback [seeds_dir]
    import json
    import sys
    print(json.dumps(simulate(*(sys.argv[1:2] or ["seeds"])), indent=2, ensure_ascii=False))
