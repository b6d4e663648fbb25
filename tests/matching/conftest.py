"""Session-wide real models for the matching tests (loading them once keeps the run short)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from matchmaker.matching.embedders import USEEmbedder, load_embedder

SHARED_EVAL = next((p for p in (Path(os.environ.get("MATCHMAKER_SHARED_EVAL", "/nonexistent")),
                                Path(__file__).resolve().parents[3] / "shared" / "eval",
                                Path("/work/shared/eval")) if p.is_dir()), None)


@pytest.fixture(scope="session")
def use_embedder() -> USEEmbedder:
    return load_embedder("use")


@pytest.fixture(scope="session")
def e5_embedder():
    return load_embedder("e5")


@pytest.fixture(scope="session")
def default_embedder(use_embedder, e5_embedder):
    """The platform default (use+e5 ensemble), built from the session's member models."""
    return load_embedder()


@pytest.fixture(scope="session")
def shared_eval() -> Path:
    if SHARED_EVAL is None:
        pytest.skip("SKIPPED LOUDLY: shared eval sets not found (../shared/eval or /work/shared/eval); "
                    "the quality gate did not run")
    return SHARED_EVAL
