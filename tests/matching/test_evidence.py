"""Shared terms a person can read: content words and fitting dictionary senses only (issue 16, item 6)."""
import pytest

from matchmaker.matching.bilingual import dictionary
from matchmaker.matching.engine import Doc, MatchEngine
from matchmaker.matching.bilingual import _ngrams
from matchmaker.matching.evidence import content_span, shared_terms
from matchmaker.matching.text import tokenize

# A firm's need and two capabilities written so that every kind of noise seen on the demo (issue 16) can occur:
# "开发 → up" (开发 = "to open up"; the doc scales up), "满足 → content" (满足 = "…/content"; the doc's moisture
# content), "次数 → order" (次数 = "order number"; the doc's "in order to"), bigram fragments "下的", "测与",
# and the bare number 30 that both texts contain.
NEED = "开发耐低温的锂电池，满足零下30度使用要求，循环次数达到2000次；需要对焊缝进行无损检测与评估。"
EN_DOC = ("We develop lithium batteries and scale up their production; moisture content stays low after 30 "
          "cycles in order to pass tests. Composite parts and drones for weld inspection.")
ZH_DOC = "团队在低温条件下的电池监测与焊缝无损检测方面有经验，开发了锂电池低温电解液，循环次数超过30次。"
NOISE = {"开发 → up", "满足 → content", "次数 → order", "下的", "测与", "30"}


def terms(query: str, doc: str) -> list[str]:
    return shared_terms(query, doc, dictionary())


def test_no_function_words_fragments_numbers_or_unfitting_senses():
    """Are the noisy terms seen on the demo ("开发 → up", "满足 → content", "次数 → order", "下的", "测与",
    a bare "30") gone from the shared terms, across and within languages?"""
    across, within = terms(NEED, EN_DOC), terms(NEED, ZH_DOC)
    assert not NOISE & set(across), across
    assert not NOISE & set(within), within
    assert not [t for t in across + within if any(fragment in t for fragment in ("下的", "测与", "与", "的"))]


def test_the_fitting_senses_and_content_words_survive():
    """Do the words that do fit still show: the sense of 开发 the doc uses (develop), the whole sense of 锂电池
    as the doc writes it, and the shared Chinese words, trimmed of their function characters?"""
    across = terms(NEED, EN_DOC)
    assert {"开发 → develop", "锂电池 → lithium batteries", "循环 → cycles"} <= set(across), across
    within = terms(NEED, ZH_DOC)
    assert {"无损检测", "循环次数", "锂电池", "开发", "低温", "焊缝"} <= set(within), within


def test_a_sense_fits_when_it_occurs_in_the_doc_or_the_docs_word_names_it():
    """Does a sense fit only when it occurs whole in the other text ("composite material"), or when the
    doc's word's own entry names a word inside the Chinese one ("composite" is 复合, inside 复合材料), and
    is the earliest sense of the entry that occurs preferred?"""
    d = dictionary()
    assert d.fitting_sense("复合材料", set(tokenize("composite material for drones"))) == ("composite", "material")
    assert d.fitting_sense("复合材料", set(tokenize("carbon-fibre composite parts"))) == ("composite",)
    doc = "we open the lid, scale up and develop software"
    assert d.fitting_sense("开发", set(tokenize(doc)), _ngrams(doc)) == ("develop",)   # not "open … up"
    assert d.fitting_sense("开发", set(tokenize("we open up new markets"))) == ("open", "up")
    assert d.fitting_sense("开发", set(tokenize("we scale up"))) is None
    assert d.fitting_sense("满足", set(tokenize("water content"))) is None          # 4th reading of 满足
    assert d.fitting_sense("满足", set(tokenize("to satisfy the standard"))) == ("satisfy",)
    assert d.fitting_sense("次数", set(tokenize("in order to"))) is None             # "order number"


def test_english_query_words_show_as_written_and_only_in_their_first_readings():
    """Does an English need's evidence show its word as written ("analysis → 分析") and leave out a Chinese
    word the English one is only a late reading of ("control → 左右": 左右 is "left and right/…/to control")?"""
    got = terms("Failure analysis and process control of drones", "无人机失效分析，温度控制在30度左右")
    assert "analysis → 分析" in got and "drones → 无人机" in got, got
    assert "control → 左右" not in got and "control → 控制" in got, got


def test_a_han_span_loses_its_function_characters_and_dangling_characters():
    """Is a shared span trimmed to what reads as words, and dropped when only fillers are left?"""
    d = dictionary()
    assert content_span("无损检测与", d) == "无损检测"
    assert content_span("下的", d) is None and content_span("测与", d) is None
    assert content_span("条件下", d) is None and content_span("采用", d) is None
    assert content_span("焊缝", d) == "焊缝"           # not in CC-CEDICT, but no function character: a word
    assert content_span("中试", d) == "中试"           # 中 starts a word here, it is no particle
    assert content_span("率提", d, "生产效率提升30%") is None   # 效率 | 提升: the ends of two words


@pytest.mark.slow
def test_the_engines_evidence_shows_only_readable_terms(default_embedder):
    """Does the engine's evidence for a ranked match carry the cleaned terms (the same as the page and
    the API show), across and within languages?"""
    eng = MatchEngine(None, embedder=default_embedder)
    eng.rebuild("capability", [Doc(1, "Low-temperature lithium batteries", EN_DOC),
                               Doc(2, "低温锂电池", ZH_DOC)])
    got = {m.doc_id: m.evidence.shared_terms for m in eng.search("capability", [NEED], k=2)}
    assert not NOISE & (set(got[1]) | set(got[2])), got
    assert "开发 → develop" in got[1] and "焊缝" in got[2], got


@pytest.mark.slow
def test_explain_gives_a_docs_match_as_search_ranks_it(default_embedder):
    """Does `explain` (for a pairing proposed by hand) give one doc's Match with the score, confidence and band
    `search` gives it among the same pool, with its evidence, and None for a doc the index does not hold?"""
    eng = MatchEngine(None, embedder=default_embedder)
    eng.rebuild("capability", [Doc(1, "Low-temperature lithium batteries", EN_DOC), Doc(2, "低温锂电池", ZH_DOC),
                               Doc(3, "印染废水", "课题组开发了高级氧化耦合生物处理技术，可高效脱色。")])
    ranked = {m.doc_id: m for m in eng.search("capability", [NEED], k=3, evidence=False)}
    for doc_id in (1, 3):
        got = eng.explain("capability", NEED, doc_id)
        assert got.score == pytest.approx(ranked[doc_id].score, abs=1e-5)
        assert got.confidence == pytest.approx(ranked[doc_id].confidence) and got.band == ranked[doc_id].band
        assert got.evidence is not None and got.evidence.doc_sentence
    assert eng.explain("capability", NEED, 99) is None
