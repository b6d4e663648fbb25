"""Matching engine: multilingual embeddings + FAISS + BM25, calibrated across zh/en, with evidence.

The web app uses `MatchEngine` (see engine.py); CLI commands live in `matchmaker.matching.cli`.
Heavy modules (torch, faiss) load only when an engine or embedder is created.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["MatchEngine", "Doc", "Match", "Evidence", "RankParams", "detect_lang", "vagueness",
           "load_embedder", "IndexLoadError", "IndexMissing", "IndexCorrupt", "IndexStale", "KINDS"]

if TYPE_CHECKING:  # pragma: no cover
    from .embedders import load_embedder
    from .engine import KINDS, Doc, MatchEngine
    from .index import IndexCorrupt, IndexLoadError, IndexMissing, IndexStale
    from .ranking import Evidence, Match, RankParams
    from .text import detect_lang, vagueness

_WHERE = {"MatchEngine": "engine", "Doc": "engine", "KINDS": "engine", "Match": "ranking",
          "Evidence": "ranking", "RankParams": "ranking", "detect_lang": "text", "vagueness": "text",
          "load_embedder": "embedders", "IndexLoadError": "index", "IndexMissing": "index",
          "IndexCorrupt": "index", "IndexStale": "index"}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(name)
