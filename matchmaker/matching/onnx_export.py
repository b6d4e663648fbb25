"""Export the unpacked e5 folder to ONNX (optionally int8) once, cached next to the unpacked weights.

Why: the e5 half of the default ensemble is most of the embedding time. ONNX Runtime runs the same
BERT graph ~1.3x faster than torch on this CPU and, with int8 dynamic quantisation of the dense layers,
~3x faster (docs/benchmarks.md, "Embedding throughput and memory"). The artefacts are made locally from
the unpacked folder (torch's exporter, onnxruntime's quantiser; no download), live in
`<unpacked folder>/onnx/<RECIPE>/` and are rebuildable: delete the folder and the next load rebuilds it.

Quantisation recipe (`model_int8.onnx`): weights of every MatMul with a constant weight (the Q/K/V,
attention output and feed-forward layers) as int8, per output channel; activations quantised per tensor
at run time (ORT's dynamic quantisation). The attention products (both inputs are activations) stay
float32: quantising them too cost more accuracy than they save time (measured min cosine 0.978 vs 0.995).
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
import warnings
from pathlib import Path

RECIPE = "v1"  # bump when the export or quantisation recipe changes: a new folder, rebuilt on first use
FP32_NAME = "model.onnx"
INT8_NAME = "model_int8.onnx"


class ExportError(RuntimeError):
    """The ONNX artefact could not be built from the unpacked folder."""


def artefact_dir(folder: Path) -> Path:
    return Path(folder) / "onnx" / RECIPE


def _export_fp32(folder: Path, out: Path) -> None:
    import torch
    from transformers import BertModel

    model = BertModel.from_pretrained(str(folder)).eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, m) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.tensor([[0, 100, 200, 2], [0, 300, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and exporter deprecation chatter
        torch.onnx.export(LastHidden(model), (ids, mask), str(out), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes})


def _quantize_int8(src: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    constants = {i.name for i in graph.initializer}
    dense = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in constants]
    if not dense:
        raise ExportError(f"{src}: no MatMul with a constant weight to quantise")
    quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"], nodes_to_quantize=dense,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def ensure_onnx(folder: Path, quantized: bool) -> Path:
    """Path of the ONNX model for the unpacked folder, exporting (and quantising) it once if absent.

    Processes starting together (gunicorn workers) wait on a file lock, so one of them exports; the file
    appears by an atomic rename, so a reader never sees half of it."""
    target_dir = artefact_dir(folder)
    target = target_dir / (INT8_NAME if quantized else FP32_NAME)
    if target.exists():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with open(target_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():  # another process built it while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=".export.", dir=target_dir))
        try:
            fp32 = target_dir / FP32_NAME
            if not fp32.exists():
                _export_fp32(Path(folder), tmp / FP32_NAME)
                fp32 = tmp / FP32_NAME
            if quantized:
                _quantize_int8(fp32, tmp / INT8_NAME)
            os.replace(tmp / target.name, target)
            (target_dir / "MATCHMAKER_ONNX.json").write_text(json.dumps(
                {"recipe": RECIPE, "source": str(folder), "files": sorted(p.name for p in target_dir.glob("*.onnx"))}))
        except Exception as exc:
            raise ExportError(f"ONNX export of {folder} failed: {exc}") from exc
        finally:
            for p in tmp.glob("*"):
                p.unlink()
            tmp.rmdir()
    return target
