"""Does a serving process load its engine at start rather than on a user's request, and do the probes say
so: /healthz 200 whenever the process answers, /readyz 503 with a reason until the engine is loaded and
caught up with the stored vectors, then 200 — anonymous, never rate limited or served from the page cache?

Real model (the small USE model) and a migrated database of its own.
"""
from __future__ import annotations

import pytest

from tests.helpers import Factory
from matchmaker import matching_service as ms
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.indexing import vectors

pytestmark = pytest.mark.slow


@pytest.fixture
def serving(fresh_app):
    app = fresh_app("ready")
    app.config.update(MATCHMAKER_MATCHING=True, MATCHMAKER_EMBEDDING_MODEL="use", MATCHMAKER_INDEX_WORKER="inline",
                      MATCHMAKER_MATCH_FLOOR=False)
    with app.app_context():
        make = Factory()
        make.capability(make.user(Role.EXPERT, org=make.org(kind="institute")), title="Battery electrolyte",
                        summary="Low-temperature electrolyte.", description="88% capacity at -20 C.")
        db.session.commit()
        db.session.remove()
    return app


def test_readyz_is_503_until_the_engine_is_loaded_at_start_then_200(serving):
    """Before loading: /healthz 200, /readyz 503 with a reason; after start_loading (what gunicorn's
    post_worker_init and `matchmaker run` call) has finished in the background: /readyz 200 with the model and
    the sequence applied, and the engine was built without any request asking for a match."""
    client = serving.test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json["reason"] == "engine not loaded"
    loader = ms.start_loading(serving)
    assert ms.start_loading(serving) is loader  # once per process
    loader.thread.join(300)
    assert loader.error is None
    assert serving.extensions[ms.EXTENSION_KEY] is not None
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["lag"] == 0 and response.json["model"].startswith("usem3")
    with serving.app_context():
        with vectors._session() as session:
            assert response.json["seq"] == vectors.current_seq(session) > 0
    assert "X-Page-Cache" not in response.headers and "Set-Cookie" not in response.headers


def test_readyz_reports_a_failed_load(serving):
    """If loading the engine fails at start (here: an unknown model), does /readyz say so with the error
    instead of hanging on 'loading' for ever?"""
    serving.config["MATCHMAKER_EMBEDDING_MODEL"] = "/nonexistent/model"
    loader = ms.start_loading(serving)
    loader.thread.join(300)
    response = serving.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["reason"] == "engine failed to load" and response.json["error"]
