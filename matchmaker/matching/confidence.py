"""Match confidence: an estimate of the probability that a ranked candidate is relevant, and its band.

The ranking score says how far a candidate stands above a typical document of its language for this
query; it does not say whether the best candidate is any good (the least-bad one of an unrelated pool
still comes first). The confidence is a logistic model over what the ranking itself shows about a
candidate — its score, how far it stands above the next candidate and below the first, the raw
cosine of the texts, and whether it crosses languages — fitted on judged dev sets, never on the
query's own judgements (`matchmaker bench calibrate`, figures and the command in docs/benchmarks.md).

Bands: ``strong`` (confidence ≥ STRONG; the pages present it as a match), ``possible`` (≥ POSSIBLE;
shown as worth a look), ``weak`` (below the floor: not presented as a match anywhere).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

FEATURES = ("bias", "score", "log_gap_next", "behind_top", "cosine", "cross_language")
SCORE_CAP = 8.0   # near-duplicates stand 10+ deviations out; beyond this the score says nothing more

# Fitted with `matchmaker bench calibrate` (docs/benchmarks.md, "Match confidence"); one number per FEATURE.
COEF = (-3.224, 0.339, 1.774, -2.116, 1.859, 0.612)
STRONG = 0.85
POSSIBLE = 0.4
BANDS = ("strong", "possible", "weak")


def features(score: float, next_score: float, top_score: float, cosine: float, cross_language: bool
             ) -> list[float]:
    """The model's inputs for one candidate; ``next_score`` is the score of the candidate ranked after it
    (its own score when none is)."""
    return [1.0, min(float(score), SCORE_CAP), math.log1p(max(float(score) - float(next_score), 0.0)),
            max(float(top_score) - float(score), 0.0), float(cosine), 1.0 if cross_language else 0.0]


def confidence(x: Sequence[float], coef: Sequence[float] = COEF) -> float:
    z = float(np.dot(np.asarray(x, np.float64), np.asarray(coef, np.float64)))
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


def band(conf: float, strong: float = STRONG, possible: float = POSSIBLE) -> str:
    return "strong" if conf >= strong else "possible" if conf >= possible else "weak"


def fit(X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, l2: float = 1.0,
        iterations: int = 50) -> np.ndarray:
    """Weighted, L2-regularised logistic regression by Newton's method (IRLS); returns the coefficients."""
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, np.float64)
    b = np.zeros(X.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ b, -40, 40)))
        hessian = (X.T * (w * p * (1 - p))) @ X + l2 * np.eye(len(b))
        step = np.linalg.solve(hessian, X.T @ (w * (p - y)) + l2 * b)
        b -= step
        if np.abs(step).max() < 1e-8:
            break
    return b
