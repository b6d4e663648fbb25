"""Language detection, tokenisation for Chinese + Latin text, sentence splitting, vagueness checks."""
from __future__ import annotations

import re
import unicodedata
from typing import Iterable, Mapping, Sequence

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_RUN = re.compile(f"[{_HAN}]+")
_TOKEN = re.compile(f"[{_HAN}]+|[a-z0-9][a-z0-9\\-+.]*[a-z0-9+]|[a-z0-9]")
_SENT_SPLIT = re.compile(r"(?<=[。！？；!?;])|(?<=\.)(?=\s|$)|[\n\r]+")

EN_STOP = frozenset(
    "a an the and or of to in on for with by at from as is are was were be been being this that these "
    "those it its we our you your they their he she his her i me my not no can could will would should may "
    "might must do does did have has had than then so such into over under about also which who whom what "
    "when where how why all any each more most other some only very just".split())

# Evidence only (the ranking's BM25 keeps EN_STOP): words that carry no topic, so a person reading "shared
# terms" sees what the two texts are about. Particles and prepositions, light verbs, units, generic fillers.
EVIDENCE_STOP_EN = EN_STOP | frozenset(
    "up down out off via per within without upon onto across along among around through throughout "
    "there here both either neither one two three first second etc ie eg vs use used using uses usage based "
    "make makes made get gets take takes give gives provide provides provided including include includes "
    "well good new high low large small many much few less least one's via able also thus hence however "
    "mm cm km nm um kg mg mpa kpa pa kw mw kwh wh mah hz khz ghz db ppm ppb rpm min max".split())
# Chinese function words and fillers of every listing ("采用", "通过", "技术"); single characters are never terms
EVIDENCE_STOP_ZH = frozenset(
    "采用 通过 提供 完成 已完成 用于 适用于 以上 以下 以内 左右 要求 现有 基于 实现 达到 利用 超过 低于 高于 "
    "不低于 不高于 不超过 保持 已在 结合 兼顾 进行 开展 可以 可在 能够 我们 具有 目前 需要 希望 主要 相关 "
    "方面 一种 一个 以及 并且 或者 对于 由于 因此 其中 等等 已经 以便 之间 之后 之前 同时 包括 形成 没有 "
    "不能 无法 难以 问题 情况 技术 公司 企业 团队 我司 本公司 课题组 项目 这些 这种 那些 如何 为了 根据 "
    "作为 以及 此外 另外 其他 其它 所有 每个 各种 多种 大量 较高 较低 提高 提升 降低 增加 减少 解决 "
    "方案 方法 服务 支持 应用 条件 工作 影响 不足 实际 现场 一定 部分 降至 个月 给出 拥有 面向 针对 不同 满足 "
    "适用 具备 相比 确保 保证 能否 是否 可能 进一步 以后 以来 左右".split())
# a Han span that begins or ends with one of these is a fragment ("下的", "测与"), not a word
_ZH_EDGE = frozenset("的与和及在下了是对为或等中上并而其把被将从以于由向比之也又就都所余约")


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").lower()


def script_counts(text: str) -> tuple[int, int, int]:
    """(Han characters, Latin letters, other letters) in `text`."""
    han = latin = other = 0
    for ch in text or "":
        if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff":
            han += 1
        elif ch.isascii():
            latin += ch.isalpha()
        elif ch.isalpha():
            # accented Latin counts as Latin; kana, hangul, Cyrillic ... as other
            latin += unicodedata.name(ch, "").startswith("LATIN")
            other += not unicodedata.name(ch, "").startswith("LATIN")
    return han, latin, other


def detect_lang(text: str) -> str:
    """'zh', 'en' or 'other' by script share; a Han character weighs about as much as a 4-letter word.

    Mixed text goes to the script that carries most of the content, so an English
    sentence quoting one Chinese term stays 'en' and a Chinese one citing "COD" stays 'zh'.
    """
    han, latin, other = script_counts(text)
    units = {"zh": float(han), "en": latin / 4.0, "other": other / 2.0}
    if sum(units.values()) == 0:
        return "other"
    best = max(units, key=units.get)
    return best


def _term(word: str) -> str:
    # a light plural fold ("catalysts" ~ "catalyst"); "analysis" becomes "analysi", so evidence shows words
    return word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss") else word


def tokenize(text: str) -> list[str]:
    """BM25 terms: Han unigrams + bigrams, Latin/digit words (lower-cased, stop words dropped)."""
    out: list[str] = []
    for tok in _TOKEN.findall(normalise(text)):
        if _HAN_RUN.fullmatch(tok):
            out.extend(tok)
            out.extend(tok[i:i + 2] for i in range(len(tok) - 1))
        elif tok not in EN_STOP:
            out.append(_term(tok))
    return out


def surface_words(text: str) -> dict[str, str]:
    """BM25 term -> the first word of ``text`` it came from, to show evidence as written ("analysis")."""
    out: dict[str, str] = {}
    for tok in _TOKEN.findall(normalise(text)):
        if not _HAN_RUN.fullmatch(tok) and tok not in EN_STOP:
            out.setdefault(_term(tok), tok)
    return out


def key_terms(query: str, doc_terms: set[str]) -> list[str]:
    """Shared terms for evidence: maximal Han spans whose bigrams all occur in the doc, and shared words."""
    found: list[str] = []
    for tok in _TOKEN.findall(normalise(query)):
        if _HAN_RUN.fullmatch(tok):
            i = 0
            while i < len(tok) - 1:
                j = i
                while j < len(tok) - 1 and tok[j:j + 2] in doc_terms:
                    j += 1
                if j > i:
                    found.append(tok[i:j + 1])
                    i = j
                else:
                    i += 1
        elif tok not in EN_STOP and len(tok) > 1 and tokenize(tok) and tokenize(tok)[0] in doc_terms:
            found.append(tok)
    seen: set[str] = set()
    return [t for t in sorted(found, key=len, reverse=True) if not (t in seen or seen.add(t))]


def content_word(term: str) -> bool:
    """Whether a Latin/digit term may show as evidence: not a bare number ("30", "0.5"), not a unit or a
    word without topic ("up", "via", "mm")."""
    return len(term) > 1 and any(ch.isalpha() for ch in term) and term not in EVIDENCE_STOP_EN \
        and _term(term) not in EVIDENCE_STOP_EN


def split_sentences(text: str, limit: int = 60) -> list[str]:
    parts = [p.strip() for p in _SENT_SPLIT.split(text or "")]
    return [p for p in parts if p and any(ch.isalnum() for ch in p)][:limit] or ([text.strip()] if text and text.strip() else [])


_NUM_UNIT = re.compile(
    r"\d+(?:\.\d+)?\s*(?:%|％|‰|℃|°c|度|倍|个|项|台|套|件|次|年|月|天|日|小时|分钟|秒|吨|千克|公斤|克|米|毫米|微米|纳米|"
    r"公里|平方米|立方米|升|毫升|元|万元|亿元|万|亿|兆|瓦|千瓦|伏|安|赫兹|帕|mpa|kpa|pa|kw|mw|w|kv|v|mah|wh|kwh|"
    r"hz|khz|ghz|db|nm|μm|um|mm|cm|m|km|kg|g|mg|t|l|ml|s|ms|h|min|ppm|ppb|x|fps|gb|tb|mb|rpm|n)(?![a-z])",
    re.IGNORECASE)
_PROBLEM_CUES = re.compile(
    r"问题|难题|瓶颈|不足|缺陷|痛点|困难|挑战|超标|偏高|偏低|过高|过低|无法|不能|难以|缺乏|依赖进口|卡脖子|效率低|成本高|漏检|"
    r"需要|需求|希望|寻求|亟需|解决|提升|提高|降低|减少|改进|优化|替代|"
    r"problem|issue|challenge|bottleneck|lack|unable|cannot|fail|defect|need|require|seek|looking for|improve|"
    r"reduce|increase|replace|solve", re.IGNORECASE)

VAGUENESS_CODES = ("empty", "too_short", "no_measurable_target", "no_problem_statement")


def vagueness(text_fields: Mapping[str, str] | Sequence[str] | str) -> list[str]:
    """Warning codes for the posting assistant; an empty list means the text looks specific enough."""
    if isinstance(text_fields, str):
        parts: Iterable[str] = [text_fields]
    elif isinstance(text_fields, Mapping):
        parts = text_fields.values()
    else:
        parts = text_fields
    text = "\n".join(p for p in parts if p)
    if not text.strip():
        return ["empty"]
    han, latin, other = script_counts(text)
    warnings = []
    if han + latin / 5.0 + other / 2.0 < 25:  # ~25 Han characters or ~5 English words
        warnings.append("too_short")
    if not _NUM_UNIT.search(normalise(text)):
        warnings.append("no_measurable_target")
    if not _PROBLEM_CUES.search(text):
        warnings.append("no_problem_statement")
    return warnings
