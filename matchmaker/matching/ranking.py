"""Score fusion: dense + lexical, calibrated per document language group, aggregated over query texts.

For one query text and a language group g of documents, both signals are
standardised against g's own score distribution for that query (a background
sample of g's documents), fused with a fixed weight, and the fused score is
standardised again within g. So a Chinese need compares an English capability
with other English capabilities first; cross-language cosines, which sit lower
across the board, and lexical scores, which are ~0 across scripts, no longer
decide between languages. The final score reads "standard deviations above a
typical document of that language".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

AGGREGATES = ("max", "mean", "top2")


@dataclass(frozen=True)
class RankParams:
    w_dense: float = 0.8          # lexical weight is 1 - w_dense; xquad best, csl-dev-large near best (docs/benchmarks.md)
    aggregate: str = "max"        # how several query texts (a profile) combine: any capability may match
    calibrate: bool = True        # per-language-group standardisation of the fused score
    shortlist: int = 200          # candidates per query text from each retriever
    background: int = 1024        # docs per language group used for the score distribution
    min_group: int = 5            # smaller groups borrow the pooled distribution


@dataclass
class Evidence:
    query_sentence: str
    doc_sentence: str
    sentence_similarity: float
    shared_terms: list[str]
    query_text_index: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Match:
    doc_id: int
    score: float
    components: dict[str, float]
    lang: str = "other"
    raw: dict[str, float] = field(default_factory=dict)
    evidence: Evidence | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["evidence"] = self.evidence.to_dict() if self.evidence else None
        return d


def _standardise(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    sd = float(ref.std()) if len(ref) else 0.0
    if sd < 1e-6:
        return np.zeros_like(x, dtype=np.float32)
    return ((x - float(ref.mean())) / sd).astype(np.float32)


def fuse(dense: np.ndarray, lexical: np.ndarray, groups: np.ndarray,
         bg_dense: dict[str, np.ndarray], bg_lexical: dict[str, np.ndarray],
         params: RankParams) -> dict[str, np.ndarray]:
    """Fuse one query text's scores over candidates.

    dense, lexical, groups: per candidate. bg_*: per group, the same signals over that
    group's background docs (groups missing from bg use the pooled '*' entry).
    Returns per-candidate arrays: score, dense, lexical, calibration (score = sum of the last three).
    """
    w = params.w_dense
    out = {k: np.zeros(len(dense), np.float32) for k in ("score", "dense", "lexical", "calibration")}
    for g in np.unique(groups):
        m = groups == g
        key = g if g in bg_dense else "*"
        bd, bl = bg_dense[key], bg_lexical[key]
        zd, zl = _standardise(dense[m], bd), _standardise(lexical[m], bl)
        fused = w * zd + (1 - w) * zl
        if params.calibrate:
            ref = w * _standardise(bd, bd) + (1 - w) * _standardise(bl, bl)
            final = _standardise(fused, ref) if ref.std() > 1e-6 else fused
        else:
            final = fused
        out["dense"][m], out["lexical"][m] = w * zd, (1 - w) * zl
        out["calibration"][m] = final - fused
        out["score"][m] = final
    return out


def aggregate(per_text: list[dict[str, np.ndarray]], how: str) -> dict[str, np.ndarray]:
    """Combine several query texts' fused scores per candidate; components follow the score."""
    if len(per_text) == 1:
        return per_text[0]
    scores = np.stack([p["score"] for p in per_text])          # (texts, cands)
    if how == "max":
        weights = (scores == scores.max(0, keepdims=True)).astype(np.float32)
    elif how == "mean":
        weights = np.ones_like(scores)
    elif how == "top2":
        k = min(2, len(scores))
        thresh = -np.sort(-scores, axis=0)[k - 1:k]
        weights = (scores >= thresh).astype(np.float32)
    else:
        raise ValueError(f"aggregate must be one of {AGGREGATES}")
    weights /= weights.sum(0, keepdims=True)
    return {key: (np.stack([p[key] for p in per_text]) * weights).sum(0) for key in per_text[0]}
