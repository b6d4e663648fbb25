"""Click commands for the matching engine: `eval`, `bench search`, `bench embed`, and `rebuild_all`.

None of them needs the Flask app or its database. The app registers them:
    app.cli.add_command(eval_command); app.cli.add_command(bench_group)
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Iterable, Mapping

import click
import numpy as np

from .engine import KINDS, Doc, MatchEngine

ENV_INDEX_DIR = "MATCHMAKER_INDEX_DIR"
ENV_EMBED_CACHE = "MATCHMAKER_EMBED_CACHE"
SAMPLE_TEXTS = [
    "我们需要提升锂电池在零下20度环境下的放电性能", "Low-temperature electrolyte formulation for lithium batteries",
    "工厂印染废水色度高、COD超标，希望找到低成本处理工艺", "Advanced oxidation for refractory dye wastewater",
    "生产线上的产品表面划痕靠人工目检，效率低、漏检多", "Deep-learning machine vision for surface defect inspection",
    "希望降低注塑件的翘曲变形，提高良品率", "Finite-element simulation of injection moulding warpage",
    "寻求高导热绝缘材料用于功率模块封装", "Thermally conductive ceramic fillers for power electronics",
    "农产品冷链运输损耗大，需要保鲜技术", "Modified-atmosphere packaging extends fruit shelf life",
    "钢结构焊缝需要自动化无损检测", "Phased-array ultrasonic testing of weld seams",
    "希望用大数据预测设备故障，减少停机", "Predictive maintenance from vibration signals with machine learning",
]


def default_index_dir() -> Path:
    env = os.environ.get(ENV_INDEX_DIR)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "embeddings"


def _embedder(model: str | None, cache: str | None):
    from .embedders import CachedEmbedder, EnsembleEmbedder, load_embedder

    emb = load_embedder(model)
    cache = cache or os.environ.get(ENV_EMBED_CACHE)
    if not cache:
        return emb
    if isinstance(emb, EnsembleEmbedder):  # cache per member, so a weight change reuses the vectors
        return EnsembleEmbedder([CachedEmbedder(m, Path(cache)) for m in emb.members], emb.weights)
    return CachedEmbedder(emb, Path(cache))


def rebuild_all(docs_by_kind: Mapping[str, Iterable[Doc | Mapping]], progress: bool = True,
                index_dir: str | Path | None = None, engine: MatchEngine | None = None) -> dict:
    """Rebuild and save every kind from the database rows; returns `engine.status()`.

    Rows may be `Doc`s or mappings with id, title, text and optional lang.
    """
    engine = engine or MatchEngine(index_dir or default_index_dir())
    for kind, rows in docs_by_kind.items():
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        docs = [r if isinstance(r, Doc) else Doc(id=int(r["id"]), title=r.get("title") or "",
                                                   text=r.get("text") or "", lang=r.get("lang"))
                for r in rows]
        engine.rebuild(kind, docs, progress=progress)
    return engine.status()


def _emit(result: dict, as_json: bool) -> None:
    for key, value in result.items():
        if not as_json:
            click.echo(f"{key:>18}: {value}")
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))


@click.command("eval")
@click.option("--corpus", required=True, type=click.Path(dir_okay=False), help="BEIR corpus.jsonl")
@click.option("--queries", required=True, type=click.Path(dir_okay=False), help="BEIR queries.jsonl")
@click.option("--qrels", required=True, type=click.Path(dir_okay=False), help="qrels TSV with header")
@click.option("--rerank-judged", is_flag=True, help="rank only the docs judged for each query")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object as the last line")
@click.option("--model", default=None, help="embedder: use, e5, use+e5 or a sentence-transformers name/path")
@click.option("--embed-cache", default=None, type=click.Path(file_okay=False),
              help=f"reuse vectors across runs (env {ENV_EMBED_CACHE})")
@click.option("--aggregate", type=click.Choice(["max", "mean", "top2"]), default=None,
              help="how a profile's texts combine (default: engine setting)")
@click.option("--param", "overrides", multiple=True, metavar="NAME=VALUE",
              help="override a ranking parameter for an ablation, e.g. --param smooth_weight=0 (repeatable)")
def eval_command(corpus, queries, qrels, rerank_judged, as_json, model, embed_cache, aggregate, overrides):
    """Evaluate matching on BEIR files in memory, with the web app's ranking code (no database)."""
    import dataclasses

    from .evaluation import EvalInputError, evaluate, load_beir, warn
    from .ranking import RankParams

    try:
        data = load_beir(Path(corpus), Path(queries), Path(qrels))
    except EvalInputError as exc:
        raise click.UsageError(str(exc)) from None
    for note in data.notes:
        warn(note)
    if not any(any(g > 0 for g in r.values()) for r in data.qrels.values()):
        raise click.UsageError(f"{qrels}: no positive judgement matches the queries and corpus")
    params = _rank_params(RankParams(), overrides)
    if aggregate:
        params = dataclasses.replace(params, aggregate=aggregate)
    try:
        result = evaluate(data, _embedder(model, embed_cache), params, rerank_judged=rerank_judged,
                          progress=not as_json and sys.stderr.isatty())
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:
        raise click.ClickException(f"evaluation failed: {exc}") from None
    _emit(result, as_json)


def _rank_params(params, overrides: Iterable[str]):
    """RankParams with NAME=VALUE overrides, each value parsed as the type of the field's default."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(params)}
    changes = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in fields:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE with NAME one of {', '.join(fields)}",
                                     param_hint="--param")
        name, default = name.strip(), getattr(params, name.strip())
        try:
            if isinstance(default, bool):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                changes[name] = value.lower() in ("true", "1")
            else:
                changes[name] = type(default)(value)
        except ValueError:
            raise click.BadParameter(f"{item!r}: {value!r} is not a {type(default).__name__}",
                                     param_hint="--param") from None
    return dataclasses.replace(params, **changes)


@click.group("bench")
def bench_group():
    """Benchmarks of the matching engine (no database needed)."""


def _read_texts(path: str | None, limit: int, param_hint: str = "--queries") -> list[str]:
    """Up to about ``limit`` texts from a JSON Lines file, each line an object with a string ``text`` or a list
    of strings ``texts``; anything else is a usage error naming the line (read before any model loads)."""
    if not path:
        return SAMPLE_TEXTS
    texts = []
    try:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    raise click.BadParameter(f"line {lineno}: not valid JSON", param_hint=param_hint) from None
                texts.extend(_line_texts(obj, lineno, param_hint))
                if len(texts) >= limit:
                    break
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path}: not UTF-8 text", param_hint=param_hint) from None
    except OSError as exc:
        raise click.BadParameter(f"{path}: {exc.strerror or exc}", param_hint=param_hint) from None
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise click.BadParameter("no texts found", param_hint=param_hint)
    return texts


def _line_texts(obj, lineno: int, param_hint: str) -> list[str]:
    """The texts of one line: its list of strings ``texts`` when not empty, else its string ``text``."""
    def bad(why: str) -> click.BadParameter:
        return click.BadParameter(f"line {lineno}: {why}", param_hint=param_hint)

    if not isinstance(obj, dict):
        raise bad('not a JSON object (expected {"text": "..."} or {"texts": ["...", ...]})')
    many, one = obj.get("texts"), obj.get("text")
    if many is not None and not (isinstance(many, list) and all(isinstance(t, str) for t in many)):
        raise bad('"texts" is not a list of strings')
    if one is not None and not isinstance(one, str):
        raise bad('"text" is not a string')
    if many is None and one is None:
        raise bad('no "text" or "texts"')
    return many or [one or ""]


def clustered_vectors(bases: np.ndarray, n: int, rng: np.random.Generator, spread: float = 0.6,
                      sub: int = 0) -> np.ndarray:
    """Realistic-looking embeddings: sub-topics around real text vectors, points around sub-topics."""
    d = bases.shape[1]
    sub = sub or max(len(bases), n // 200)
    centres = bases[rng.integers(len(bases), size=sub)] + rng.standard_normal((sub, d), np.float32) * (spread / np.sqrt(d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    pts = centres[rng.integers(sub, size=n)] + rng.standard_normal((n, d), np.float32) * (spread / np.sqrt(d))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    return pts.astype(np.float32)


@bench_group.command("search")
@click.option("--n", "n", type=click.IntRange(1000), default=200_000, show_default=True, help="vectors")
@click.option("--queries", default=None, type=click.Path(exists=True, dir_okay=False),
              help="jsonl texts seeding the clusters")
@click.option("--k", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--nq", type=click.IntRange(10), default=200, show_default=True, help="timed queries")
@click.option("--model", default=None, help="embedder whose vectors seed the clusters")
@click.option("--threads", type=click.IntRange(1), default=None, help="FAISS OpenMP threads (default: all cores)")
@click.option("--json", "as_json", is_flag=True)
def bench_search(n, queries, k, nq, model, threads, as_json):
    """Latency and recall of the index the platform would build at N vectors, vs exact search."""
    import faiss

    from .index import VectorIndex

    texts = _read_texts(queries, 2000)  # a bad file fails before the model loads
    if threads:
        faiss.omp_set_num_threads(threads)
    emb = _embedder(model, None)
    bases = emb.encode_documents(texts)
    d, rng = bases.shape[1], np.random.default_rng(0)
    sub = max(len(bases), n // 200)
    centre_rng = np.random.default_rng(1)
    centres = clustered_vectors(bases, sub, centre_rng, sub=sub)  # fixed sub-topic centres

    def chunk(m: int) -> np.ndarray:
        return clustered_vectors(centres, m, rng, spread=0.6, sub=len(centres))

    vecs = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):
        vecs[s:s + 100_000] = chunk(min(100_000, n - s))
    qs = chunk(nq)
    t0 = time.time()
    vi = VectorIndex(d, emb.model_id)
    vi.add(np.arange(n), vecs)  # one first add: the same size-based choice as the platform
    build_s = time.time() - t0
    vi.search(qs[:5], k)  # warm-up
    lat, cpu, found = [], [], []  # wall time, and this thread's CPU time (what a loaded box inflates less)
    for q in qs:
        t, c = time.perf_counter(), time.thread_time()
        _, ids = vi.search(q[None, :], k)
        lat.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
        found.append(ids[0])
    exact_lat = []
    for q in qs[:min(nq, 30)]:
        t = time.perf_counter()
        faiss.knn(q[None, :], vecs, k, metric=faiss.METRIC_INNER_PRODUCT)  # IndexFlatIP's scan, no copy
        exact_lat.append((time.perf_counter() - t) * 1000)
    _, truth = faiss.knn(qs, vecs, k, metric=faiss.METRIC_INNER_PRODUCT)
    recall = float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)]))
    p50, exact_p50 = float(np.percentile(lat, 50)), float(np.percentile(exact_lat, 50))
    index_bytes = vi.memory_bytes()
    _emit({"n": n, "dim": d, "index_type": vi.index_type,
           "nlist": int(vi.index.nlist) if vi.index_type != "flat" else None, "nprobe": vi.effective_nprobe,
           "threads": faiss.omp_get_max_threads(),
           "p50_ms": round(p50, 3), "p95_ms": round(float(np.percentile(lat, 95)), 3),
           "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 3),
           "recall@10" if k == 10 else f"recall@{k}": round(recall, 4),
           "exact_p50_ms": round(exact_p50, 3), "speedup": round(exact_p50 / max(p50, 1e-9), 1),
           "index_mb": round(index_bytes / 1e6, 1), "flat_mb": round(n * d * 4 / 1e6, 1),
           "index_to_flat": round(index_bytes / (n * d * 4), 3),
           "build_s": round(build_s, 1), "load_avg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
           "model": emb.model_id}, as_json)


@bench_group.command("embed")
@click.option("--texts", "texts_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="jsonl with text/texts (default: built-in short zh/en texts)")
@click.option("--n", "n", type=click.IntRange(1), default=512, show_default=True)
@click.option("--model", default=None, help="embedder spec (default: the platform default)")
@click.option("--json", "as_json", is_flag=True)
def bench_embed(texts_path, n, model, as_json):
    """Embedding throughput (short texts per second) and peak RSS of an embedder."""
    base = _read_texts(texts_path, n, param_hint="--texts")  # a bad file fails before the model loads
    t0 = time.time()
    emb = _embedder(model, None)
    emb.encode_documents(SAMPLE_TEXTS[:4])  # warm-up: lazy weights, thread pools
    load_s = time.time() - t0
    texts = [base[i % len(base)] + ("" if i < len(base) else f" {i}") for i in range(n)]
    t, cpu = time.time(), time.process_time()
    emb.encode_documents(texts)
    secs, cpu = time.time() - t, time.process_time() - cpu
    from .embedders import e5_backend

    _emit({"model": emb.model_id, "e5_backend": e5_backend(), "dim": emb.dim, "texts": n, "avg_chars": round(float(np.mean([len(x) for x in texts])), 1),
           "texts_per_s": round(n / secs, 1),
           # per CPU-second of this process: steadier than wall time when other work shares the cores
           "texts_per_cpu_s": round(n / max(cpu, 1e-9), 1), "load_avg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "load_s": round(load_s, 1)}, as_json)


@bench_group.command("rank")
@click.option("--corpus", required=True, type=click.Path(dir_okay=False), help="BEIR corpus.jsonl (the capabilities)")
@click.option("--queries", required=True, type=click.Path(dir_okay=False), help="BEIR queries.jsonl (the needs)")
@click.option("--n", "n", type=click.IntRange(1), default=300, show_default=True, help="queries timed")
@click.option("--evidence", is_flag=True,
              help="include the evidence step (docs' sentences embedded at build time, as the indexer does)")
@click.option("--model", default=None, help="embedder spec (default: the platform default)")
@click.option("--embed-cache", default=None, type=click.Path(file_okay=False),
              help=f"reuse vectors across runs (env {ENV_EMBED_CACHE})")
@click.option("--param", "overrides", multiple=True, metavar="NAME=VALUE", help="ranking parameter override")
@click.option("--json", "as_json", is_flag=True)
def bench_rank(corpus, queries, n, evidence, model, embed_cache, overrides, as_json):
    """Latency of one ranking (shortlists, centring, fusion, smoothing) with the query already embedded."""
    from .evaluation import BeirData, EvalInputError, build_engine, load_corpus, load_queries
    from .ranking import RankParams

    params = _rank_params(RankParams(), overrides)
    try:
        doc_ids, docs, notes = load_corpus(Path(corpus))
        qs = load_queries(Path(queries), notes)
    except EvalInputError as exc:
        raise click.UsageError(str(exc)) from None
    emb = _embedder(model, embed_cache)
    engine = build_engine(BeirData(doc_ids, docs, qs, {}, notes), emb, params, sentence_vectors=evidence)
    texts = [t for t in (ts[0] for ts in qs.values() if ts)][:n + 10]
    vecs = emb.encode_queries(texts)
    times = []
    for i, text in enumerate(texts):
        t = time.perf_counter()
        engine.search("capability", [text], k=10, evidence=evidence, query_vectors=vecs[i:i + 1])
        times.append((time.perf_counter() - t) * 1000)
    ms = np.asarray(times[10:] if len(times) > 10 else times)  # the first ten warm caches up
    _emit({"docs": len(docs), "queries": int(len(ms)), "p50_ms": round(float(np.percentile(ms, 50)), 2),
           "p95_ms": round(float(np.percentile(ms, 95)), 2), "mean_ms": round(float(ms.mean()), 2),
           "evidence": evidence, "model": emb.model_id,
           "load_avg": [round(x, 2) for x in os.getloadavg()]}, as_json)


@bench_group.command("calibrate")
@click.option("--set", "sets", multiple=True, required=True, metavar="FAMILY:CORPUS:QUERIES:QRELS",
              help="a judged dev set; sets of one family share one weight (repeatable)")
@click.option("--top", type=click.IntRange(1, 20), default=3, show_default=True, help="results per query used")
@click.option("--max-queries", type=click.IntRange(1), default=300, show_default=True,
              help="queries read per set (large sets would otherwise outweigh the rest)")
@click.option("--l2", type=click.FloatRange(0), default=1.0, show_default=True)
@click.option("--model", default=None, help="embedder spec (default: the platform default)")
@click.option("--embed-cache", default=None, type=click.Path(file_okay=False),
              help=f"reuse vectors across runs (env {ENV_EMBED_CACHE})")
@click.option("--json", "as_json", is_flag=True)
def bench_calibrate(sets, top, max_queries, l2, model, embed_cache, as_json):
    """Fit the match-confidence model (matching/confidence.py) on judged dev sets; print its coefficients
    and, per set and threshold, what the strong band would do."""
    from .confidence import COEF, FEATURES, STRONG, fit
    from .evaluation import EvalInputError, band_figures, confidence_rows, load_beir

    emb = _embedder(model, embed_cache)
    per_set = {}
    for spec in sets:
        parts = spec.split(":")
        if len(parts) != 4:
            raise click.BadParameter(f"{spec!r}: expected FAMILY:CORPUS:QUERIES:QRELS", param_hint="--set")
        family, corpus, queries, qrels = parts
        try:
            data = load_beir(Path(corpus), Path(queries), Path(qrels))
        except EvalInputError as exc:
            raise click.UsageError(str(exc)) from None
        per_set[f"{family}:{Path(corpus).parent.name}/{Path(corpus).stem}:{Path(queries).stem}"] = \
            (family, confidence_rows(data, emb, top=top, max_queries=max_queries))
    families = [f for f, _ in per_set.values()]
    X = np.concatenate([r["X"] for _, r in per_set.values()])
    y = np.concatenate([r["relevant"] for _, r in per_set.values()]).astype(np.float64)
    # every family weighs the same, whatever its size
    w = np.concatenate([np.full(len(r["relevant"]), 1.0 / sum(len(q["relevant"]) for g, q in per_set.values()
                                                                if g == f)) for f, r in per_set.values()])
    w *= len(w) / w.sum()
    coef = fit(X, y, w, l2=l2)
    thresholds = sorted({0.5, 0.6, 0.7, 0.8, STRONG, 0.9})
    _emit({"features": list(FEATURES), "coef": [round(float(c), 3) for c in coef],
           "coef_in_use": list(COEF), "families": sorted(set(families)), "rows": int(len(y)),
           "sets": {name: {str(t): band_figures(r, coef, t) for t in thresholds}
                    for name, (_, r) in per_set.items()}}, as_json)


@click.group("matching")
def matching_cli():
    """Standalone entry point: python -m matchmaker.matching.cli eval|bench ..."""


matching_cli.add_command(eval_command)
matching_cli.add_command(bench_group)

if __name__ == "__main__":
    matching_cli()
