"""The large-collection index (IVF,SQ8 with 8-bit coded centroids), built at a small scale by lowering
its threshold: recall against exact search, memory, and the add/remove/save/load paths the app uses."""
import numpy as np
import pytest

from matchmaker.matching.cli import clustered_vectors
from matchmaker.matching.index import VectorIndex

DIM, N = 384, 20_000


@pytest.fixture(scope="module")
def data():
    """Bench-like vectors: sub-topics around random topic directions, queries from the same sub-topics."""
    rng = np.random.default_rng(3)
    bases = rng.standard_normal((50, DIM)).astype(np.float32)
    bases /= np.linalg.norm(bases, axis=1, keepdims=True)
    centres = clustered_vectors(bases, N // 200, rng, sub=N // 200)
    x = clustered_vectors(centres, N, rng, sub=len(centres))
    q = clustered_vectors(centres, 200, rng, sub=len(centres))
    return x, q


@pytest.fixture(scope="module")
def large(data):
    x, _ = data
    ix = VectorIndex(DIM, "m", approx_threshold=2_000, large_threshold=10_000)
    ix.add(range(1_000), x[:1_000])
    assert ix.index_type == "flat"
    ix.add(range(1_000, N), x[1_000:])             # crosses both thresholds in one add
    return ix


def _recall(got, truth):
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(got, truth, strict=True)]))


def test_large_index_chosen_automatically_with_recall_and_memory(data, large):
    """Past the large threshold, is the coded-centroid IVF chosen, with recall@10 ≥ 0.95 and ≤ 0.3 of flat?"""
    x, q = data
    assert large.index_type == "ivf-sq8-coarse-sq8" and len(large) == N
    assert large.effective_nprobe < 32              # fewer lists probed than the medium size
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    _, got = large.search(q, 10)
    assert _recall(got, truth) >= 0.95
    assert large.memory_bytes() <= 0.3 * x.nbytes


def test_medium_size_keeps_float_centroids(data):
    """Between the two thresholds, is the IVF coarse step still exact over float centroids?"""
    x, _ = data
    ix = VectorIndex(DIM, "m", approx_threshold=2_000, large_threshold=50_000)
    ix.add(range(5_000), x[:5_000])
    assert ix.index_type == "ivf-sq8" and ix.effective_nprobe == 32


def test_large_index_reconstructs_for_rescoring(data, large):
    """Can the ranking stage get vectors back for its shortlist, close to the originals?"""
    x, _ = data
    ids = [3, 4_000, 19_999]
    back = large.reconstruct(ids)
    cos = np.sum(back * x[ids], axis=1) / np.linalg.norm(back, axis=1)
    assert cos.min() > 0.999
    with pytest.raises(KeyError):
        large.reconstruct([N + 5])


def test_large_index_update_remove_save_load(tmp_path, data, large):
    """Do update, remove, incremental add and a save/load round trip work without a rebuild?"""
    x, q = data
    ix, _, _ = VectorIndex.load(_saved(large, tmp_path / "a"), "need", "m", DIM)  # private copy
    assert ix.remove([10, 11]) == 2 and len(ix) == N - 2
    _, got = ix.search(x[10:12], 5)
    assert 10 not in got and 11 not in got
    ix.add([12], x[13:14])                           # update: id 12 now holds doc 13's vector
    ix.add([N + 1], x[500:501])                      # a new id, assigned through the coded centroids
    assert len(ix) == N - 1
    _, got = ix.search(x[13:14], 3)
    assert {12, 13} <= set(got[0].tolist())
    _, got = ix.search(x[500:501], 2)
    assert set(got[0].tolist()) == {500, N + 1}
    _, got = ix.search(q[:3], 5, allowed_ids=[7, 9, N + 1])
    assert set(got[got >= 0].tolist()) <= {7, 9, N + 1}

    directory = _saved(ix, tmp_path / "b")
    back, meta, _ = VectorIndex.load(directory, "need", "m", DIM)
    assert meta.index_type == back.index_type == "ivf-sq8-coarse-sq8"
    assert back.effective_nprobe == ix.effective_nprobe and len(back) == N - 1
    s1, i1 = ix.search(q, 10)
    s2, i2 = back.search(q, 10)
    assert np.array_equal(i1, i2) and np.allclose(s1, s2)
    assert np.array_equal(np.sort(back.ids()), np.sort(ix.ids()))


def _saved(ix, directory):
    ix.save(directory, "need")
    return directory
