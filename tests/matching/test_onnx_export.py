"""The e5 model on ONNX Runtime (matching/onnx_export.py, OnnxEmbedder) against the torch reference path."""
import numpy as np
import pytest

from matchmaker.matching import e5_unpack, onnx_export
from matchmaker.matching.embedders import (
    ENV_E5_BACKEND,
    CachedEmbedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    e5_small_embedder,
    load_embedder,
)

TEXTS = ["我们需要提升锂电池在低温环境下的放电性能",
         "印染废水色度高，需要低成本处理工艺，日处理量约两千吨，要求出水达到纳管标准",
         "Surface scratch inspection relies on manual visual checks",
         "We develop anaerobic digestion of food waste with stable biogas yield in cold climates",
         "无人机巡检 drone inspection of power lines",
         "基于深度学习的工业缺陷检测。" * 40,  # longer than the 256-token cut
         "A" * 3]


@pytest.fixture(scope="module")
def torch_e5():
    return e5_small_embedder(backend="torch")


@pytest.fixture(scope="module")
def int8_e5():
    return e5_small_embedder(backend="onnx-int8")


@pytest.fixture(scope="module")
def fp32_e5():
    return e5_small_embedder(backend="onnx")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1)


@pytest.mark.slow
def test_int8_path_gives_the_reference_vectors_within_tolerance(torch_e5, int8_e5):
    """Does the int8 ONNX path give, for zh/en queries and documents, vectors with cosine ≥ 0.99 to
    the sentence-transformers (torch) path's, unit-norm, 384-d, in the input order?"""
    assert isinstance(int8_e5, OnnxEmbedder) and int8_e5.dim == 384
    for fast, ref in ((int8_e5.encode_queries(TEXTS), torch_e5.encode_queries(TEXTS)),
                      (int8_e5.encode_documents(TEXTS), torch_e5.encode_documents(TEXTS))):
        assert fast.dtype == np.float32 and fast.shape == (len(TEXTS), 384)
        assert np.allclose(np.linalg.norm(fast, axis=1), 1, atol=1e-4)
        assert _cosines(fast, ref).min() >= 0.99
    # an empty text is the prompt alone, a degenerate input; it stays close (measured 0.985), not as close
    assert _cosines(int8_e5.encode_documents([""]), torch_e5.encode_documents([""])).min() >= 0.97
    # the prompts matter: a query is not embedded as a passage
    assert _cosines(int8_e5.encode_queries(TEXTS[:3]), int8_e5.encode_documents(TEXTS[:3])).max() < 0.99


@pytest.mark.slow
def test_fp32_onnx_path_is_the_torch_function(torch_e5, fp32_e5):
    """Does the float32 ONNX path reproduce the torch vectors (cosine > 0.9999), so it may keep their id?"""
    assert _cosines(fp32_e5.encode_documents(TEXTS + [""]), torch_e5.encode_documents(TEXTS + [""])).min() > 0.9999
    assert _cosines(fp32_e5.encode_queries(TEXTS), torch_e5.encode_queries(TEXTS)).min() > 0.9999
    assert fp32_e5.model_id == torch_e5.model_id == e5_unpack.MODEL_ID


@pytest.mark.slow
def test_backend_switch_picks_the_path_and_the_model_id(monkeypatch, fp32_e5, int8_e5, torch_e5):
    """Does MATCHMAKER_E5_BACKEND choose the path (default float32 ONNX with torch's model id, `torch` the old
    one, `onnx-int8` with its own model id, so indexes built by another path count as stale)?"""
    monkeypatch.delenv(ENV_E5_BACKEND, raising=False)
    default = load_embedder("e5")
    assert isinstance(default, OnnxEmbedder) and default.backend == "onnx"
    assert default.model_id == e5_unpack.MODEL_ID
    monkeypatch.setenv(ENV_E5_BACKEND, "torch")
    old = load_embedder("e5")
    assert isinstance(old, SentenceTransformerEmbedder) and old.model_id == e5_unpack.MODEL_ID
    assert "+ort-int8" not in load_embedder("use+e5").model_id
    monkeypatch.setenv(ENV_E5_BACKEND, "onnx-int8")
    fast = load_embedder("e5")
    assert isinstance(fast, OnnxEmbedder) and fast.model_id == e5_unpack.MODEL_ID + "+ort-int8"
    assert load_embedder("use+e5").model_id.endswith("+ort-int8*0.65)")


def test_unknown_backend_is_refused_with_the_choices(monkeypatch):
    """Is a misspelt MATCHMAKER_E5_BACKEND refused with the known values instead of falling back silently?"""
    monkeypatch.setenv(ENV_E5_BACKEND, "onnx_int8")
    with pytest.raises(ValueError, match="onnx, onnx-int8, torch"):
        load_embedder("e5")
    with pytest.raises(ValueError, match="unknown e5 backend"):
        e5_small_embedder(backend="tensorrt")


@pytest.mark.slow
def test_vector_cache_is_keyed_on_the_path(tmp_path, torch_e5, fp32_e5):
    """Does the evaluation cache (MATCHMAKER_EMBED_CACHE) keep the float32 ONNX path's vectors apart from
    the torch path's, although both carry one model id?"""
    a, b = CachedEmbedder(torch_e5, tmp_path), CachedEmbedder(fp32_e5, tmp_path)
    assert a.dir != b.dir
    a.encode_documents(TEXTS[:2])
    b.encode_documents(TEXTS[:2])
    assert (a.dir / "d.npz").exists() and (b.dir / "d.npz").exists()


@pytest.mark.slow
def test_artefact_is_cached_beside_the_weights_and_reused(int8_e5):
    """Is the exported model kept under the unpacked folder's onnx/<recipe>/, returned again without a
    rebuild, and free of temp folders?"""
    folder = e5_unpack.ensure_unpacked()
    path = onnx_export.ensure_onnx(folder, quantized=True)
    assert path == int8_e5.path == folder / "onnx" / onnx_export.RECIPE / onnx_export.INT8_NAME
    before = path.stat().st_mtime_ns
    assert onnx_export.ensure_onnx(folder, quantized=True) == path
    assert path.stat().st_mtime_ns == before
    assert not list(path.parent.glob(".export.*"))
