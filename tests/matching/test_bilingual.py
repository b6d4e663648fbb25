import numpy as np

from matchmaker.matching.bilingual import Dictionary, dictionary, query_terms
from matchmaker.matching.lexical import LexicalIndex
from matchmaker.matching.ranking import RankParams, fuse
from matchmaker.matching.text import surface_words, tokenize

SAMPLE = """# CC-CEDICT excerpt
無人機 无人机 [wu2 ren2 ji1] /drone; unmanned aerial vehicle/
電池 电池 [dian4 chi2] /battery/CL:節|节[jie2],組|组[zu3]/
鋰電池 锂电池 [li3 dian4 chi2] /lithium battery/
厭氧 厌氧 [yan4 yang3] /anaerobic/
碳纖維 碳纤维 [tan4 xian1 wei2] /carbon fiber/
纖維 纤维 [xian1 wei2] /fiber/
鱈魚 鳕鱼 [xue3 yu2] /cod/
電 电 [dian4] /electric/electricity/
噴灑 喷洒 [pen1 sa3] /to spray/to sprinkle/variant of 噴撒|喷撒[pen1 sa3]/a very long description of how one sprays a field/
"""


def test_a_chinese_query_gains_english_terms_and_an_english_query_chinese_bigrams():
    """Does the expansion translate dictionary words each way, with cross-references, single characters
    and descriptions left out?"""
    d = Dictionary(SAMPLE.splitlines())
    assert d.zh_en["喷洒"] == ("spray", "sprinkle")          # "variant of" and the 9-word description dropped
    assert "电" not in d.zh_en and d.zh_en["电池"] == ("battery",)  # single characters, "CL:" notes dropped
    assert d.expand("果园需要无人机喷洒") == ["drone", "unmanned", "aerial", "vehicle", "spray", "sprinkle"]
    assert d.expand("anaerobic digestion with carbon fibers") == ["厌氧", "纤维", "碳纤", "纤维"]


def test_numbers_and_acronyms_are_not_translated():
    """Is "COD" in a wastewater need kept from turning into a fish, while "cod" in prose is translated?"""
    d = Dictionary(SAMPLE.splitlines())
    assert d.expand("废水COD超标") == []
    assert d.expand("frozen cod supply") == ["鳕鱼"]


def test_query_terms_add_translations_only_when_asked():
    """Are the query's own BM25 terms kept first, and the translations appended only with translate?"""
    own = tokenize("锂电池低温放电")
    assert query_terms("锂电池低温放电", translate=False) == own
    translated = query_terms("锂电池低温放电", translate=True)
    assert translated[:len(own)] == own and {"lithium", "battery", "discharge"} <= set(translated)


def test_bm25_finds_the_english_capability_for_a_chinese_need_through_the_dictionary():
    """With the real CC-CEDICT, does a Chinese need score the English drone capability above unrelated
    English ones, where its untranslated terms share nothing with any of them?"""
    lex = LexicalIndex()
    lex.add_many([(1, "The team builds crop-protection drones with variable-rate spraying control."),
                  (2, "We developed anaerobic digestion of food waste into biogas."),
                  (3, "Carbon fiber composite parts cut vehicle weight."),
                  (4, "Deep-learning machine vision for surface defect inspection.")])
    need = "果园植保想用无人机喷洒农药"
    assert not lex.score_rows(query_terms(need, translate=False)).any()
    scores = lex.score_rows(query_terms(need, translate=True))
    assert int(np.argmax(scores)) == lex.row_of[1] and scores[lex.row_of[4]] == 0


def test_shared_translations_name_the_word_pairs_longest_first():
    """Does the evidence pair each query word with the doc term it was translated to, without repeating
    a shorter word inside one already shown?"""
    d = dictionary()
    doc = set(tokenize("本团队研究餐厨垃圾厌氧消化与碳纤维复合材料"))
    assert d.shared_translations("anaerobic digestion and carbon fiber parts", doc) == [
        "carbon fiber → 碳纤维", "anaerobic → 厌氧"]
    drones = set(tokenize("The team builds crop-protection drones with variable-rate spraying control."))
    assert d.shared_translations("果园想用无人机作业", drones) == ["无人机 → drone"]
    assert d.shared_translations("果园想用无人机作业", set(tokenize("焊缝检测"))) == []


def test_translated_evidence_shows_the_docs_word_as_written():
    """Does the evidence show the doc's English word as written ("analysis", "drones"), not the BM25 term it
    was folded to ("analysi", "drone")?"""
    text = "Our group offers failure analysis of welded joints and crop-protection drones."
    got = dictionary().shared_translations("焊接接头失效分析与植保无人机", set(tokenize(text)),
                                           surface=surface_words(text))
    assert "分析 → analysis" in got and "无人机 → drones" in got, got


def test_a_translated_hit_is_capped_where_an_exact_hit_is_not():
    """Does one lexical hit count at most cross_lex_cap deviations when the doc is in another language,
    and in full when query and doc share the language?"""
    params = RankParams(w_dense=0.5, calibrate=False)
    lexical = np.zeros(200, np.float32)
    lexical[0] = 10.0                                          # one doc shares a (translated) term
    dense = np.zeros(200, np.float32)
    groups = np.array(["en"] * 200)
    bg = {"en": lexical}
    across = fuse(dense, lexical, groups, {"en": dense}, bg, params, query_lang="zh")
    same = fuse(dense, lexical, groups, {"en": dense}, bg, params, query_lang="en")
    assert across["lexical"][0] == np.float32(0.5 * params.cross_lex_cap)
    assert same["lexical"][0] > 2 * across["lexical"][0]   # ~14 deviations: one hit among 200 docs
