"""Match confidence and the measurement contract of `eval --json` for it (success@1, answerable, answerless,
strong_precision, strong_coverage, answerless_quiet)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from matchmaker.matching import confidence as conf
from matchmaker.matching.cli import bench_group, eval_command
from matchmaker.matching.evaluation import FirstResult, first_result_metrics

CORPUS = [
    {"_id": "d1", "text": "研究团队在低温电解液配方与负极材料改性方面有成熟技术"},
    {"_id": "d2", "text": "Deep-learning machine vision for surface defect inspection on production lines"},
    {"_id": "d3", "text": "课题组开发了高级氧化耦合生物处理技术，可高效脱色并降解难降解有机物"},
    {"_id": "d4", "text": "Seismic isolation bearings for bridges and tall buildings"},
]
QUERIES = [
    {"_id": "q1", "text": "研究团队在低温电解液配方与负极材料改性方面有成熟技术"},
    {"_id": "q2", "text": "Deep-learning machine vision for surface defect inspection on production lines"},
    {"_id": "q3", "text": "中药材提取工艺放大"},      # its answer is not in this corpus: answerless
    {"_id": "q4", "text": "没有任何判断的查询"},      # no judgement at all: nothing in the corpus answers it
]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq2\td2\t1\nq3\td9\t2\n"


def test_first_result_metrics_by_hand():
    """Is each band key exactly its definition, worked out by hand on six queries?"""
    firsts = [
        FirstResult(answerable=True, grade=2, best_grade=2, strong=True),    # success, strong and relevant
        FirstResult(answerable=True, grade=1, best_grade=2, strong=True),    # relevant but not the best grade
        FirstResult(answerable=True, grade=0, best_grade=1, strong=False),   # miss, rightly not strong
        FirstResult(answerable=True, grade=1, best_grade=1, strong=False),   # success, too shy to be strong
        FirstResult(answerable=False, grade=0, best_grade=0, strong=True),   # answerless, wrongly confident
        FirstResult(answerable=False, grade=0, best_grade=0, strong=False),  # answerless, rightly quiet
    ]
    out = first_result_metrics(firsts)
    assert out["answerable"] == 4 and out["answerless"] == 2
    assert out["success@1"] == 0.5              # the first and the fourth
    assert out["strong_precision"] == 0.6667    # 3 strong firsts, 2 of them relevant
    assert out["strong_coverage"] == 0.5        # 2 of 4 answerable queries
    assert out["answerless_quiet"] == 0.5       # 1 of 2


def test_first_result_metrics_when_nothing_is_counted():
    """With no strong result and no answerless query, are the undefined shares None (not 0 or 1)?"""
    out = first_result_metrics([FirstResult(True, 0, 1, False)])
    assert out["strong_precision"] is None and out["answerless_quiet"] is None
    assert out["success@1"] == 0.0 and out["strong_coverage"] == 0.0


def test_bands_follow_the_thresholds():
    """Does the band read the confidence against STRONG and POSSIBLE, and is the confidence a probability?"""
    assert conf.band(conf.STRONG) == "strong" and conf.band(conf.STRONG - 1e-9) == "possible"
    assert conf.band(conf.POSSIBLE) == "possible" and conf.band(conf.POSSIBLE - 1e-9) == "weak"
    far_ahead = conf.confidence(conf.features(9.0, 2.0, 9.0, 0.9, False))
    lost_in_crowd = conf.confidence(conf.features(2.0, 1.95, 4.0, 0.5, False))
    assert 0.0 < lost_in_crowd < far_ahead < 1.0
    assert conf.band(far_ahead) == "strong" and conf.band(lost_in_crowd) == "weak"


def test_fit_recovers_a_known_model():
    """Does the logistic fit find the coefficients that generated the labels?"""
    rng = np.random.default_rng(7)
    X = np.column_stack([np.ones(20000), rng.normal(size=(20000, 2))])
    truth = np.array([-0.5, 2.0, -1.0])
    y = (rng.random(20000) < 1 / (1 + np.exp(-X @ truth))).astype(float)
    assert np.allclose(conf.fit(X, y, l2=0.0), truth, atol=0.1)


@pytest.fixture(scope="module")
def beir(tmp_path_factory):
    d = tmp_path_factory.mktemp("beir-trust")
    (d / "corpus.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in CORPUS) + "\n")
    (d / "queries.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in QUERIES) + "\n")
    (d / "qrels.tsv").write_text(QRELS)
    return d


def test_eval_json_adds_the_trust_keys(beir, default_embedder):
    """Does `eval --json` keep its keys and add success@1 and the band keys, counting a query whose judged
    answer is absent (and one never judged) as answerless?"""
    res = CliRunner().invoke(eval_command, ["--corpus", str(beir / "corpus.jsonl"), "--queries",
                                            str(beir / "queries.jsonl"), "--qrels", str(beir / "qrels.tsv"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert {"ndcg@10", "recall@10", "recall@100", "mrr@10", "queries", "docs", "model", "seconds"} <= set(out)
    assert out["answerable"] == 2 and out["answerless"] == 2 and out["queries"] == 2
    assert out["success@1"] == 1.0 and out["ndcg@10"] == 1.0   # exact copies: answerless ones do not count
    for key in ("strong_precision", "strong_coverage", "answerless_quiet"):
        assert out[key] is None or 0.0 <= out[key] <= 1.0


def test_engine_results_carry_confidence_and_band(beir, default_embedder):
    """Does every ranked result carry a confidence in [0, 1] and the band it implies, with an exact copy of a
    document more confident than the unrelated documents behind it?"""
    from matchmaker.matching.engine import Doc, MatchEngine
    engine = MatchEngine(None, embedder=default_embedder)
    engine.rebuild("capability", [Doc(i, "", c["text"]) for i, c in enumerate(CORPUS)])
    matches = engine.search("capability", CORPUS[1]["text"], k=4, evidence=False)
    assert matches[0].doc_id == 1
    for m in matches:
        assert 0.0 <= m.confidence <= 1.0 and m.band == conf.band(m.confidence)
        assert m.raw["cross_language"] in (0.0, 1.0)
    assert matches[0].confidence > max(m.confidence for m in matches[1:])


def test_bench_calibrate_prints_a_fit(beir, default_embedder):
    """Does `bench calibrate` fit on the given sets and report one coefficient per feature and the band
    figures per set, refusing a malformed --set?"""
    spec = f"tiny:{beir / 'corpus.jsonl'}:{beir / 'queries.jsonl'}:{beir / 'qrels.tsv'}"
    res = CliRunner().invoke(bench_group, ["calibrate", "--set", spec, "--top", "2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert len(out["coef"]) == len(conf.FEATURES) and out["rows"] == 8
    assert set(next(iter(out["sets"].values()))[str(conf.STRONG)]) == {
        "strong_precision", "strong_coverage", "answerless_quiet", "queries"}
    bad = CliRunner().invoke(bench_group, ["calibrate", "--set", "only-two:parts"])
    assert bad.exit_code == 2 and "FAMILY:CORPUS:QUERIES:QRELS" in bad.output


def test_the_engine_keeps_the_features_its_confidence_came_from(beir, default_embedder):
    """Does each ranked Match carry the confidence model's inputs that gave its confidence (computed once, in
    the engine), and does `confidence_rows` (what `bench calibrate` fits on) take exactly those?"""
    from matchmaker.matching.engine import Doc, MatchEngine
    from matchmaker.matching.evaluation import confidence_rows, load_beir
    engine = MatchEngine(None, embedder=default_embedder)
    engine.rebuild("capability", [Doc(i, "", c["text"]) for i, c in enumerate(CORPUS)])
    matches = engine.search("capability", QUERIES[0]["text"], k=3, evidence=False)
    for pos, m in enumerate(matches):
        assert len(m.features) == len(conf.FEATURES) and m.confidence == pytest.approx(conf.confidence(m.features))
        nxt = matches[pos + 1].score if pos + 1 < len(matches) else None
        if nxt is not None:   # the gap to the next result, as the model reads it
            assert m.features[conf.FEATURES.index("log_gap_next")] == pytest.approx(np.log1p(max(m.score - nxt, 0)))
    data = load_beir(beir / "corpus.jsonl", beir / "queries.jsonl", beir / "qrels.tsv")
    rows = confidence_rows(data, default_embedder, top=3)
    first = rows["X"][(rows["query"] == 0) & (rows["rank"] == 0)][0]
    assert first.tolist() == pytest.approx(matches[0].features, abs=1e-5)
