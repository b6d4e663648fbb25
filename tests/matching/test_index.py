import json

import numpy as np
import pytest

from matchmaker.matching.index import IndexCorrupt, IndexMissing, IndexStale, VectorIndex


def _vecs(n, d=32, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_add_update_remove_by_primary_key():
    """Are ids the caller's primary keys, and do update/remove work without a rebuild?"""
    x = _vecs(50)
    ix = VectorIndex(32, "m")
    ix.add(range(1000, 1050), x)
    _, ids = ix.search(x[:3], 1)
    assert ids[:, 0].tolist() == [1000, 1001, 1002]
    ix.add([1000], x[10:11])                      # update: same id, new vector
    assert len(ix) == 50
    _, ids = ix.search(x[10:11], 2)
    assert set(ids[0]) == {1000, 1010}
    assert ix.remove([1010]) == 1 and len(ix) == 49
    _, ids = ix.search(x[10:11], 1)
    assert ids[0, 0] == 1000


def test_allowed_ids_filter():
    """Does search return only ids from the caller's allowed set?"""
    x = _vecs(40)
    ix = VectorIndex(32, "m")
    ix.add(range(40), x)
    _, ids = ix.search(x[:1], 5, allowed_ids=[7, 9, 11])
    assert set(ids[0][ids[0] >= 0]) <= {7, 9, 11}
    _, ids = ix.search(x[:1], 5, allowed_ids=[])
    assert (ids < 0).all()


def test_save_load_roundtrip(tmp_path):
    """Does a saved index load back with the same vectors, type and sidecar metadata?"""
    x = _vecs(30)
    ix = VectorIndex(32, "model-a")
    ix.add(range(30), x)
    meta = ix.save(tmp_path, "need")
    side = json.loads((tmp_path / "need.meta.json").read_text())
    assert side["model_id"] == "model-a" and side["dim"] == 32 and side["count"] == 30
    assert side["checksum"] == meta.checksum and side["version"] == meta.version
    back, meta2, _ = VectorIndex.load(tmp_path, "need", "model-a", 32)
    assert len(back) == 30 and meta2.version == meta.version
    assert np.allclose(back.reconstruct([5]), x[5])


def test_missing_corrupt_and_stale_are_detected(tmp_path):
    """Is each way a stored index can be unusable reported as its own exception?"""
    with pytest.raises(IndexMissing):
        VectorIndex.load(tmp_path, "need")
    ix = VectorIndex(32, "model-a")
    ix.add(range(5), _vecs(5))
    meta = ix.save(tmp_path, "need")
    with pytest.raises(IndexStale):
        VectorIndex.load(tmp_path, "need", "model-b", 32)
    with pytest.raises(IndexStale):
        VectorIndex.load(tmp_path, "need", "model-a", 64)
    data_file = tmp_path / meta.files["faiss"]["file"]
    data_file.write_bytes(data_file.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(IndexCorrupt):
        VectorIndex.load(tmp_path, "need", "model-a", 32)
    (tmp_path / "need.meta.json").write_text("{not json")
    with pytest.raises(IndexCorrupt):
        VectorIndex.load(tmp_path, "need")


def test_saves_are_versioned_and_old_files_pruned(tmp_path):
    """Does every save write a new version, keeping only the previous one for slow readers?"""
    ix = VectorIndex(32, "m")
    ix.add(range(5), _vecs(5))
    versions = [ix.save(tmp_path, "need").version for _ in range(4)]
    assert len(set(versions)) == 4
    kept = {p.name.split(".")[1] for p in tmp_path.glob("need.*.faiss")}
    assert kept == set(versions[-2:])


def test_switches_to_approximate_index_past_threshold():
    """Past the size threshold, is a compressed IVF index chosen automatically, with good recall?"""
    rng = np.random.default_rng(1)
    centres = _vecs(40, 64, seed=2)
    x = centres[rng.integers(40, size=4000)] + rng.standard_normal((4000, 64)).astype(np.float32) * 0.08
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ix = VectorIndex(64, "m", approx_threshold=2000, nprobe=16)
    ix.add(range(1500), x[:1500])
    assert ix.index_type == "flat"
    ix.add(range(1500, 4000), x[1500:])
    assert ix.index_type == "ivf-sq8" and len(ix) == 4000
    q = x[:100] + rng.standard_normal((100, 64)).astype(np.float32) * 0.05
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    _, got = ix.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth, strict=True)])
    assert recall >= 0.9
    assert ix.memory_bytes() < 0.5 * x.nbytes
    ix.remove([0]); ix.add([0], x[1:2])           # update in place still works on IVF
    _, got = ix.search(x[1:2], 2)
    assert set(got[0]) == {0, 1}
