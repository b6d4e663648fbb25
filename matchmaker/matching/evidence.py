"""The shared terms a match page shows: content words a person can read, never the ranking's raw material.

BM25 ranks on Han unigrams and bigrams, numbers and every Latin word; shown as evidence those read as noise
("下的", "测与", "30", "开发 → up"). Here the evidence keeps

- Chinese spans the two texts share, without function characters and dangling single characters at their
  edges (CC-CEDICT words decide what a word is; a span with none, such as "焊缝", stays when it has no
  function character at its edges);
- Latin words with a letter that are not function words, fillers or units (``text.content_word``);
- across languages, "query word → doc word" pairs whose dictionary sense fits the doc
  (``bilingual.Dictionary.fitting_sense``).

The ranking is untouched: only what is shown changes.
"""
from __future__ import annotations

from .bilingual import MAX_WORD, Dictionary
from .text import (_HAN_RUN, _TOKEN, _ZH_EDGE, EVIDENCE_STOP_ZH, content_word, key_terms, normalise, surface_words,
                   tokenize)

LIMIT = 10


def content_span(span: str, words: Dictionary, context: str = "") -> str | None:
    """``span`` (Han characters both texts share) without the function characters and dangling single
    characters at its edges, or None when nothing readable is left ("下的", "测与", "条件下"). A span with no
    dictionary word is a fragment when, in ``context`` (the query), words run across both its ends ("率提"
    of 合格率提升)."""
    def word_at(i: int, ending: bool) -> bool:
        if ending:
            return any(span[j:i + 1] in words.zh_en for j in range(max(0, i + 1 - MAX_WORD), i))
        return any(span[i:j] in words.zh_en for j in range(i + 2, min(len(span), i + MAX_WORD) + 1))
    while span and span[0] in _ZH_EDGE and not word_at(0, False):
        span = span[1:]
    while span and span[-1] in _ZH_EDGE and not word_at(len(span) - 1, True):
        span = span[:-1]
    found = [(i, j) for i in range(len(span) - 1) for j in range(i + 2, min(len(span), i + MAX_WORD) + 1)
             if span[i:j] in words.zh_en and span[i:j] not in EVIDENCE_STOP_ZH]
    if found:   # a single character left over beside the words is a fragment of the next word ("测" of 测量)
        left, right = min(i for i, _ in found), max(j for _, j in found)
        span = span[1 if left == 1 else 0:len(span) - 1 if len(span) - right == 1 else len(span)]
    elif any(span[i:j] in EVIDENCE_STOP_ZH for i in range(len(span)) for j in range(i + 2, len(span) + 1)):
        return None   # only fillers ("采用", "条件下")
    elif span and _straddled(span, words, context):
        return None
    return span if len(span) > 1 and span not in EVIDENCE_STOP_ZH else None


def _straddled(span: str, words: Dictionary, context: str) -> bool:
    """Whether, where ``span`` first occurs in ``context``, a dictionary word crosses each of its ends."""
    at = context.find(span)
    if at < 0:
        return False
    end = at + len(span)

    def crossing(edge: int) -> bool:
        return any(context[i:j] in words.zh_en for i in range(max(0, edge - MAX_WORD + 1), edge)
                   for j in range(edge + 1, min(len(context), i + MAX_WORD) + 1))
    return crossing(at) and crossing(end)


def shared_terms(query: str, doc_text: str, words: Dictionary, translate: bool = True,
                 doc_terms: set[str] | None = None, limit: int = LIMIT) -> list[str]:
    """Evidence terms for a query text against a doc (``doc_terms``: its BM25 terms, when the caller has
    them): shared content words, longest first, then translations whose sense fits the doc."""
    if doc_terms is None:
        doc_terms = set(tokenize(doc_text))
    out: list[str] = []
    for term in key_terms(query, doc_terms):
        if _HAN_RUN.fullmatch(term):
            term = content_span(term, words, normalise(query))
        elif not _TOKEN.fullmatch(term) or not content_word(normalise(term)):
            term = None
        if term and not any(term in shown for shown in out):
            out.append(term)
    if translate:
        out += words.shared_translations(query, doc_terms, surface=surface_words(doc_text), doc_text=doc_text)
    return list(dict.fromkeys(out))[:limit]
