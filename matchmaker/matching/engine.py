"""MatchEngine: the one entry point the web app, the CLI and the evaluation use.

Per listing kind ("need", "capability") it holds a FAISS vector index, an
incremental BM25 index with the doc texts (for lexical scores and evidence) and
each doc's language. Mutations take a lock; `refresh_if_changed()` lets each
gunicorn worker pick up an index another process saved.
"""
from __future__ import annotations

import pickle
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .bilingual import dictionary, query_terms
from .confidence import band, confidence, features
from .embedders import Embedder, load_embedder, segments_of
from .index import DEFAULT_APPROX_THRESHOLD, IndexLoadError, IndexMissing, VectorIndex, read_meta
from .lexical import LexicalIndex
from .ranking import Evidence, Match, RankParams, aggregate, centre, fuse, neighbour_bonus
from .text import detect_lang, key_terms, split_sentences, surface_words, tokenize, vagueness  # noqa: F401 (re-export)

KINDS = ("need", "capability")
DOC_SENTENCES = 40    # sentences of a doc considered for evidence
QUERY_SENTENCES = 20
QUERY_MEAN_SAMPLE = 256   # listings per language encoded as queries for the query-side mean
QUERY_MEAN_DRIFT = 0.25   # recompute a group's query-side mean once its size moved this much
QUERY_MEAN_MIN = 20       # fewer listings than this estimate no mean (a handful would hold the query itself)


@dataclass
class Doc:
    id: int
    title: str
    text: str
    lang: str | None = None  # detected from title + text when None

    @property
    def full_text(self) -> str:
        title = (self.title or "").strip()
        return f"{title}\n{self.text or ''}" if title else (self.text or "")


@dataclass
class DocVectors:
    """What the model makes of one doc: everything ``MatchEngine.apply`` needs to index it without a model call
    (the app stores these in its database, ``indexing.vectors``)."""
    id: int
    text: str          # Doc.full_text
    lang: str
    vector: np.ndarray                 # float32 (dim,)
    query_vector: np.ndarray | None    # float32 (dim,): the text encoded as a query (query-side means)
    sentences: np.ndarray | None       # float16 (n, dim): its evidence sentences


class _Kind:
    """Everything stored for one listing kind."""

    def __init__(self, dim: int, model_id: str, approx_threshold: int) -> None:
        self.vectors = VectorIndex(dim, model_id, approx_threshold=approx_threshold)
        self.lexical = LexicalIndex()
        self.texts: dict[int, str] = {}
        self.langs: dict[int, str] = {}
        self.sentences: dict[int, np.ndarray] = {}  # doc id -> float16 vectors of its evidence sentences
        self.query_vecs: dict[int, np.ndarray] = {}  # doc id -> its text encoded as a query (stored mode)
        self.seq = 0  # the newest stored-vector sequence applied to this kind (stored mode)
        # language -> mean of a sample of this kind's texts encoded as *queries*, and the language's size
        # then: the query-side population mean when this kind's listings (or drafts) search
        self.query_means: dict[str, np.ndarray] = {}
        self.query_means_size: dict[str, int] = {}
        self.version: str | None = None
        # group -> (lexical rows, centred vectors, mean vector) of the background sample
        self._bg: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None

    def invalidate(self) -> None:
        self._bg = None

    def by_lang(self) -> dict[str, list[int]]:
        """Doc ids per language."""
        out: dict[str, list[int]] = {}
        for doc_id, lang in self.langs.items():
            out.setdefault(lang, []).append(doc_id)
        return out

    def groups(self, min_group: int) -> dict[str, list[int]]:
        """Doc ids per language group large enough to stand alone, plus '*' with every doc."""
        groups = {g: ids for g, ids in self.by_lang().items() if len(ids) >= min_group}
        groups["*"] = list(self.langs)
        return groups

    def background(self, size: int, min_group: int, segments, centred: bool
                   ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """Per language group: (lexical rows, vectors, mean) of a fixed random sample; '*' pools all.

        With `centred` the vectors come back centred on the sample's mean (which estimates the group's)."""
        if self._bg is None:
            rng = np.random.default_rng(0)
            bg = {}
            for g, ids in self.groups(min_group).items():
                ids_arr = np.asarray(sorted(ids), np.int64)
                if len(ids_arr) > size:
                    ids_arr = np.sort(rng.choice(ids_arr, size, replace=False))
                rows = np.asarray([self.lexical.row_of[int(i)] for i in ids_arr], np.int64)
                vecs = self.vectors.reconstruct(ids_arr)
                mean = vecs.mean(0) if centred and len(vecs) else None
                bg[g] = (rows, centre(vecs, mean, segments), mean)
            self._bg = bg
        return self._bg


class MatchEngine:
    def __init__(self, index_dir: str | Path | None = None, embedder: Embedder | None = None,
                 params: RankParams | None = None,
                 approx_threshold: int = DEFAULT_APPROX_THRESHOLD, sentence_vectors: bool = True,
                 stored_vectors: bool = False) -> None:
        """`index_dir=None` keeps everything in memory (evaluation, tests).

        sentence_vectors: embed each doc's sentences when it is indexed, so the evidence of a match page
        costs no model call (the background indexer pays instead); evaluation runs without evidence skip it.

        stored_vectors: the docs' vectors come from a store (``embed`` makes them, ``apply`` indexes them), each
        doc also carries its text encoded as a query, and the query-side means are computed from those, as a
        function of the current docs alone: two engines holding the same docs rank identically, however
        each got there (built at once, or changed doc by doc). The files in `index_dir` are then only a
        snapshot (``snapshot_seq``).
        """
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self.sentence_vectors = sentence_vectors
        self.stored_vectors = stored_vectors
        self.embedder = embedder or load_embedder()
        self.params = params or RankParams()
        self.approx_threshold = approx_threshold
        self._lock = threading.RLock()
        self.apply_lock = threading.Lock()  # one catch-up with the store at a time (stored mode)
        self.applied_seq = 0  # the store's sequence this engine holds everything up to (stored mode)
        self._kinds: dict[str, _Kind] = {}
        self._sentence_cache: dict[str, np.ndarray] = {}
        self.load_status: dict[str, str] = {}
        if self.params.translate:
            dictionary()  # parsed once per process, here rather than in the first request
        for kind in KINDS:
            self._load(kind)

    # -- persistence -----------------------------------------------------
    def _new_kind(self) -> _Kind:
        return _Kind(self.embedder.dim, self.embedder.model_id, self.approx_threshold)

    def _load(self, kind: str) -> None:
        """Load `kind` from disk; on a missing/corrupt/stale index start empty and record why."""
        if self.index_dir is None:
            self._kinds.setdefault(kind, self._new_kind())
            self.load_status[kind] = "memory"
            return
        try:
            vectors, meta, blobs = VectorIndex.load(self.index_dir, kind, self.embedder.model_id,
                                                    self.embedder.dim, self.approx_threshold)
            state = pickle.loads(blobs["docs"])
            st = self._new_kind()
            st.vectors, st.lexical, st.texts, st.langs = vectors, state["lexical"], state["texts"], state["langs"]
            st.sentences = state.get("sentences", {})  # indexes saved before sentence vectors: computed on use
            st.query_means = state.get("query_means", {})  # saved before centring: computed on first search
            st.query_means_size = state.get("query_means_size", {})
            st.query_vecs = state.get("query_vecs", {})
            st.seq = int(state.get("seq", 0))
            st.version = f"seq-{st.seq}" if self.stored_vectors else meta.version
            if len(st.texts) != len(vectors):
                raise IndexLoadError(f"{kind}: {len(st.texts)} texts but {len(vectors)} vectors")
            self._kinds[kind] = st
            self.load_status[kind] = "ok"
        except (IndexLoadError, KeyError, pickle.UnpicklingError, EOFError) as exc:
            self._kinds[kind] = self._new_kind()
            self.load_status[kind] = ("missing" if isinstance(exc, IndexMissing) else "needs_rebuild") + f": {exc}"

    def kinds(self) -> list[str]:
        return list(self._kinds)

    def kind_seq(self, kind: str) -> int:
        return self._kind(kind).seq

    def reset(self) -> None:
        """Empty every kind (stored mode: before building from the store)."""
        with self._lock:
            for kind in KINDS:
                self._kinds[kind] = self._new_kind()
                self.load_status[kind] = "memory" if self.index_dir is None else "ok"
            self.applied_seq = 0

    def mark_applied(self, seq: int) -> None:
        """Stored mode: this engine now holds every stored row up to ``seq`` (its version, the snapshot's)."""
        with self._lock:
            self.applied_seq = int(seq)
            for st in self._kinds.values():
                st.seq = int(seq)
                if self.stored_vectors:
                    st.version = f"seq-{int(seq)}"

    def needs_rebuild(self) -> list[str]:
        """Kinds whose stored index was missing, corrupt or built with another model."""
        return [k for k, s in self.load_status.items() if s not in ("ok", "memory")]

    def save(self, kind: str) -> None:
        if self.index_dir is None:
            return
        with self._lock:
            st = self._kinds[kind]
            docs = pickle.dumps({"lexical": st.lexical, "texts": st.texts, "langs": st.langs,
                                 "sentences": st.sentences, "query_means": st.query_means,
                                 "query_means_size": st.query_means_size, "query_vecs": st.query_vecs,
                                 "seq": st.seq}, protocol=pickle.HIGHEST_PROTOCOL)
            meta = st.vectors.save(self.index_dir, kind, extra_files={"docs": docs})
            if not self.stored_vectors:
                st.version = meta.version
            self.load_status[kind] = "ok"

    def refresh_if_changed(self) -> list[str]:
        """Reload kinds whose sidecar on disk names another version; returns the reloaded kinds."""
        if self.index_dir is None:
            return []
        reloaded = []
        for kind in KINDS:
            try:
                on_disk = read_meta(self.index_dir, kind).version
            except IndexLoadError:
                continue
            if on_disk != self._kinds[kind].version:
                with self._lock:
                    self._load(kind)
                reloaded.append(kind)
        return reloaded

    # -- mutation --------------------------------------------------------
    def _kind(self, kind: str) -> _Kind:
        if kind not in self._kinds:
            raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
        return self._kinds[kind]

    def upsert(self, kind: str, doc: Doc, save: bool = True) -> None:
        self.upsert_many(kind, [doc], save=save)

    def upsert_many(self, kind: str, docs: Sequence[Doc], save: bool = True, batch: int = 256,
                    progress: bool = False) -> None:
        st = self._kind(kind)
        ids = [int(d.id) for d in docs]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate doc ids")
        if self.stored_vectors:
            for s in range(0, len(docs), batch):
                self.apply(kind, self.embed(docs[s:s + batch]))
            if save:
                self.save(kind)
            return
        bar = _progress(len(docs), f"embedding {kind}", progress)
        for s in range(0, len(docs), batch):
            chunk = docs[s:s + batch]
            texts = [d.full_text for d in chunk]
            vecs = self.embedder.encode_documents(texts)  # slow part: outside the lock
            sentences = self._embed_sentences(texts) if self.sentence_vectors else [None] * len(texts)
            with self._lock:
                st.vectors.add([d.id for d in chunk], vecs)
                for d, text, sv in zip(chunk, texts, sentences, strict=True):
                    st.lexical.add(int(d.id), text)
                    st.texts[int(d.id)] = text
                    st.langs[int(d.id)] = d.lang or detect_lang(text)
                    if sv is None:
                        st.sentences.pop(int(d.id), None)
                    else:
                        st.sentences[int(d.id)] = sv
                st.invalidate()
            bar.update(len(chunk))
        bar.close()
        if save:
            self.save(kind)  # the new docs are matchable now; the query-side means may follow
        if self._refresh_query_means(st) and save:
            self.save(kind)

    def embed(self, docs: Sequence[Doc]) -> list[DocVectors]:
        """The model's work for ``docs`` (no index changes): vectors, query-side vectors, sentence vectors."""
        docs = list(docs)
        if not docs:
            return []
        texts = [d.full_text for d in docs]
        vecs = self.embedder.encode_documents(texts)
        queries = self.embedder.encode_queries(texts) if self.stored_vectors else [None] * len(texts)
        sentences = self._embed_sentences(texts) if self.sentence_vectors else [None] * len(texts)
        return [DocVectors(id=int(d.id), text=text, lang=d.lang or detect_lang(text),
                           vector=np.asarray(v, np.float32), query_vector=None if q is None else np.asarray(q, np.float32),
                           sentences=sv)
                for d, text, v, q, sv in zip(docs, texts, vecs, queries, sentences, strict=True)]

    def apply(self, kind: str, items: Sequence[DocVectors], removed: Iterable[int] = (), seq: int | None = None
              ) -> None:
        """Add or replace ``items`` and remove the ``removed`` ids in place, without a model call; ``seq`` is
        the stored-vector sequence this brings the kind to (its version in stored mode)."""
        st = self._kind(kind)
        items = list(items)
        ids = [int(it.id) for it in items]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate doc ids")
        with self._lock:
            gone = [int(i) for i in removed if int(i) in st.texts]
            if gone:
                st.vectors.remove(gone)
                for doc_id in gone:
                    st.lexical.remove(doc_id)
                    st.texts.pop(doc_id, None)
                    st.langs.pop(doc_id, None)
                    st.sentences.pop(doc_id, None)
                    st.query_vecs.pop(doc_id, None)
            if items:
                st.vectors.add(ids, np.stack([it.vector for it in items]).astype(np.float32))
                for it in items:
                    doc_id = int(it.id)
                    st.lexical.add(doc_id, it.text)
                    st.texts[doc_id] = it.text
                    st.langs[doc_id] = it.lang
                    for store, value in ((st.sentences, it.sentences), (st.query_vecs, it.query_vector)):
                        if value is None:
                            store.pop(doc_id, None)
                        else:
                            store[doc_id] = value
            st.invalidate()
            if seq is not None:
                st.seq = max(st.seq, int(seq))
                if self.stored_vectors:
                    st.version = f"seq-{st.seq}"
            if self.stored_vectors and (items or gone):
                self._stored_query_means(st)

    def _stored_query_means(self, st: _Kind) -> None:
        """Stored mode: each language's query-side mean from the stored query vectors of its sample (the same
        fixed-hash sample as below), recomputed on every change: a function of the current docs alone."""
        st.query_means, st.query_means_size = {}, {}
        if not self.params.centre:
            return
        for lang, ids in st.by_lang().items():
            sample = [i for i in sorted(ids, key=lambda i: ((i * 2654435761) % 4294967296, i))
                      if i in st.query_vecs][:QUERY_MEAN_SAMPLE]
            if sample:
                st.query_means[lang] = np.stack([st.query_vecs[i] for i in sample]).astype(np.float64) \
                    .mean(0).astype(np.float32)
                st.query_means_size[lang] = len(ids)

    def _refresh_query_means(self, st: _Kind) -> bool:
        """Re-encode (as queries) a sample of each language whose size drifted since its mean was taken.

        Sampling by a fixed hash of the id keeps the sample stable as listings come and go, so a
        mean changes only when the population does."""
        if not self.params.centre or self.stored_vectors:  # stored mode keeps them current in apply()
            return False
        with self._lock:
            by_lang = st.by_lang()
            stale = {lang: sorted(ids, key=lambda i: (i * 2654435761) % 4294967296)[:QUERY_MEAN_SAMPLE]
                     for lang, ids in by_lang.items()
                     if lang not in st.query_means
                     or abs(len(ids) - st.query_means_size.get(lang, 0)) > QUERY_MEAN_DRIFT * st.query_means_size[lang]}
            texts = {lang: [st.texts[i] for i in ids] for lang, ids in stale.items()}
            gone = set(st.query_means) - set(by_lang)
        if not stale and not gone:
            return False
        means = {lang: self.embedder.encode_queries(t).mean(0) for lang, t in texts.items()}  # outside the lock
        with self._lock:
            for lang in gone:
                st.query_means.pop(lang, None)
                st.query_means_size.pop(lang, None)
            for lang, mean in means.items():
                st.query_means[lang] = mean.astype(np.float32)
                st.query_means_size[lang] = len(by_lang[lang])
        return True

    def refresh_query_means(self, save: bool = True) -> list[str]:
        """Bring every kind's query-side means up to date (an index saved before they existed has none);
        returns the kinds whose means changed. Run at startup, so no request pays for the encoding."""
        changed = [kind for kind, st in self._kinds.items() if self._refresh_query_means(st)]
        for kind in changed if save else ():
            self.save(kind)
        return changed

    def _query_mean(self, st: _Kind, lang: str) -> np.ndarray | None:
        """The query-side population mean for a query text of `lang`: its language's, if that group is
        large enough, else the size-weighted mean of all languages; None while the population is small."""
        if sum(st.query_means_size.values()) < QUERY_MEAN_MIN:
            return None
        if st.query_means_size.get(lang, 0) >= QUERY_MEAN_MIN:
            return st.query_means[lang]
        sizes = np.array([st.query_means_size[g] for g in st.query_means], np.float32)
        return (np.stack(list(st.query_means.values())) * sizes[:, None]).sum(0) / max(float(sizes.sum()), 1.0)

    def remove(self, kind: str, doc_id: int, save: bool = True) -> bool:
        st = self._kind(kind)
        if self.stored_vectors:
            found = int(doc_id) in st.texts
            self.apply(kind, [], [int(doc_id)])
            if save and found:
                self.save(kind)
            return found
        with self._lock:
            found = st.vectors.remove([int(doc_id)]) > 0
            st.lexical.remove(int(doc_id))
            st.texts.pop(int(doc_id), None)
            st.langs.pop(int(doc_id), None)
            st.sentences.pop(int(doc_id), None)
            st.invalidate()
        if save and found:
            self.save(kind)
        if found and self._refresh_query_means(st) and save:
            self.save(kind)
        return found

    def rebuild(self, kind: str, docs: Iterable[Doc], progress: bool = False) -> None:
        """Replace the whole kind with `docs` (e.g. after a model change) and save it."""
        docs = list(docs)
        fresh = self._new_kind()
        if len(docs) > self.approx_threshold:
            fresh.vectors.approx_threshold = 1 << 62  # add flat, convert once at the end
        old, self._kinds[kind] = self._kinds[kind], fresh
        try:
            self.upsert_many(kind, docs, save=False, batch=512, progress=progress)
            if len(docs) > self.approx_threshold:
                v = fresh.vectors
                ids = v.ids()
                v.index = VectorIndex.build_ivf(v.dim, v.reconstruct(ids), ids, nprobe=v.nprobe)
                v.approx_threshold = self.approx_threshold
        except BaseException:
            self._kinds[kind] = old
            raise
        self.save(kind)

    # -- queries ---------------------------------------------------------
    def doc_ids(self, kind: str) -> set[int]:
        """Ids held for `kind`, so the app can reconcile the index with its database."""
        with self._lock:
            return set(self._kind(kind).texts)

    def doc_texts(self, kind: str) -> dict[int, str]:
        """id -> the text indexed for it (title and body), so a reconcile also finds listings changed
        while no index job recorded it."""
        with self._lock:
            return dict(self._kind(kind).texts)

    def doc_langs(self, kind: str) -> dict[int, str]:
        with self._lock:
            return dict(self._kind(kind).langs)

    def versions(self) -> tuple:
        """(kind, version) of every loaded index: changes whenever what a search can return may change."""
        return tuple((kind, st.version) for kind, st in self._kinds.items())

    def status(self) -> dict[str, dict]:
        return {kind: {"count": len(st.vectors), "model_id": st.vectors.model_id, "dim": st.vectors.dim,
                       "index_type": st.vectors.index_type, "version": st.version,
                       "languages": _count(st.langs.values()), "load_status": self.load_status.get(kind)}
                for kind, st in self._kinds.items()}

    def search(self, kind: str, query_texts: Sequence[str] | str, k: int = 10,
               allowed_ids: Iterable[int] | None = None, query_lang: str | None = None,
               evidence: bool = True, query_vectors: np.ndarray | None = None,
               query_kind: str | None = None) -> list[Match]:
        """Rank docs of `kind` for a query made of one or several texts (a profile).

        allowed_ids: the hard filters, computed by the caller (None = everything).
        query_lang: informational; each doc is calibrated against its own language group.
        query_kind: the population the query comes from, whose mean centres the query; by default
        the other kind (a need searching capabilities is centred on the needs).
        """
        if isinstance(query_texts, str):
            query_texts = [query_texts]
        query_texts = [t for t in query_texts if t and t.strip()]
        st = self._kind(kind)
        if not query_texts or not len(st.vectors):
            return []
        qv = query_vectors if query_vectors is not None else self.embedder.encode_queries(query_texts)
        p = self.params
        segments = segments_of(self.embedder)
        allowed = None if allowed_ids is None else {int(i) for i in allowed_ids}
        # an index saved before centring existed has no query-side means until refresh_query_means()
        qst = self._kind(query_kind or next(k_ for k_ in KINDS if k_ != kind))
        terms = [query_terms(text, p.translate) for text in query_texts]
        query_langs = [detect_lang(text) for text in query_texts]
        with self._lock:
            lex = [st.lexical.score_rows(t) for t in terms]
            cand = self._candidates(st, qv, lex, allowed, p)
            if not len(cand):
                return []
            bg = st.background(p.background, p.min_group, segments, p.centre)
            cvecs = st.vectors.reconstruct(cand)
            groups = np.array([st.langs.get(int(i), "other") for i in cand])
            rows_c = np.array([st.lexical.row_of[int(i)] for i in cand])
            raw_cos = qv @ cvecs.T                                     # (texts, cands), shown as evidence
            if p.centre:
                cvecs = centre(cvecs, np.stack([bg[g if g in bg else "*"][2] for g in groups]), segments)
                zero = np.zeros(qv.shape[1], np.float32)
                qv = centre(qv, np.stack([_or(self._query_mean(qst, lang), zero) for lang in query_langs]),
                            segments)
            per_text = []
            raw_lex = []
            dense_all = qv @ cvecs.T                                   # (texts, cands)
            bg_dense_all = {g: qv @ v.T for g, (rows, v, mean) in bg.items()}  # one product per group
            for t, lex_rows in enumerate(lex):
                dense_c, lex_c = dense_all[t], lex_rows[rows_c]
                bg_d = {g: m[t] for g, m in bg_dense_all.items()}
                bg_l = {g: lex_rows[rows] for g, (rows, v, mean) in bg.items()}
                per_text.append(fuse(dense_c, lex_c, groups, bg_d, bg_l, p, query_langs[t]))
                raw_lex.append(lex_c)
            agg = aggregate(per_text, p.aggregate)
            agg["neighbours"] = neighbour_bonus(agg["score"], cvecs, p)
            agg["score"] = agg["score"] + agg["neighbours"]
            ranked = np.argsort(-agg["score"], kind="stable")
            order = ranked[:k]
            best_text = np.stack([pt["score"] for pt in per_text]).argmax(0)
            top_score = float(agg["score"][ranked[0]])
            matches = []
            for pos, j in enumerate(order):
                doc_id, bt = int(cand[j]), int(best_text[j])
                score = float(agg["score"][j])
                next_score = float(agg["score"][ranked[pos + 1]]) if pos + 1 < len(ranked) else score
                cross = query_langs[bt] in ("zh", "en") and str(groups[j]) in ("zh", "en") \
                    and query_langs[bt] != str(groups[j])
                conf = confidence(features(score, next_score, top_score, float(raw_cos[bt][j]), cross))
                m = Match(doc_id=doc_id, score=score,
                          components={c: float(agg[c][j])
                                      for c in ("dense", "lexical", "calibration", "neighbours")},
                          lang=str(groups[j]),
                          raw={"cosine": float(raw_cos[bt][j]), "bm25": float(raw_lex[bt][j]),
                               "cross_language": float(cross)},
                          confidence=conf, band=band(conf))
                if evidence:
                    m.evidence = self._evidence(st, doc_id, query_texts, bt)
                matches.append(m)
        return matches

    def _candidates(self, st: _Kind, qv: np.ndarray, lex: list[np.ndarray], allowed: set[int] | None,
                    p: RankParams) -> np.ndarray:
        """Union of the dense and the lexical shortlists of every query text."""
        if allowed is not None and len(allowed) <= 4 * p.shortlist:
            # a small filtered pool is scored whole: nothing can fall off a shortlist
            return np.asarray(sorted(i for i in allowed if i in st.texts), np.int64)
        _, dense_ids = st.vectors.search(qv, p.shortlist, allowed_ids=allowed)
        cand = set(int(i) for i in dense_ids.ravel() if i >= 0)
        row_ids = np.asarray(st.lexical.row_ids, np.int64)
        mask = None if allowed is None else np.isin(row_ids, np.fromiter(allowed, np.int64, len(allowed)))
        for scores in lex:
            if mask is not None:
                scores = np.where(mask, scores, 0.0)
            cand.update(int(row_ids[r]) for r in _top_rows(scores, row_ids, p.shortlist) if scores[r] > 0)
        return np.asarray(sorted(cand), np.int64)

    def similar(self, kind: str, text: str, k: int = 5, exclude_id: int | None = None) -> list[Match]:
        """Possible duplicates for the posting assistant: same ranking, evidence included."""
        allowed = None
        if exclude_id is not None:
            allowed = [i for i in self._kind(kind).texts if i != int(exclude_id)]
        return self.search(kind, [text], k=k, allowed_ids=allowed, query_kind=kind)  # a draft of the same kind

    # -- evidence --------------------------------------------------------
    def _sentence_vectors(self, sentences: list[str]) -> np.ndarray:
        missing = [s for s in dict.fromkeys(sentences) if s not in self._sentence_cache]
        if missing:
            if len(self._sentence_cache) > 20_000:
                self._sentence_cache.clear()
            for s, v in zip(missing, self.embedder.encode_documents(missing), strict=True):
                self._sentence_cache[s] = v
        return np.stack([self._sentence_cache[s] for s in sentences])

    def _embed_sentences(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per text, float16 vectors of its evidence sentences (one model call for the whole batch)."""
        split = [split_sentences(t, limit=DOC_SENTENCES) for t in texts]
        flat = [s for parts in split for s in parts]
        vecs = self.embedder.encode_documents(flat).astype(np.float16) if flat else None
        out, pos = [], 0
        for parts in split:
            out.append(vecs[pos:pos + len(parts)] if vecs is not None else np.zeros((0, self.embedder.dim),
                                                                                   np.float16))
            pos += len(parts)
        return out

    def _doc_sentence_vectors(self, st: _Kind, doc_id: int, sentences: list[str]) -> np.ndarray:
        stored = st.sentences.get(doc_id)
        if stored is not None and len(stored) == len(sentences):
            return stored.astype(np.float32)
        return self._sentence_vectors(sentences)

    def _evidence(self, st: _Kind, doc_id: int, query_texts: Sequence[str], text_index: int) -> Evidence:
        qs = split_sentences(query_texts[text_index], limit=QUERY_SENTENCES)
        ds = split_sentences(st.texts.get(doc_id, ""), limit=DOC_SENTENCES)
        if qs and ds:
            sims = self._sentence_vectors(qs) @ self._doc_sentence_vectors(st, doc_id, ds).T
            best = np.unravel_index(int(np.argmax(sims)), sims.shape)
            sim = float(sims[best])
        else:
            best, sim = (0, 0), 0.0
        doc_terms, query = st.lexical.terms_of(doc_id), " ".join(query_texts)
        terms = key_terms(query, doc_terms)
        if self.params.translate:  # across languages: "无人机 → drone"
            terms += dictionary().shared_translations(query, doc_terms,
                                                      surface=surface_words(st.texts.get(doc_id, "")))
        terms = terms[:10]
        return Evidence(query_sentence=qs[best[0]] if qs else "", doc_sentence=ds[best[1]] if ds else "",
                        sentence_similarity=round(sim, 4), shared_terms=terms, query_text_index=text_index)


def _top_rows(scores: np.ndarray, row_ids: np.ndarray, k: int) -> np.ndarray:
    """The rows of the ``k`` highest scores; ties at the cut go to the smallest doc ids, so the shortlist does not
    depend on the order the rows were added in (engines holding the same docs agree)."""
    if len(scores) <= k:
        return np.arange(len(scores))
    cut = -np.partition(-scores, k - 1)[k - 1]
    above = np.flatnonzero(scores > cut)
    tied = np.flatnonzero(scores == cut)
    if len(above) + len(tied) > k:
        tied = tied[np.argsort(row_ids[tied], kind="stable")][:k - len(above)]
    return np.concatenate([above, tied])


def _or(value: np.ndarray | None, default: np.ndarray) -> np.ndarray:
    return default if value is None else value


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="doc")
