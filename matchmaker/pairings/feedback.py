"""Feedback into ranking: what happened to past pairings adjusts future matches, visibly.

* **Demotion**: when a capability was declined as "not relevant" for some needs, it is demoted for a new need
  by ``DEMOTE_WEIGHT × s`` where ``s`` is how similar the new need is to the most similar of those needs:
  ``s = max(0, (cos − SIMILARITY_FLOOR) / (1 − SIMILARITY_FLOOR))`` over the engine's need vectors (the floor
  removes the baseline similarity any two needs of this domain have).
* **Dismissal** ("not for me" on an expert's suggested needs, ``NeedDismissal``, unless the reason was "no time
  for it now"): counts as the expert's capabilities declined as not relevant for that need, by the same
  formula, the need itself included (similarity 1: a full demotion there); and, on the expert's own
  suggestions, a need is demoted by the same formula for its similarity to the needs they dismissed.
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
from sqlalchemy import func, or_, select

DEMOTE_WEIGHT = 0.5  # floor × weight chosen on the seed simulation, docs/feedback.md
SIMILARITY_FLOOR = 0.6
BOOST_PER_CONTRACT = 0.15
BOOST_CAP = 0.45

NOTE_DEMOTED = _l("demoted: declined as not relevant for a similar need")
NOTE_BOOSTED = _l("boosted: the institute has signed contracts through the platform")
NOTE_DISMISSED = _l("demoted: its expert marked this need or a similar one “not for me”")
NOTE_LIKE_DISMISSED = _l("demoted: like a need you marked “not for me”")
#: dismissals read per expert for their own suggestions (the most recent)
MAX_DISMISSALS = 200


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


def _dismissed_for(cap_ids) -> dict[int, list[int]]:
    """Capability → needs its poster or its expert marked "not for me" for a reason about the fit."""
    from ..accounts.models import ExpertProfile
    from ..extensions import db
    from ..listings.models import Capability
    from .models import RELEVANCE_DISMISSALS, NeedDismissal
    reasons = [r for r in RELEVANCE_DISMISSALS if r is not None]
    rows = db.session.execute(
        select(Capability.id, NeedDismissal.need_id).select_from(Capability)
        .outerjoin(ExpertProfile, ExpertProfile.id == Capability.expert_id)
        .join(NeedDismissal, or_(NeedDismissal.user_id == Capability.created_by_id,
                                 NeedDismissal.user_id == ExpertProfile.user_id))
        .where(Capability.id.in_(list(cap_ids)), or_(NeedDismissal.reason.is_(None),
                                                     NeedDismissal.reason.in_(reasons)))).all()
    out = defaultdict(set)
    for cap_id, need_id in rows:
        out[cap_id].add(need_id)
    return {k: sorted(v) for k, v in out.items()}


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


def _adjust(m, delta: float, notes: list) -> None:
    """Put a feedback delta on a match, visibly; a demoted match is never presented as strong."""
    m.components = {**(m.components or {}), "feedback": round(delta, 4)}
    m.score = float(m.score) + delta
    m.feedback_notes = notes
    # the confidence stays the engine's (a boost never raises the band), but a result declined as not
    # relevant for a similar need is no longer presented as a strong match
    if delta < 0 and m.band == "strong":
        m.band = "possible"


def _texts_of(need_ids) -> dict[int, str]:
    from ..extensions import db
    from ..listings.models import Need
    if not need_ids:
        return {}
    return {n.id: n.matching_text() for n in db.session.scalars(select(Need).where(Need.id.in_(list(need_ids))))}


def apply_feedback(need, matches, engine, capabilities=None):
    """Adjust engine matches for ``need`` by past declines, dismissals and contracts; returns them re-sorted."""
    if not matches:
        return matches
    from ..extensions import db
    from ..listings.models import Capability
    cap_ids = [m.doc_id for m in matches]
    declined = _declined_not_relevant(cap_ids)
    dismissed = _dismissed_for(cap_ids)
    caps = capabilities or {c.id: c for c in db.session.scalars(select(Capability).where(Capability.id.in_(cap_ids)))}
    contracts = _contracts_by_org({c.organization_id for c in caps.values()})
    if not declined and not dismissed and not contracts:
        return matches
    vecs = {}
    if declined or dismissed:
        other_ids = ({n for ns in declined.values() for n in ns} | {n for ns in dismissed.values() for n in ns}) \
            - {need.id}
        texts = {need.id: need.matching_text(), **_texts_of(other_ids)}
        vecs = need_vectors(engine, [need.id, *other_ids], extra=texts)
    for m in matches:
        delta, notes = 0.0, []
        if need.id in vecs:
            # a decline of this very pairing is the pairing's own business; a dismissal of this need counts
            others = [n for n in declined.get(m.doc_id, []) if n != need.id and n in vecs]
            d = demotion(vecs[need.id], np.stack([vecs[n] for n in others])) if others else 0.0
            mine = [n for n in dismissed.get(m.doc_id, []) if n in vecs]
            e = demotion(vecs[need.id], np.stack([vecs[n] for n in mine])) if mine else 0.0
            if max(d, e) > 0:  # one formula over all the needs it was found wrong for: the closest counts
                delta -= max(d, e)
                notes.append(NOTE_DISMISSED if e > d else NOTE_DEMOTED)
        cap = caps.get(m.doc_id)
        b = boost(contracts.get(cap.organization_id, 0)) if cap is not None else 0.0
        if b > 0:
            delta += b
            notes.append(NOTE_BOOSTED)
        if notes:
            _adjust(m, delta, notes)
    return sorted(matches, key=lambda m: -m.score)


def apply_dismissals(user, matches, engine):
    """Adjust the needs suggested to ``user`` (engine matches) by the needs they marked "not for me": each is
    demoted by ``demotion`` over those needs' vectors; returns them re-sorted."""
    if not matches:
        return matches
    from ..extensions import db
    from .models import RELEVANCE_DISMISSALS, NeedDismissal
    reasons = [r for r in RELEVANCE_DISMISSALS if r is not None]
    dismissed = db.session.scalars(
        select(NeedDismissal.need_id).where(NeedDismissal.user_id == user.id, or_(
            NeedDismissal.reason.is_(None), NeedDismissal.reason.in_(reasons)))
        .order_by(NeedDismissal.created_at.desc(), NeedDismissal.id.desc()).limit(MAX_DISMISSALS)).all()
    if not dismissed:
        return matches
    ids = [m.doc_id for m in matches]
    indexed = engine.doc_ids("need")
    vecs = need_vectors(engine, [*dismissed, *ids],
                        extra=_texts_of([n for n in {*dismissed, *ids} if n not in indexed]))
    gone = np.stack([vecs[n] for n in dismissed if n in vecs]) if any(n in vecs for n in dismissed) else None
    for m in matches:
        if gone is None or m.doc_id not in vecs:
            continue
        d = demotion(vecs[m.doc_id], gone)
        if d > 0:
            _adjust(m, -d, [NOTE_LIKE_DISMISSED])
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
