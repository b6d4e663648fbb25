"""Score fusion: dense + lexical, calibrated per document language group, aggregated over query texts.

For one query text and a language group g of documents, both signals are
standardised against g's own score distribution for that query (a background
sample of g's documents), fused with a fixed weight, and the fused score is
standardised again within g. So a Chinese need compares an English capability
with other English capabilities first; cross-language cosines, which sit lower
across the board, and lexical scores, which are ~0 across scripts, no longer
decide between languages. The final score reads "standard deviations above a
typical document of that language".

Two corrections around that (measured in docs/benchmarks.md):
- Centring: before the cosine, each model's block of a doc vector loses the mean of its
  language group and a query vector loses the mean of the querying side's population
  (the other kind's listings, encoded as queries). Small multilingual models put every text
  near a common direction per language and genre; a doc close to that direction scores high
  for every query (a "hub"), and centring removes exactly that part.
- Neighbour smoothing: a candidate gains a share of the mean final score of its nearest
  fellow candidates (cluster hypothesis): a doc among other well-scored docs on the same topic
  is more likely on topic than an isolated one that one signal happens to like.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

AGGREGATES = ("max", "mean", "top2")


@dataclass(frozen=True)
class RankParams:
    w_dense: float = 0.85         # lexical weight is 1 - w_dense (tuned on the dev sets, docs/benchmarks.md)
    aggregate: str = "max"        # how several query texts (a profile) combine: any capability may match
    calibrate: bool = True        # per-language-group standardisation of the fused score
    shortlist: int = 200          # candidates per query text from each retriever
    background: int = 1024        # docs per language group used for the score distribution
    min_group: int = 5            # smaller groups borrow the pooled distribution
    centre: bool = True           # subtract population means before the cosine (module docstring)
    smooth_k: int = 10            # neighbours per candidate for score smoothing (0 = off)
    smooth_weight: float = 0.3    # share of the neighbours' mean score added
    smooth_pool: int = 400        # smoothing runs among this many best candidates
    translate: bool = True        # BM25 query terms include their dictionary translations (bilingual.py)
    cross_lex_cap: float = 6.0    # cap on the lexical z-score when the doc's language is not the query's


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
    confidence: float = 0.0   # estimated probability that the candidate is relevant (confidence.py)
    band: str = "weak"        # strong | possible | weak (below the floor)
    features: list[float] = field(default_factory=list)  # the confidence model's inputs (confidence.FEATURES)

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
         params: RankParams, query_lang: str | None = None) -> dict[str, np.ndarray]:
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
        # translated terms are weaker evidence than shared ones: one dictionary hit in a short text
        # would otherwise stand many deviations above the group
        cap = params.cross_lex_cap if query_lang not in (None, "other") and g not in (query_lang, "other") else np.inf
        zd, zl = _standardise(dense[m], bd), np.minimum(_standardise(lexical[m], bl), cap)
        fused = w * zd + (1 - w) * zl
        if params.calibrate:
            ref = w * _standardise(bd, bd) + (1 - w) * np.minimum(_standardise(bl, bl), cap)
            final = _standardise(fused, ref) if ref.std() > 1e-6 else fused
        else:
            final = fused
        out["dense"][m], out["lexical"][m] = w * zd, (1 - w) * zl
        out["calibration"][m] = final - fused
        out["score"][m] = final
    return out


def centre(x: np.ndarray, mean: np.ndarray | None, segments) -> np.ndarray:
    """Subtract `mean` (one vector, or one per row) from each row and rescale every model block to
    its weight's norm (sqrt w).

    Blocks are centred separately so that the ensemble's inner product stays the weighted sum of
    the members' (now centred) cosines."""
    x = np.asarray(x, np.float32)
    if mean is None:
        return x
    out = x - mean.astype(np.float32)
    for start, end, weight in segments:
        block = out[:, start:end]
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        block *= np.float32(np.sqrt(weight)) / np.maximum(norms, 1e-6)
    return out


def neighbour_bonus(scores: np.ndarray, vectors: np.ndarray, params: RankParams) -> np.ndarray:
    """Per candidate: smooth_weight x the mean score of its smooth_k most similar candidates.

    Only the `smooth_pool` best candidates take part (the rest get 0): they are the ones that
    can reach the first page, and the pairwise similarities stay cheap."""
    bonus = np.zeros(len(scores), np.float32)
    if params.smooth_k <= 0 or params.smooth_weight == 0 or len(scores) < 3:
        return bonus
    pool = np.argsort(-scores, kind="stable")[:params.smooth_pool]
    sims = vectors[pool] @ vectors[pool].T
    np.fill_diagonal(sims, -np.inf)
    k = min(params.smooth_k, len(pool) - 1)
    nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    bonus[pool] = params.smooth_weight * scores[pool][nearest].mean(1)
    return bonus


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
