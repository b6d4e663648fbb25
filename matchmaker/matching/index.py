"""One FAISS vector index per listing kind, keyed by database primary keys.

Small collections use an exact IndexFlatIP; past `approx_threshold` vectors the
index switches itself to IVF with 8-bit scalar-quantised codes (4x smaller than
float32), whose shortlist is scored from codes within ~1e-3 of the float
cosine; the ranking stage re-scores its shortlist from reconstructed vectors.
Past `large_threshold` the IVF centroids are 8-bit coded too and fewer lists are
probed: scanning the float centroids (15 MB at 4096x896) is what dominated
single-query latency at 1M. Measured recall, latency and memory: docs/benchmarks.md. Files are saved atomically, with a
JSON sidecar (model id, dim, count, checksum, version) that is the commit point.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import faiss
import numpy as np

FORMAT_VERSION = 1
DEFAULT_APPROX_THRESHOLD = 50_000
DEFAULT_LARGE_THRESHOLD = 500_000
NPROBE_MEDIUM, NPROBE_LARGE = 32, 16


class IndexLoadError(RuntimeError):
    """The stored index cannot be used; the caller should rebuild it from the database."""


class IndexMissing(IndexLoadError):
    pass


class IndexCorrupt(IndexLoadError):
    pass


class IndexStale(IndexLoadError):
    """Built with another embedding model or dimension (or an older file format)."""


@dataclass
class IndexMeta:
    kind: str
    model_id: str
    dim: int
    count: int
    index_type: str
    version: str
    checksum: str
    files: dict
    format: int = FORMAT_VERSION
    saved_at: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _ivf_nprobe(n: int, large_threshold: int) -> int:
    return NPROBE_LARGE if n > large_threshold else NPROBE_MEDIUM


def _ivf_nlist(n: int) -> int:
    # ~4*sqrt(n) lists, power of two, bounded: standard IVF sizing
    nlist = 2 ** round(np.log2(4 * np.sqrt(max(n, 1))))
    return int(max(8, min(65536, nlist, n // 40)))  # k-means wants >= ~40 points per list


class VectorIndex:
    """Inner-product index over L2-normalised vectors with int64 doc ids."""

    def __init__(self, dim: int, model_id: str, approx_threshold: int = DEFAULT_APPROX_THRESHOLD,
                 nprobe: int | None = None, large_threshold: int = DEFAULT_LARGE_THRESHOLD) -> None:
        """`nprobe=None` uses the one chosen for the collection size when the IVF index was built."""
        self.dim, self.model_id = int(dim), model_id
        self.approx_threshold = int(approx_threshold)
        self.large_threshold = int(large_threshold)
        self.nprobe = None if nprobe is None else int(nprobe)
        self.index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    # -- state -----------------------------------------------------------
    @property
    def index_type(self) -> str:
        if not isinstance(self.index, faiss.IndexIVF):
            return "flat"
        coarse = faiss.downcast_index(self.index.quantizer)
        return "ivf-sq8-coarse-sq8" if isinstance(coarse, faiss.IndexScalarQuantizer) else "ivf-sq8"

    @property
    def effective_nprobe(self) -> int | None:
        if not isinstance(self.index, faiss.IndexIVF):
            return None
        return self.nprobe or int(self.index.nprobe)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        if isinstance(self.index, faiss.IndexIDMap):
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        inv = self.index.invlists
        out = [faiss.rev_swig_ptr(inv.get_ids(l), inv.list_size(l)).copy() for l in range(inv.nlist)
               if inv.list_size(l)]
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)

    # -- mutation --------------------------------------------------------
    def _check(self, vecs: np.ndarray) -> np.ndarray:
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[1] != self.dim:
            raise ValueError(f"expected (n, {self.dim}) vectors, got {vecs.shape}")
        return vecs

    def add(self, ids: Iterable[int], vecs: np.ndarray) -> None:
        """Insert or replace vectors for `ids`."""
        ids = np.asarray(list(ids), dtype=np.int64)
        vecs = self._check(vecs)
        if len(ids) != len(vecs):
            raise ValueError("ids and vectors differ in length")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("duplicate ids in one add")
        self.remove(ids)
        if self.index_type == "flat" and len(self) + len(ids) > self.approx_threshold:
            self._to_ivf(ids, vecs)
        else:
            self.index.add_with_ids(vecs, ids)

    def remove(self, ids: Iterable[int]) -> int:
        ids = np.asarray(list(ids), dtype=np.int64)
        if not len(ids) or not len(self):
            return 0
        # IVF's hashtable direct map only accepts an explicit id array
        return int(self.index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids))))

    def _to_ivf(self, new_ids: np.ndarray, new_vecs: np.ndarray) -> None:
        old_ids = self.ids()
        if len(old_ids):
            all_ids = np.concatenate([old_ids, new_ids])
            all_vecs = np.vstack([self.reconstruct(old_ids), new_vecs])
        else:  # one big first add (bench, import): no copy of the vectors
            all_ids, all_vecs = new_ids, new_vecs
        self.index = self.build_ivf(self.dim, all_vecs, all_ids, nprobe=self.nprobe,
                                    large_threshold=self.large_threshold)

    @staticmethod
    def build_ivf(dim: int, vecs: np.ndarray, ids: np.ndarray, nprobe: int | None = None,
                  nlist: int | None = None, train_size: int = 64 * 1024,
                  large_threshold: int = DEFAULT_LARGE_THRESHOLD) -> faiss.Index:
        """IVF,SQ8 sized for len(vecs); past `large_threshold` its centroids are 8-bit coded too."""
        n = len(vecs)
        nlist = nlist or _ivf_nlist(n)
        # index_factory owns its coarse quantizer (a Python-held one would be freed under it)
        ivf = faiss.index_factory(dim, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)  # already downcast
        rng = np.random.default_rng(0)
        sample = vecs if n <= train_size else vecs[np.sort(rng.choice(n, train_size, replace=False))]
        ivf.cp.niter = 10
        ivf.train(sample)
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct + remove by id
        ivf.nprobe = nprobe or _ivf_nprobe(n, large_threshold)
        # bulk assignment against the float centroids is one BLAS product per batch
        for s in range(0, n, 100_000):
            ivf.add_with_ids(np.ascontiguousarray(vecs[s:s + 100_000]), ids[s:s + 100_000])
        if n > large_threshold:
            _code_centroids(ivf)
        return ivf

    # -- query -----------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, allowed_ids: Iterable[int] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (nq, k); missing slots have id -1."""
        queries = self._check(queries)
        k = max(1, min(int(k), max(len(self), 1)))
        if not len(self):
            return np.zeros((len(queries), k), np.float32), -np.ones((len(queries), k), np.int64)
        params = None
        if allowed_ids is not None:
            allowed = np.asarray(sorted(set(int(i) for i in allowed_ids)), dtype=np.int64)
            if not len(allowed):
                return np.zeros((len(queries), k), np.float32), -np.ones((len(queries), k), np.int64)
            sel = faiss.IDSelectorBatch(allowed)
            params = (faiss.SearchParametersIVF(sel=sel, nprobe=self.effective_nprobe)
                      if self.index_type != "flat" else faiss.SearchParameters(sel=sel))
            params._keep = sel  # the selector must outlive the call
        elif self.index_type != "flat":
            params = faiss.SearchParametersIVF(nprobe=self.effective_nprobe)
        scores, ids = self.index.search(queries, k, params=params)
        return scores, ids

    def reconstruct(self, ids: Iterable[int]) -> np.ndarray:
        ids = np.asarray(list(ids), dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        try:
            return np.asarray(self.index.reconstruct_batch(ids), dtype=np.float32).reshape(len(ids), self.dim)
        except RuntimeError as exc:  # faiss: unknown id
            raise KeyError(f"ids not in index: {exc}") from exc

    def memory_bytes(self) -> int:
        return len(faiss.serialize_index(self.index))

    # -- persistence -----------------------------------------------------
    def save(self, directory: Path, kind: str, extra_files: dict[str, bytes] | None = None) -> IndexMeta:
        """Write `<kind>.<version>.faiss` (+ extras) then swap `<kind>.meta.json` in with os.replace."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        version = f"{int(time.time() * 1000):x}-{uuid.uuid4().hex[:8]}"
        blobs = {"faiss": faiss.serialize_index(self.index).tobytes(), **(extra_files or {})}
        files, digest = {}, hashlib.sha256()
        for name, data in blobs.items():
            fname = f"{kind}.{version}.{name}"
            _atomic_write(directory / fname, data)
            files[name] = {"file": fname, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            digest.update(files[name]["sha256"].encode())
        meta = IndexMeta(kind=kind, model_id=self.model_id, dim=self.dim, count=len(self),
                         index_type=self.index_type, version=version, checksum=digest.hexdigest(),
                         files=files, saved_at=time.time())
        _atomic_write(directory / f"{kind}.meta.json", json.dumps(meta.to_dict(), indent=1).encode())
        _remove_old_versions(directory, kind, keep=version)
        return meta

    @classmethod
    def load(cls, directory: Path, kind: str, model_id: str | None = None, dim: int | None = None,
             approx_threshold: int = DEFAULT_APPROX_THRESHOLD, nprobe: int | None = None,
             large_threshold: int = DEFAULT_LARGE_THRESHOLD
             ) -> tuple["VectorIndex", IndexMeta, dict[str, bytes]]:
        meta = read_meta(directory, kind)
        if meta.format != FORMAT_VERSION:
            raise IndexStale(f"{kind}: file format {meta.format}, expected {FORMAT_VERSION}")
        if (model_id is not None and meta.model_id != model_id) or (dim is not None and meta.dim != dim):
            raise IndexStale(f"{kind}: built with {meta.model_id} ({meta.dim}-d), "
                             f"engine uses {model_id} ({dim}-d)")
        blobs: dict[str, bytes] = {}
        for name, info in meta.files.items():
            path = Path(directory) / info["file"]
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise IndexCorrupt(f"{kind}: cannot read {path}: {exc}") from exc
            if hashlib.sha256(data).hexdigest() != info["sha256"]:
                raise IndexCorrupt(f"{kind}: checksum mismatch in {path}")
            blobs[name] = data
        try:
            index = faiss.deserialize_index(np.frombuffer(blobs.pop("faiss"), dtype=np.uint8))
        except Exception as exc:  # faiss raises RuntimeError subclasses with C++ messages
            raise IndexCorrupt(f"{kind}: unreadable FAISS data: {exc}") from exc
        if index.d != meta.dim or index.ntotal != meta.count:
            raise IndexCorrupt(f"{kind}: index holds {index.ntotal}x{index.d}, sidecar says "
                               f"{meta.count}x{meta.dim}")
        self = cls(meta.dim, meta.model_id, approx_threshold=approx_threshold, nprobe=nprobe,
                   large_threshold=large_threshold)
        self.index = index  # deserialize_index returns the concrete class; IVF files keep their nprobe
        return self, meta, blobs


def _code_centroids(ivf: faiss.IndexIVF) -> None:
    """Swap the float coarse quantizer for an SQ8 one over the same centroids (4x less to scan per query).

    Centroid scores then carry the same ~1e-3 error as the codes; list contents are unchanged.
    """
    centroids = ivf.quantizer.reconstruct_n(0, ivf.nlist)
    coded = faiss.IndexScalarQuantizer(ivf.d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    coded.train(centroids)
    coded.add(centroids)
    old = ivf.quantizer
    old.this.acquire()  # the IVF owned it: let Python free it
    coded.this.disown()  # and the IVF owns (and serialises) the new one
    ivf.quantizer = coded
    ivf.own_fields = True


def read_meta(directory: Path, kind: str) -> IndexMeta:
    path = Path(directory) / f"{kind}.meta.json"
    if not path.exists():
        raise IndexMissing(f"{kind}: no index at {path}")
    try:
        raw = json.loads(path.read_text())
        meta = IndexMeta(**raw)
    except (ValueError, TypeError) as exc:
        raise IndexCorrupt(f"{kind}: unreadable sidecar {path}: {exc}") from exc
    files = meta.files
    if not (isinstance(files, dict) and all(isinstance(f, dict) and isinstance(f.get("file"), str)
                                            and isinstance(f.get("sha256"), str) for f in files.values())):
        raise IndexCorrupt(f"{kind}: sidecar {path} lists its files in an unknown shape")
    return meta


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _remove_old_versions(directory: Path, kind: str, keep: str) -> None:
    # readers may still be loading the previous version: keep it, drop anything older
    versions = sorted({p.name.split(".")[1] for p in directory.glob(f"{kind}.*.*")
                       if p.name.count(".") >= 2 and p.name.split(".")[1] != "meta"})
    stale = [v for v in versions if v != keep][:-1]
    for p in directory.glob(f"{kind}.*"):
        if p.name.split(".")[1] in stale:
            try:
                p.unlink()
            except OSError:
                pass
