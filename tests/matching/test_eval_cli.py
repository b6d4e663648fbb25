import json

import pytest
from click.testing import CliRunner

from matchmaker.matching.cli import bench_group, eval_command
from matchmaker.matching.evaluation import mrr_at, ndcg_at, pairwise_accuracy, recall_at

CORPUS = [
    {"_id": "d1", "title": "", "text": "研究团队在低温电解液配方与负极材料改性方面有成熟技术"},
    {"_id": "d2", "title": "Vision", "text": "Deep-learning machine vision for surface defect inspection on production lines"},
    {"_id": "d3", "title": "", "text": "Machine vision inspection of surface defects; cameras and deep learning on the line"},
    {"_id": "d4", "title": "", "text": "课题组开发了高级氧化耦合生物处理技术，可高效脱色并降解难降解有机物"},
]
QUERIES = [
    {"_id": "q1", "text": "研究团队在低温电解液配方与负极材料改性方面有成熟技术"},
    {"_id": "q2", "text": "Deep-learning machine vision for surface defect inspection on production lines"},
    {"_id": "q3", "texts": ["印染废水脱色", "降解难降解有机物"]},
]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td3\t1\nq2\td4\t0\nq3\td4\t1\n"


@pytest.fixture(scope="module")
def beir(tmp_path_factory):
    d = tmp_path_factory.mktemp("beir")
    (d / "corpus.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in CORPUS) + "\n")
    (d / "queries.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in QUERIES) + "\n")
    (d / "qrels.tsv").write_text(QRELS)
    return d


def _run(args):
    return CliRunner().invoke(eval_command, [str(a) for a in args])


def test_metrics_match_hand_computation():
    """Do the metric functions give the values worked out by hand?"""
    rel = {"b": 2, "c": 1, "d": 1}
    # DCG = 3/log2(3) + 1/log2(4) = 2.3928; IDCG = 3 + 1/log2(3) + 1/log2(4) = 4.1309
    assert ndcg_at(["a", "b", "c"], rel) == pytest.approx(0.5792, abs=1e-4)
    assert recall_at(["a", "b", "c"], rel, 2) == pytest.approx(1 / 3)
    assert mrr_at(["a", "b", "c"], rel) == 0.5
    # pairs with different grades: (b,c) right, (b,d) right, (b,a)... a unjudged -> not a pair; c/d same grade
    assert pairwise_accuracy({"b": 0.9, "c": 0.2, "d": 0.2}, rel) == (2.0, 2)
    assert pairwise_accuracy({"b": 0.1, "c": 0.1, "d": 0.5}, rel) == (0.5, 2)


def test_eval_json_contract(beir, default_embedder):
    """Does `eval --json` end with one JSON object holding the contract keys and the hand-known values?"""
    res = _run(["--corpus", beir / "corpus.jsonl", "--queries", beir / "queries.jsonl",
                "--qrels", beir / "qrels.tsv", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert {"ndcg@10", "recall@10", "recall@100", "mrr@10", "queries", "docs", "model", "seconds"} <= set(out)
    assert out["queries"] == 3 and out["docs"] == 4
    # every query's best doc is unambiguous (exact copies / the only on-topic doc) and all docs fit in 10
    assert out["mrr@10"] == 1.0 and out["recall@10"] == 1.0 and out["recall@100"] == 1.0
    assert out["ndcg@10"] == 1.0


def test_eval_rerank_judged_pairwise(beir, default_embedder):
    """With --rerank-judged, are only judged docs ranked and pairwise accuracy reported?"""
    res = _run(["--corpus", beir / "corpus.jsonl", "--queries", beir / "queries.jsonl",
                "--qrels", beir / "qrels.tsv", "--json", "--rerank-judged"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    # q2: d2 (2) > d3 (1) > d4 (0) -> 3 of 3 pairs right; q1, q3 have one judged doc -> no pairs
    assert out["pairwise_accuracy"] == 1.0 and out["ndcg@10"] == 1.0


def test_eval_param_overrides_reach_the_ranking(beir, default_embedder):
    """Does `--param` switch a ranking parameter (the ablations in docs/benchmarks.md) and refuse unknown
    names or values with a usage error?"""
    args = ["--corpus", beir / "corpus.jsonl", "--queries", beir / "queries.jsonl", "--qrels", beir / "qrels.tsv",
            "--json", "--rerank-judged"]
    ok = _run(args + ["--param", "w_dense=0", "--param", "centre=false", "--param", "smooth_weight=0"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout.strip().splitlines()[-1])["pairwise_accuracy"] == 1.0  # words alone order q2
    for bad, needle in (("smoothness=1", "NAME one of"), ("centre=maybe", "not a bool"), ("w_dense=high", "float"),
                        ("w_dense", "NAME=VALUE")):
        res = _run(args + ["--param", bad])
        assert res.exit_code == 2 and needle in res.output and "Traceback" not in res.output, res.output


@pytest.mark.parametrize("corpus,queries,qrels,needle", [
    ('{"_id": "d1", "text": "ok"}\n{"_id": "d2", "text": \n', None, None, "corpus.jsonl:2"),
    ('{"_id": "d1", "text": 5}\n', None, None, "corpus.jsonl:1"),
    ('[1, 2]\n', None, None, "corpus.jsonl:1"),
    ("", None, None, "no documents"),
    (None, '{"_id": "q1", "texts": "not a list"}\n', None, "queries.jsonl:1"),
    (None, '{"_id": "q1"}\n', None, "queries.jsonl:1"),
    (None, None, "qid\tdid\trel\nq1\td1\t1\n", "header"),
    (None, None, "query-id\tcorpus-id\tscore\nq1\td1\n", "qrels.tsv:2"),
    (None, None, "query-id\tcorpus-id\tscore\nq1\td1\thigh\n", "qrels.tsv:2"),
    (None, None, "query-id\tcorpus-id\tscore\nqX\td1\t1\n", "no positive judgement"),
])
def test_bad_input_gives_clean_error(tmp_path, beir, corpus, queries, qrels, needle):
    """Does malformed input end in a usage error naming file and line, never a traceback?"""
    files = {}
    for name, content in (("corpus.jsonl", corpus), ("queries.jsonl", queries), ("qrels.tsv", qrels)):
        files[name] = tmp_path / name
        files[name].write_text(content if content is not None else (beir / name).read_text())
    res = _run(["--corpus", files["corpus.jsonl"], "--queries", files["queries.jsonl"],
                "--qrels", files["qrels.tsv"], "--json"])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert isinstance(res.exception, SystemExit)


def test_odd_but_valid_input_has_defined_result(tmp_path, default_embedder):
    """Do duplicate ids, empty/huge texts, mixed scripts and other languages give a defined result?"""
    corpus = [{"_id": "a", "text": "锂电池 low temperature 电解液"}, {"_id": "a", "text": "duplicate, ignored"},
              {"_id": "b", "text": ""}, {"_id": "c", "text": "Привет мир " * 5000},
              {"_id": "d", "title": "日本語", "text": "これは日本語の文章です"}]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in corpus) + "\n\n")
    (tmp_path / "q.jsonl").write_text('{"_id": "q1", "text": "低温锂电池electrolyte"}\n{"_id": "q2", "text": ""}\n')
    (tmp_path / "r.tsv").write_text("query-id corpus-id score\nq1 a 1\nq2 b 1\nq9 a 1\n")
    res = _run(["--corpus", tmp_path / "c.jsonl", "--queries", tmp_path / "q.jsonl", "--qrels", tmp_path / "r.tsv",
                "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["docs"] == 4 and out["queries"] == 2
    assert any("repeated corpus ids" in n for n in out["notes"])
    assert 0.5 <= out["mrr@10"] <= 1.0  # q1 finds "a"; q2 has no text and scores 0


def test_bench_search_small(default_embedder):
    """Does `bench search` report the contract keys (tiny N: exact index, so recall is 1)?"""
    res = CliRunner().invoke(bench_group, ["search", "--n", "2000", "--nq", "20", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert {"p50_ms", "p95_ms", "recall@10", "exact_p50_ms", "speedup", "index_mb", "flat_mb", "build_s"} <= set(out)
    assert out["recall@10"] == 1.0


def test_bench_rank_reports_latency_with_and_without_evidence(beir, default_embedder):
    """Does `bench rank` time the ranking over the corpus (with and without the evidence step) and refuse
    a malformed corpus with a usage error?"""
    for extra in ([], ["--evidence"]):
        res = CliRunner().invoke(bench_group, ["rank", "--corpus", str(beir / "corpus.jsonl"), "--queries",
                                               str(beir / "queries.jsonl"), "--n", "3", "--json", *extra])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout.strip().splitlines()[-1])
        assert out["docs"] == 4 and out["queries"] == 3 and out["evidence"] == bool(extra)
        assert 0 < out["p50_ms"] <= out["p95_ms"]
    bad = beir / "bad.jsonl"
    bad.write_text('{"_id": "d1", "text": 5}\n')
    res = CliRunner().invoke(bench_group, ["rank", "--corpus", str(bad), "--queries", str(beir / "queries.jsonl")])
    assert res.exit_code == 2 and "bad.jsonl:1" in res.output
