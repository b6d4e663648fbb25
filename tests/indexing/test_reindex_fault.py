"""Does the matching index survive a `kill -9` during `matchmaker reindex` and a corrupted snapshot file:
vectors are committed batch by batch (never half a batch), the snapshot is whole or absent, and the next
process holds every published listing — built from the stored vectors, embedding only what no row holds?

Real processes, real model (the small USE model), a real SQLite database seeded with the demo data.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from matchmaker.matching.index import IndexLoadError, VectorIndex, read_meta

pytestmark = pytest.mark.slow

KINDS = ("need", "capability")

# A fresh process: what the snapshot files hold for this model, then the engine as a serving process builds it
# (snapshot + stored rows + what no row holds), how many texts that embedded, and what the database publishes.
CHECK = """
import json
from matchmaker import create_app
from matchmaker import matching_service as ms
from matchmaker.core.metrics import EMBEDDED_TEXTS
from matchmaker.indexing.documents import _published_docs
from matchmaker.indexing.models import ListingVector
from matchmaker.extensions import db
app = create_app()
with app.app_context():
    rows = db.session.query(ListingVector).filter_by(removed=False).count()
    db.session.commit()  # no read transaction left open (SQLite: it would block the writes below)
    probe = ms.new_engine(ms.configured_spec(), app.config["MATCHMAKER_INDEX_DIR"])
    found = {k: v["load_status"] for k, v in probe.status().items()}
    engine = ms.get_engine()
    want = {k: sorted(d) for k, d in _published_docs().items()}
    have = {k: sorted(engine.doc_ids(k)) for k in want}
    print(json.dumps({"found": found, "rows": rows, "embedded": EMBEDDED_TEXTS._value.get(),
                      "want": want, "have": have}))
"""


def _run(env, *args, timeout=300):
    result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A SQLite database prepared by `matchmaker init-db` + `matchmaker seed`, and an empty index dir."""
    base = tmp_path_factory.mktemp("reindex-fault")
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{base / 'db.sqlite'}",
               MATCHMAKER_INDEX_DIR=str(base / "index"), MATCHMAKER_EMBEDDING_MODEL="use",
               MATCHMAKER_MATCHING="1", PYTHONUNBUFFERED="1")
    env.pop("TEST_DATABASE_URL", None)
    cli = ["-c", "from matchmaker.cli import main; main()"]
    _run(env, *cli, "init-db")
    _run(env, *cli, "seed")
    return env, Path(env["MATCHMAKER_INDEX_DIR"]), cli


def _committed_indexes_are_whole(index_dir: Path) -> dict[str, str]:
    """Each kind's sidecar is absent, or names files that exist and match their checksums."""
    state = {}
    for kind in KINDS:
        if not (index_dir / f"{kind}.meta.json").exists():
            state[kind] = "absent"
            continue
        meta = read_meta(index_dir, kind)  # raises on an unreadable (half-written) sidecar
        VectorIndex.load(index_dir, kind)  # raises on a missing file, checksum or count mismatch
        assert meta.count >= 0
        state[kind] = "whole"
    return state


def _check_process(env) -> dict:
    # after a killed reindex it embeds every listing (no row was committed): minutes on a loaded machine
    out = _run(env, "-c", CHECK, timeout=900).stdout.strip().splitlines()[-1]
    return json.loads(out)


def test_kill_9_during_reindex_loses_nothing(seeded):
    """Killed with SIGKILL while embedding, does `reindex` leave no half-written snapshot, and does the next
    process end with every published listing of the database in the index?"""
    env, index_dir, cli = seeded
    shutil.rmtree(index_dir, ignore_errors=True)  # start from no index, whatever ran before
    log = index_dir.parent / "reindex.stderr"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, *cli, "reindex"], env=env, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        # Wait until the listings are being embedded (the progress bar is up), then kill within a batch.
        while time.monotonic() < deadline and proc.poll() is None:
            if "embedding listings" in log.read_text(errors="replace"):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "reindex finished before it could be killed:\n" + log.read_text()[-2000:]
        time.sleep(0.5)  # well inside the first batch (seconds long)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)

    assert set(_committed_indexes_are_whole(index_dir).values()) == {"absent"}, "a snapshot from a killed run"
    result = _check_process(env)
    total = sum(len(ids) for ids in result["want"].values())
    assert result["rows"] < total, "reindex finished before the kill: the test proves nothing"
    for kind in KINDS:
        assert result["want"][kind], f"no published {kind} in the seed: the test proves nothing"
        assert result["have"][kind] == result["want"][kind], f"{kind}: index differs from the database"
    assert _committed_indexes_are_whole(index_dir) == {"need": "whole", "capability": "whole"}


def test_corrupted_snapshot_is_detected_and_the_stored_vectors_serve(seeded):
    """With bytes of a snapshot file overwritten, does the next process detect it (checksum), build its
    indexes from the stored vectors with no text embedded, and leave a whole snapshot on disk?"""
    env, index_dir, cli = seeded
    _run(env, *cli, "reindex", "--quiet")
    meta = read_meta(index_dir, "need")
    victim = index_dir / next(info["file"] for info in meta.files.values() if info["file"].endswith(".faiss"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\xff" * 64
    victim.write_bytes(bytes(data))
    with pytest.raises(IndexLoadError, match="checksum"):
        VectorIndex.load(index_dir, "need")

    result = _check_process(env)
    assert result["found"]["need"].startswith("needs_rebuild") and "checksum" in result["found"]["need"]
    assert result["found"]["capability"] == "ok"
    assert result["embedded"] == 0
    for kind in KINDS:
        assert result["have"][kind] == result["want"][kind]
    assert _committed_indexes_are_whole(index_dir) == {"need": "whole", "capability": "whole"}
