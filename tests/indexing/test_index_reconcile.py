"""Does the match index follow the database when no index job said what changed (edits made while matching
was off), and start from the stored vectors whatever the snapshot files hold (another model's snapshot, a
sidecar of an unknown shape)?"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from matchmaker import matching_service as ms
from matchmaker.core.metrics import EMBEDDED_TEXTS
from matchmaker.indexing.sync import sync_listings
from matchmaker.extensions import db
from matchmaker.listings import operations as ops
from matchmaker.listings.models import Capability
from matchmaker.suggestions import queries

pytestmark = pytest.mark.slow

WELDING = {"title": "Ultrasonic weld seam inspection robot", "summary": "Phased-array ultrasonic weld inspection.",
           "description": "Detects weld cracks of 0.5 mm in steel pipes."}


def _indexed_text(app, kind: str, doc_id: int) -> str | None:
    return app.extensions[ms.EXTENSION_KEY].doc_texts(kind).get(doc_id)


def _restart(app) -> None:
    app.extensions[ms.EXTENSION_KEY] = None  # the next use loads the snapshot, the newer rows, and reconciles


def _meta_path(app, kind: str) -> Path:
    return Path(app.config["MATCHMAKER_INDEX_DIR"]) / f"{kind}.meta.json"


def test_a_listing_edited_while_matching_was_off_is_reindexed_on_start(app, matching, docking, make, world):
    """If a published capability was edited and re-published while matching was switched off (no index job),
    does the next start index its new text instead of matching on the old one?"""
    right = docking["right"]
    assert queries.capabilities_for_need(docking["need"], k=5)  # builds and saves the index
    app.config["MATCHMAKER_MATCHING"] = False
    ops.update_listing(right, world["expert"], WELDING)
    ops.publish_listing(right, make.moderator())
    db.session.commit()
    app.config["MATCHMAKER_MATCHING"] = True
    _restart(app)
    found = queries.capabilities_for_need(docking["need"], k=5)
    assert _indexed_text(app, "capability", right.id).startswith(WELDING["title"])
    assert not found or found[0].listing.id != right.id  # no longer the battery need's best match


def test_a_snapshot_this_process_cannot_load_is_ignored_and_the_stored_vectors_serve(app, matching, docking,
                                                                                     make, world):
    """If the snapshot on disk was saved with another model, does a restart build the indexes from the stored
    vectors instead (matches complete, no listing embedded again), and does a later publication reach them?"""
    need = docking["need"]
    before = {s.listing.id for s in queries.capabilities_for_need(need, k=10)}
    meta = json.loads(_meta_path(app, "capability").read_text())
    meta.update(model_id="another-model", version="another-version")
    _meta_path(app, "capability").write_text(json.dumps(meta))
    _restart(app)
    embedded = EMBEDDED_TEXTS._value.get()
    engine = ms.get_engine()
    assert EMBEDDED_TEXTS._value.get() == embedded
    published = db.session.scalar(select(func.count(Capability.id)).where(Capability.status == "published"))
    assert engine.status()["capability"]["count"] == published
    assert {s.listing.id for s in queries.capabilities_for_need(need, k=10)} == before
    late = make.capability(world["expert"], title="锂电池负极析锂抑制与低温快充", field="new_energy",
                           summary="抑制低温析锂的负极包覆技术", description="-20℃下充放电容量保持率86%，析锂显著减少。")
    sync_listings({("capability", late.id)})  # what the index job does
    assert {s.listing.id for s in queries.capabilities_for_need(need, k=10)} == before | {late.id}
    published = db.session.scalar(select(func.count(Capability.id)).where(Capability.status == "published"))
    assert ms.get_engine().status()["capability"]["count"] == published


@pytest.mark.parametrize("files", [[], {"docs": "x"}])
def test_a_sidecar_of_an_unknown_shape_is_rebuilt_not_a_500(app, matching, docking, client_as, files):
    """Does a sidecar whose file list has an unknown shape (valid JSON) get the index rebuilt on start, so the
    match page answers 200 with the matches?"""
    queries.capabilities_for_need(docking["need"], k=3)
    meta = json.loads(_meta_path(app, "capability").read_text())
    meta["files"] = files if isinstance(files, list) else {**meta["files"], **files}
    _meta_path(app, "capability").write_text(json.dumps(meta))
    _restart(app)
    r = client_as("enterprise").get(f"/needs/{docking['need'].id}/matches")
    assert r.status_code == 200 and f'data-id="{docking["right"].id}"' in r.get_data(as_text=True)
