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
