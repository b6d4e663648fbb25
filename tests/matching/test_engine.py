import time

import numpy as np
import pytest

from matchmaker.matching.engine import Doc, MatchEngine, detect_lang, vagueness

CAPS = [
    Doc(1, "低温电池", "研究团队在低温电解液配方与负极材料改性方面有成熟技术。可在零下30度保持80%容量。"),
    Doc(2, "Machine vision", "Our lab builds deep-learning machine vision systems for surface defect inspection. "
        "Detection accuracy above 99% on steel strips."),
    Doc(3, "印染废水", "课题组开发了高级氧化耦合生物处理技术，可高效脱色并降解难降解有机物。"),
    Doc(4, "Cold chain", "We design modified-atmosphere packaging that extends the shelf life of fresh fruit."),
    Doc(5, "焊缝检测", "团队掌握相控阵超声无损检测技术，用于钢结构焊缝自动化检测。"),
    Doc(6, "Predictive maintenance", "Vibration analysis and machine learning predict bearing failures in pumps."),
    # enough docs per language (>= RankParams.min_group) for per-language calibration to apply
    Doc(8, "中药提取", "我们采用超临界二氧化碳萃取技术提高中药材有效成分提取率。"),
    Doc(9, "光伏清洁", "研发光伏板自动清洁机器人，减少积灰带来的发电损失。"),
    Doc(10, "Aquaculture", "Solar-powered aerators keep dissolved oxygen high in fish ponds."),
    Doc(11, "Lightweighting", "Carbon-fibre composite parts cut vehicle weight while keeping stiffness."),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory, default_embedder):
    eng = MatchEngine(tmp_path_factory.mktemp("idx"), embedder=default_embedder)
    eng.rebuild("capability", CAPS)
    return eng


def test_search_finds_cross_language_match_with_evidence(engine):
    """Does a Chinese need surface the English capability, with why-data attached?"""
    res = engine.search("capability", ["希望用深度学习机器视觉代替人工目检，自动发现产品表面缺陷"], k=3)
    assert res[0].doc_id == 2 and res[0].lang == "en"
    m = res[0].to_dict()
    assert set(m["components"]) == {"dense", "lexical", "calibration", "neighbours"}
    assert m["score"] == pytest.approx(sum(m["components"].values()), abs=1e-4)
    ev = m["evidence"]
    assert ev["doc_sentence"].startswith("Our lab builds") and ev["query_sentence"]
    assert -1 <= ev["sentence_similarity"] <= 1


def test_evidence_names_shared_terms_and_best_sentence(engine):
    """Are shared key terms and the best-matching sentence pair reported for a same-language match?"""
    res = engine.search("capability", ["需要焊缝的无损检测方案。预算有限。"], k=1)
    ev = res[0].evidence
    assert res[0].doc_id == 5
    assert any("焊缝" in t for t in ev.shared_terms) and any("检测" in t for t in ev.shared_terms)
    assert ev.query_sentence == "需要焊缝的无损检测方案。" and "焊缝" in ev.doc_sentence


def test_a_cross_language_match_names_the_translated_word_pairs(engine):
    """Does a Chinese need's English match show which of its words the dictionary found in the English
    text, since no term is shared verbatim?"""
    res = engine.search("capability", ["汽车零部件需要减重，考虑复合材料"], k=1)
    assert res[0].doc_id == 11 and res[0].lang == "en"
    assert "复合材料 → composite" in res[0].evidence.shared_terms
    assert res[0].components["lexical"] > 0  # the translated terms count in the score too


def test_allowed_ids_are_a_hard_filter(engine):
    """Does the caller's allowed set exclude everything else, even the best match?"""
    res = engine.search("capability", ["表面缺陷视觉检测"], k=5, allowed_ids=[1, 3, 4])
    assert {m.doc_id for m in res} <= {1, 3, 4} and res
    assert engine.search("capability", ["表面缺陷视觉检测"], allowed_ids=[]) == []


def test_upsert_searchable_within_a_second_and_remove(engine):
    """Is a new doc found (by its words too) within 1 s without rebuild, and gone after remove?"""
    engine.embedder.encode_documents(["warm-up"])  # first call pays one-off thread-pool start-up
    t = time.time()
    engine.upsert("capability", Doc(99, "石墨烯导热膜", "我们量产石墨烯导热膜，面内导热系数1500 W/mK。"), save=False)
    res = engine.search("capability", ["寻找石墨烯导热膜供应商"], k=1, evidence=False)
    elapsed = time.time() - t
    assert res[0].doc_id == 99 and res[0].components["lexical"] > 0
    assert engine.remove("capability", 99, save=False)
    # 1 s is the product requirement; a box shared with other jobs gets 3x slack before we call it a bug
    assert elapsed < 3.0, elapsed
    assert all(m.doc_id != 99 for m in engine.search("capability", ["石墨烯导热膜"], k=10, evidence=False))


def test_profile_of_several_texts(engine):
    """Does a query made of several texts score from all of them (each text can win a doc)?"""
    res = engine.search("capability", ["低温电解液", "vibration based failure prediction"], k=2)
    assert {m.doc_id for m in res} == {1, 6}
    assert {m.evidence.query_text_index for m in res} == {0, 1}


def test_similar_for_duplicate_check(engine):
    """Does the posting assistant's duplicate check find a near-copy and can exclude the doc itself?"""
    res = engine.similar("capability", "团队掌握相控阵超声无损检测技术，用于焊缝检测。", k=2)
    assert res[0].doc_id == 5
    assert all(m.doc_id != 5 for m in engine.similar("capability", "相控阵超声焊缝检测", k=3, exclude_id=5))


def test_status_and_refresh_between_workers(engine, default_embedder):
    """Does a second engine (another gunicorn worker) load the saved index and pick up a newer version?"""
    other = MatchEngine(engine.index_dir, embedder=default_embedder)
    assert other.status()["capability"]["count"] == len(CAPS)
    assert other.status()["capability"]["index_type"] == "flat"
    assert other.refresh_if_changed() == []
    engine.upsert("capability", Doc(7, "Membranes", "Ceramic membranes for oil-water separation."))
    assert other.refresh_if_changed() == ["capability"]
    assert other.status()["capability"]["count"] == len(CAPS) + 1
    engine.remove("capability", 7)


NEEDS = [Doc(100 + i, "", t) for i, t in enumerate([
    "锂电池低温放电性能差，需要改进电解液", "产品表面划痕靠人工目检，漏检多", "印染废水色度超标，需要脱色技术",
    "中药材有效成分提取率低", "光伏板积灰导致发电量下降", "鱼塘缺氧导致鱼类死亡", "注塑件缩痕翘曲严重",
    "风电叶片人工巡检危险", "合同风险条款需要自动识别", "果园打药人工成本高", "锅炉氮氧化物排放超标",
    "餐厨垃圾需要资源化利用", "汽车零部件需要减重", "冷链运输中水果损耗大", "泵的轴承经常突然损坏",
    "钢结构焊缝检测效率低", "芯片封装散热不足", "污泥脱水能耗高", "茶叶加工品质不稳定", "数控机床精度下降",
    "建筑工地安全帽佩戴难监管", "变压器故障难以提前发现"])]


def test_query_side_mean_comes_from_the_other_kind_and_is_saved(tmp_path, default_embedder):
    """Is a need centred on the needs' population (encoded as queries) once that population is large
    enough, kept across a reload, and recomputed only when a language group grew by over a quarter?"""
    eng = MatchEngine(tmp_path, embedder=default_embedder)
    eng.rebuild("capability", CAPS)
    eng.rebuild("need", NEEDS[:6])
    need = eng._kinds["need"]
    assert need.query_means_size == {"zh": 6} and eng._query_mean(need, "zh") is None  # too few to estimate
    before = eng.search("capability", ["产品表面划痕靠人工目检"], k=3, evidence=False)

    eng.rebuild("need", NEEDS)
    assert need is not eng._kinds["need"]
    need = eng._kinds["need"]
    assert need.query_means_size == {"zh": 22}
    expected = default_embedder.encode_queries([d.text for d in NEEDS]).mean(0)
    assert np.allclose(eng._query_mean(need, "zh"), expected, atol=1e-5)
    assert np.allclose(eng._query_mean(need, "en"), expected, atol=1e-5)  # no English needs: the pooled mean
    after = eng.search("capability", ["产品表面划痕靠人工目检"], k=3, evidence=False)
    assert before[0].doc_id == after[0].doc_id == 2 and after[0].score != before[0].score

    reloaded = MatchEngine(tmp_path, embedder=default_embedder)
    assert np.array_equal(reloaded._kinds["need"].query_means["zh"], need.query_means["zh"])

    eng.upsert_many("need", [Doc(130 + i, "", f"需求{i}：提高生产线良品率") for i in range(5)])  # 27 vs 22
    assert need.query_means_size == {"zh": 22}
    eng.upsert("need", Doc(140, "", "需要降低污水处理电耗"))                                   # 28 > 22 x 1.25
    assert need.query_means_size == {"zh": 28}


def test_an_index_saved_without_query_means_gets_them_at_startup_not_on_a_search(tmp_path, default_embedder):
    """Does an index saved before query-side means existed search without encoding them on the request
    path, and does the startup refresh compute and save them?"""
    eng = MatchEngine(tmp_path, embedder=default_embedder)
    eng.rebuild("capability", CAPS)
    eng.rebuild("need", NEEDS)
    eng._kinds["need"].query_means.clear()
    eng._kinds["need"].query_means_size.clear()
    eng.save("need")  # what an older version wrote

    old = MatchEngine(tmp_path, embedder=default_embedder)
    assert old.search("capability", ["产品表面划痕靠人工目检"], k=1, evidence=False)[0].doc_id == 2
    assert old._kinds["need"].query_means == {}
    assert old.refresh_query_means() == ["need"]
    assert old._kinds["need"].query_means_size == {"zh": 22}
    assert old.refresh_query_means() == []  # nothing drifted since
    assert MatchEngine(tmp_path, embedder=default_embedder)._kinds["need"].query_means_size == {"zh": 22}


def test_model_change_forces_rebuild(engine, use_embedder):
    """Does an engine with another model refuse the stored index instead of mixing vectors?"""
    other = MatchEngine(engine.index_dir, embedder=use_embedder)
    assert "capability" in other.needs_rebuild()
    assert other.status()["capability"]["count"] == 0
    assert "needs_rebuild" in other.load_status["capability"]


def test_corrupt_index_reported(tmp_path, default_embedder):
    """Is a damaged file on disk reported as needing a rebuild rather than crashing the worker?"""
    eng = MatchEngine(tmp_path, embedder=default_embedder)
    eng.rebuild("need", CAPS[:2])
    meta = (tmp_path / "need.meta.json").read_text()
    victim = next(tmp_path.glob("need.*.docs"))
    victim.write_bytes(b"garbage")
    again = MatchEngine(tmp_path, embedder=default_embedder)
    assert "need" in again.needs_rebuild() and "checksum" in again.load_status["need"]
    assert again.load_status["need"].startswith("needs_rebuild")
    assert again.load_status["capability"].startswith("missing")  # never saved: also to build
    assert meta and again.status()["need"]["count"] == 0


@pytest.mark.parametrize("text,lang", [
    ("锂电池低温放电性能提升", "zh"), ("Low-temperature lithium battery discharge", "en"),
    ("工厂COD超标，需要处理工艺", "zh"), ("We process 石墨烯 films at industrial scale for phones", "en"),
    ("Привет мир", "other"), ("", "other"), ("12345", "other"),
])
def test_detect_lang(text, lang):
    """Does script-ratio language detection handle zh, en, mixed script and other scripts?"""
    assert detect_lang(text) == lang


def test_vagueness_codes():
    """Does the posting assistant flag short, target-less, problem-less texts and pass a specific one?"""
    assert vagueness({"title": "合作", "body": ""}) == ["too_short", "no_measurable_target", "no_problem_statement"]
    assert vagueness("") == ["empty"]
    good = "我们的锂电池在零下20℃时放电容量只有常温的50%，希望提升到80%以上，以满足北方冬季储能需求。"
    assert vagueness([good]) == []
    assert "no_measurable_target" in vagueness("我们希望提升锂电池在低温环境下的放电性能，解决北方冬季储能设备效率低的问题")


class _CountingEmbedder:
    """The real embedder, recording which texts it is asked to embed as documents."""

    def __init__(self, inner):
        self.inner, self.model_id, self.dim = inner, inner.model_id, inner.dim
        self.documents: list[str] = []

    def encode_queries(self, texts):
        return self.inner.encode_queries(texts)

    def encode_documents(self, texts):
        self.documents.extend(texts)
        return self.inner.encode_documents(texts)


def test_evidence_reuses_sentence_vectors_stored_at_index_time(tmp_path, default_embedder):
    """Does another worker's match evidence come from the sentence vectors saved with the index, with no
    model call on the doc's sentences, and agree with evidence computed on the fly?"""
    from matchmaker.matching.text import split_sentences

    MatchEngine(tmp_path, embedder=default_embedder).rebuild("capability", CAPS)
    spy = _CountingEmbedder(default_embedder)
    worker = MatchEngine(tmp_path, embedder=spy)
    need = "钢结构焊缝需要自动化无损检测。希望检测效率提高一倍。"
    stored = worker.search("capability", [need], k=3)
    assert stored[0].doc_id == 5 and "焊缝" in stored[0].evidence.doc_sentence
    doc_sentences = {s for d in CAPS for s in split_sentences(d.full_text)}
    assert spy.documents and not doc_sentences & set(spy.documents)

    on_the_fly = MatchEngine(None, embedder=default_embedder, sentence_vectors=False)
    on_the_fly.rebuild("capability", CAPS)
    fresh = on_the_fly.search("capability", [need], k=3)
    for a, b in zip(stored, fresh, strict=True):
        assert a.evidence.doc_sentence == b.evidence.doc_sentence
        assert abs(a.evidence.sentence_similarity - b.evidence.sentence_similarity) < 0.01  # float16 storage
