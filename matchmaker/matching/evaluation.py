"""Offline evaluation on BEIR-format files, through the same MatchEngine the web app uses."""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .embedders import Embedder
from .engine import Doc, MatchEngine
from .ranking import RankParams

MAX_CHARS = 20_000  # longer texts are cut: embedders truncate anyway and BM25 gains nothing


class EvalInputError(ValueError):
    """Bad evaluation input; the message names the file and line."""


@dataclass
class BeirData:
    doc_ids: list[str]
    docs: list[Doc]
    queries: dict[str, list[str]]          # query id -> its texts (a profile if several)
    qrels: dict[str, dict[str, int]]       # query id -> doc id -> grade
    notes: list[str] = field(default_factory=list)


def _jsonl(path: Path):
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise EvalInputError(f"{path}: {exc.strerror}") from exc
    with fh:
        lineno = 0
        lines = iter(fh)
        while True:
            try:
                line = next(lines)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise EvalInputError(f"{path}:{lineno + 1}: not UTF-8 text") from exc
            lineno += 1
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise EvalInputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise EvalInputError(f"{path}:{lineno}: expected a JSON object")
            yield lineno, obj


def _id(obj: dict, path: Path, lineno: int) -> str:
    if "_id" not in obj or not isinstance(obj["_id"], (str, int)) or str(obj["_id"]).strip() == "":
        raise EvalInputError(f"{path}:{lineno}: missing or empty \"_id\"")
    return str(obj["_id"])


def _str(value, what: str, path: Path, lineno: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise EvalInputError(f"{path}:{lineno}: \"{what}\" must be a string")
    return value[:MAX_CHARS]


def load_beir(corpus: Path, queries: Path, qrels: Path) -> BeirData:
    doc_ids, docs, notes = load_corpus(corpus)
    qs = load_queries(queries, notes)
    return BeirData(doc_ids, docs, qs, load_qrels(qrels, qs, set(doc_ids), notes), notes)


def load_corpus(corpus: Path) -> tuple[list[str], list[Doc], list[str]]:
    """(BEIR ids, docs numbered 0.., notes) of a corpus file."""
    notes: list[str] = []
    doc_ids: list[str] = []
    docs: list[Doc] = []
    seen: set[str] = set()
    empty_docs = dup_docs = 0
    for lineno, obj in _jsonl(corpus):
        did = _id(obj, corpus, lineno)
        title = _str(obj.get("title"), "title", corpus, lineno)
        text = _str(obj.get("text"), "text", corpus, lineno)
        if did in seen:
            dup_docs += 1  # defined result: the first line with an id wins (public sets have such repeats)
            continue
        seen.add(did)
        if not (title.strip() or text.strip()):
            empty_docs += 1  # kept: an empty doc is a valid (never relevant-looking) candidate
        doc_ids.append(did)
        docs.append(Doc(id=len(docs), title=title, text=text))
    if not docs:
        raise EvalInputError(f"{corpus}: no documents")
    if empty_docs:
        notes.append(f"{empty_docs} empty documents")
    if dup_docs:
        notes.append(f"{dup_docs} repeated corpus ids ignored (first occurrence kept)")
    return doc_ids, docs, notes


def load_queries(queries: Path, notes: list[str]) -> dict[str, list[str]]:
    """Query id -> its texts (several for a profile); repeats and oddities are added to `notes`."""
    qs: dict[str, list[str]] = {}
    dup_q = 0
    for lineno, obj in _jsonl(queries):
        qid = _id(obj, queries, lineno)
        if qid in qs:
            dup_q += 1  # first occurrence wins, as for the corpus
            continue
        if "texts" in obj:
            texts = obj["texts"]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise EvalInputError(f"{queries}:{lineno}: \"texts\" must be a list of strings")
        elif "text" in obj:
            texts = [_str(obj["text"], "text", queries, lineno)]
        else:
            raise EvalInputError(f"{queries}:{lineno}: needs \"text\" or \"texts\"")
        qs[qid] = [t[:MAX_CHARS] for t in texts if t.strip()]
    if not qs:
        raise EvalInputError(f"{queries}: no queries")
    if dup_q:
        notes.append(f"{dup_q} repeated query ids ignored (first occurrence kept)")
    return qs


def load_qrels(qrels: Path, qs: dict[str, list[str]], seen: set[str], notes: list[str]) -> dict[str, dict[str, int]]:
    rels: dict[str, dict[str, int]] = {}
    unknown = 0
    try:
        lines = Path(qrels).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalInputError(f"{qrels}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise EvalInputError(f"{qrels}: not UTF-8 text") from exc
    body = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if not body or body[0][1].split() != ["query-id", "corpus-id", "score"]:
        raise EvalInputError(f"{qrels}:1: header must be 'query-id corpus-id score'")
    for lineno, line in body[1:]:
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 3:
            raise EvalInputError(f"{qrels}:{lineno}: expected 3 columns, got {len(parts)}")
        qid, did, score = (p.strip() for p in parts)
        try:
            grade = int(float(score))
        except ValueError as exc:
            raise EvalInputError(f"{qrels}:{lineno}: score {score!r} is not a number") from exc
        if qid not in qs or did not in seen:
            unknown += 1
            continue
        if did in rels.get(qid, {}) and rels[qid][did] != grade:
            raise EvalInputError(f"{qrels}:{lineno}: conflicting grades for {qid} / {did}")
        rels.setdefault(qid, {})[did] = grade
    if unknown:
        notes.append(f"{unknown} qrels lines name unknown queries or docs (ignored)")
    empty_q = [q for q, t in qs.items() if not t and q in rels]
    if empty_q:
        notes.append(f"{len(empty_q)} judged queries have no text (they score 0)")
    return rels


def ndcg_at(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    dcg = sum((2 ** rel.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in rel.values() if g > 0), reverse=True)[:k]
    idcg = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: list[str], rel: dict[str, int], k: int) -> float:
    pos = {d for d, g in rel.items() if g > 0}
    return len(pos.intersection(ranked[:k])) / len(pos) if pos else 0.0


def mrr_at(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if rel.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def pairwise_accuracy(scores: dict[str, float], rel: dict[str, int]) -> tuple[float, int]:
    """(correct pairs, pairs) over judged docs with different grades; equal scores count half."""
    items = [(rel[d], scores.get(d, -math.inf)) for d in rel]
    correct, pairs = 0.0, 0
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            (gi, si), (gj, sj) = items[i], items[j]
            if gi == gj:
                continue
            pairs += 1
            if si == sj:
                correct += 0.5
            elif (si > sj) == (gi > gj):
                correct += 1
    return correct, pairs


@dataclass(frozen=True)
class FirstResult:
    """What a query's first result was: its grade, the best grade judged in the corpus for the query, and
    whether the engine called it strong."""
    answerable: bool
    grade: int
    best_grade: int
    strong: bool


def first_result_metrics(firsts: list[FirstResult]) -> dict:
    """success@1 (answerable queries whose first result carries their best grade), the answerable and
    answerless counts, and how the strong band behaves: strong_precision (of strong first results, the
    share judged relevant), strong_coverage (answerable queries with a strong, relevant first result),
    answerless_quiet (answerless queries whose first result is not strong). None where nothing is counted."""
    answerable = [f for f in firsts if f.answerable]
    answerless = [f for f in firsts if not f.answerable]
    strong = [f for f in firsts if f.strong]

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        "success@1": share(sum(f.grade == f.best_grade for f in answerable), len(answerable)) or 0.0,
        "answerable": len(answerable), "answerless": len(answerless),
        "strong_precision": share(sum(f.grade > 0 for f in strong), len(strong)),
        "strong_coverage": share(sum(f.strong and f.grade > 0 for f in answerable), len(answerable)) or 0.0,
        "answerless_quiet": share(sum(not f.strong for f in answerless), len(answerless)),
    }


def build_engine(data: BeirData, embedder: Embedder, params: RankParams | None = None,
                 progress: bool = False, sentence_vectors: bool = False) -> MatchEngine:
    """An in-memory engine with the corpus as capabilities and the queries as the needs.

    The queries play the platform's needs: as there, their population's mean centres each query.
    sentence_vectors: embed the docs' sentences up front, as the platform's indexer does for evidence."""
    engine = MatchEngine(None, embedder=embedder, params=params, sentence_vectors=sentence_vectors)
    engine.rebuild("capability", data.docs, progress=progress)
    population = [t for texts in data.queries.values() for t in texts]
    engine.rebuild("need", [Doc(i, "", t) for i, t in enumerate(population)], progress=progress)
    return engine


def evaluate(data: BeirData, embedder: Embedder, params: RankParams | None = None,
             rerank_judged: bool = False, progress: bool = False) -> dict:
    """Ranking quality over the answerable queries, and how the confidence bands behave on all of them.

    A query is *answerable* when at least one of its judged-relevant docs (grade >= 1) is in the corpus,
    *answerless* otherwise (its qrels may name docs that are absent). nDCG, recall, MRR and success@1 are
    over answerable queries; strong_precision, strong_coverage and answerless_quiet read the first
    result's band (matchmaker/matching/confidence.py)."""
    t0 = time.time()
    engine = build_engine(data, embedder, params, progress)
    index_of = {d: i for i, d in enumerate(data.doc_ids)}
    judged = [q for q in data.queries if any(g > 0 for g in data.qrels.get(q, {}).values())]
    answerable = set(judged)
    answerless = [q for q in data.queries if q not in answerable]
    ranked_queries = judged + answerless
    flat = [t for q in ranked_queries for t in data.queries[q]]
    vecs = embedder.encode_queries(flat) if flat else np.zeros((0, embedder.dim), np.float32)
    out = {"ndcg@10": [], "recall@10": [], "recall@100": [], "mrr@10": []}
    firsts: list[FirstResult] = []
    correct = pairs = 0.0
    pos = 0
    for qid in ranked_queries:
        texts = data.queries[qid]
        qv, pos = vecs[pos:pos + len(texts)], pos + len(texts)
        rel = data.qrels.get(qid, {})
        allowed = [index_of[d] for d in rel] if rerank_judged else None
        k = len(allowed) if rerank_judged else 100
        matches = engine.search("capability", texts, k=k, allowed_ids=allowed, evidence=False,
                                query_vectors=qv) if texts and k else []
        ranked = [data.doc_ids[m.doc_id] for m in matches]
        firsts.append(FirstResult(answerable=qid in answerable, grade=rel.get(ranked[0], 0) if ranked else 0,
                                  best_grade=max(rel.values(), default=0),
                                  strong=bool(matches) and matches[0].band == "strong"))
        if qid not in answerable:
            continue
        out["ndcg@10"].append(ndcg_at(ranked, rel))
        out["recall@10"].append(recall_at(ranked, rel, 10))
        out["recall@100"].append(recall_at(ranked, rel, 100))
        out["mrr@10"].append(mrr_at(ranked, rel))
        if rerank_judged:
            c, n = pairwise_accuracy({data.doc_ids[m.doc_id]: m.score for m in matches}, rel)
            correct, pairs = correct + c, pairs + n
    result = {key: round(float(np.mean(v)), 4) if v else 0.0 for key, v in out.items()}
    if rerank_judged:
        result["pairwise_accuracy"] = round(correct / pairs, 4) if pairs else None
    result.update(first_result_metrics(firsts))
    result.update(queries=len(judged), docs=len(data.docs), model=embedder.model_id,
                  seconds=round(time.time() - t0, 2))
    if data.notes:
        result["notes"] = data.notes
    return result


def confidence_rows(data: BeirData, embedder: Embedder, params: RankParams | None = None, top: int = 3,
                    max_queries: int | None = None) -> dict[str, np.ndarray]:
    """Features and relevance of the first ``top`` results of every query with text: the material
    `bench calibrate` fits the confidence model on. Answerless queries count (all their results are
    irrelevant): they are what teaches the model to stay quiet. Keys: X, relevant, query (its number),
    rank, answerable."""
    from .confidence import FEATURES
    engine = build_engine(data, embedder, params)
    qids = [q for q, texts in data.queries.items() if texts][:max_queries]
    rows: dict[str, list] = {"X": [], "relevant": [], "query": [], "rank": [], "answerable": []}
    for n, qid in enumerate(qids):
        matches = engine.search("capability", data.queries[qid], k=top, evidence=False)
        rel = data.qrels.get(qid, {})
        for i, m in enumerate(matches):
            rows["X"].append(m.features)   # the engine's own inputs to the confidence it gave the match
            rows["relevant"].append(rel.get(data.doc_ids[m.doc_id], 0) > 0)
            rows["query"].append(n)
            rows["rank"].append(i)
            rows["answerable"].append(any(g > 0 for g in rel.values()))
    out = {k: np.asarray(v) for k, v in rows.items()}
    out["X"] = out["X"].astype(np.float64).reshape(-1, len(FEATURES))
    return out


def band_figures(rows: dict[str, np.ndarray], coef, strong: float) -> dict:
    """strong_precision / strong_coverage / answerless_quiet of the first results in ``rows`` under
    ``coef`` and the ``strong`` threshold (the same definitions as `evaluate`)."""
    from .confidence import confidence
    first = rows["rank"] == 0
    conf = np.array([confidence(x, coef) for x in rows["X"][first]])
    is_strong, rel, ans = conf >= strong, rows["relevant"][first], rows["answerable"][first]
    return {"strong_precision": round(float(rel[is_strong].mean()), 4) if is_strong.any() else None,
            "strong_coverage": round(float((is_strong & rel)[ans].mean()), 4) if ans.any() else None,
            "answerless_quiet": round(float((~is_strong)[~ans].mean()), 4) if (~ans).any() else None,
            "queries": int(first.sum())}


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)
