"""Incremental BM25 over Han unigrams+bigrams and Latin words.

Postings are append-only Python lists cached as numpy arrays per term; removal
marks a row dead, so an upsert is searchable immediately without a rebuild.
Dead rows are dropped by `compact()` once they outnumber the live ones.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from .text import tokenize


class LexicalIndex:
    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.row_ids: list[int] = []          # row -> doc id
        self.row_of: dict[int, int] = {}      # live doc id -> row
        self.row_terms: list[tuple[str, ...]] = []
        self._alive = np.zeros(0, bool)
        self._len = np.zeros(0, np.float32)
        self._post: dict[str, tuple[list[int], list[int]]] = {}
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.df: Counter[str] = Counter()
        self.total_len = 0.0

    # -- mutation --------------------------------------------------------
    def add(self, doc_id: int, text: str) -> None:
        self.remove(doc_id)
        self._add_counts(int(doc_id), Counter(tokenize(text)))

    def add_many(self, items: Iterable[tuple[int, str]]) -> None:
        for doc_id, text in items:
            self.add(doc_id, text)

    def remove(self, doc_id: int) -> bool:
        row = self.row_of.pop(int(doc_id), None)
        if row is None:
            return False
        self._alive[row] = False
        self.total_len -= float(self._len[row])
        for term in self.row_terms[row]:
            self.df[term] -= 1
        if len(self.row_ids) > 1000 and len(self.row_of) < len(self.row_ids) // 2:
            self.compact()
        return True

    def compact(self) -> None:
        live = [(self.row_ids[r], r) for r in sorted(self.row_of.values())]
        old_post = self._post
        fresh = LexicalIndex(self.k1, self.b)
        # rebuild from stored term frequencies, without re-tokenising
        tf_of_row: dict[int, dict[str, int]] = {r: {} for _, r in live}
        for term, (rows, tfs) in old_post.items():
            for r, c in zip(rows, tfs, strict=True):
                if r in tf_of_row:
                    tf_of_row[r][term] = c
        for doc_id, r in live:
            fresh._add_counts(doc_id, tf_of_row[r])
        self.__dict__.update(fresh.__dict__)

    def _add_counts(self, doc_id: int, tf: dict[str, int]) -> None:
        row = len(self.row_ids)
        self.row_ids.append(doc_id)
        self.row_of[doc_id] = row
        self.row_terms.append(tuple(tf))
        if row >= len(self._alive):
            grow = max(1024, len(self._alive))
            self._alive = np.concatenate([self._alive, np.zeros(grow, bool)])
            self._len = np.concatenate([self._len, np.zeros(grow, np.float32)])
        self._alive[row] = True
        self._len[row] = sum(tf.values())
        self.total_len += float(self._len[row])
        for term, c in tf.items():
            rows, tfs = self._post.setdefault(term, ([], []))
            rows.append(row)
            tfs.append(c)
            self.df[term] += 1

    # -- query -----------------------------------------------------------
    def __len__(self) -> int:
        return len(self.row_of)

    def _arrays(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        rows, tfs = self._post[term]
        cached = self._cache.get(term)
        if cached is None or len(cached[0]) != len(rows):
            cached = (np.asarray(rows, np.int64), np.asarray(tfs, np.float32))
            self._cache[term] = cached
        return cached

    def score_rows(self, query: str | Sequence[str]) -> np.ndarray:
        """BM25 score for every row (dead rows score 0); `query` is text or pre-tokenised terms."""
        terms = tokenize(query) if isinstance(query, str) else list(query)
        n_rows = len(self.row_ids)
        scores = np.zeros(n_rows, np.float32)
        n = len(self.row_of)
        if not n or not terms:
            return scores
        avgdl = max(self.total_len / n, 1.0)
        lens = self._len[:n_rows]
        for term in Counter(terms):
            df = self.df.get(term, 0)
            if df <= 0:
                continue
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            rows, tfs = self._arrays(term)
            denom = tfs + self.k1 * (1 - self.b + self.b * lens[rows] / avgdl)
            scores[rows] += np.float32(idf) * tfs * (self.k1 + 1) / denom
        scores[~self._alive[:n_rows]] = 0.0
        return scores

    def alive_rows(self) -> np.ndarray:
        return np.flatnonzero(self._alive[:len(self.row_ids)])

    def terms_of(self, doc_id: int) -> set[str]:
        row = self.row_of.get(int(doc_id))
        return set(self.row_terms[row]) if row is not None else set()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state
