"""Compress the fire classifier: structured pruning (torch-pruning), INT8 and FP16 ONNX.

Pruning removes whole channels (physically smaller convolutions, unlike
``torch.nn.utils.prune`` which only zeroes weights); the caller fine-tunes afterwards.
INT8 is onnxruntime static QDQ on Conv/MatMul/Gemm only, calibrated on train crops, the
stem kept float. FP16 uses onnxruntime's own converter (onnxconverter-common is not a
dependency) with float32 inputs/outputs kept. Every variant is checked against FP32 with
:func:`compare`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.onnx_tools import copy_metadata
from vision.classifier import softmax


def prune(model, ratio: float, size: int):
    """A copy of ``model`` (training.classifier.FireNet) with ``ratio`` of the channels of
    every prunable conv removed by L2 group magnitude; the head's inputs shrink with it."""
    import torch
    import torch_pruning as tp

    model = copy.deepcopy(model).eval()
    pruner = tp.pruner.MetaPruner(
        model,
        torch.zeros(1, 3, size, size),
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=ratio,
        ignored_layers=[model.head],
    )
    pruner.step()
    return model


def quantize_int8(src: Path, dst: Path, calibration: np.ndarray) -> Path:
    """Static INT8 (QDQ, per-channel weights) of Conv/MatMul/Gemm, calibrated on ``calibration``
    (N, 3, S, S) normalised inputs, by the detector's recipe (training.quantize_detector): the
    stem stays float, and a float16-storage file gets its float32 weights back first. On v2
    (Lite0) the stem kept float took argmax agreement with FP32 from 0.90 to 0.97."""
    import tempfile

    from training.onnx_tools import float32_weights
    from training.quantize_detector import quantize_int8 as quantize

    with tempfile.TemporaryDirectory() as tmp:
        weights = float32_weights(src, Path(tmp) / "float32.onnx")
        quantize(weights, dst, calibration, keep_head_float=False)
    copy_metadata(src, dst)
    return dst


@dataclass(frozen=True)
class Agreement:
    """A variant against its FP32 source on the same inputs."""

    argmax_agreement: float
    max_prob_diff: float
    mean_prob_diff: float
    n: int


def _probs(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    out = [s.run(["logits"], {name: x[i:i + 256]})[0] for i in range(0, len(x), 256)]
    return softmax(np.concatenate(out).astype(np.float32))


def compare(reference: Path, variant: Path, inputs: np.ndarray) -> Agreement:
    """Argmax agreement and probability differences on (N, 3, S, S) normalised inputs."""
    p, q = _probs(reference, inputs), _probs(variant, inputs)
    diff = np.abs(p - q)
    return Agreement(float((p.argmax(1) == q.argmax(1)).mean()), float(diff.max()),
                     float(diff.mean()), len(inputs))


def variants(src: Path, out_dir: Path, data: Path, calibration: int = 256) -> dict[str, Agreement]:
    """INT8 and FP16 of the classifier ``src`` in ``out_dir`` (``<stem>-int8.onnx``,
    ``<stem>-fp16.onnx``), calibrated on ``calibration`` train crops of its own input size, each
    compared with ``src`` on all val crops."""
    from training.classifier_data import derive_split
    from training.onnx_tools import float32_weights, to_fp16
    from vision.classifier import FireClassifier

    src, out_dir = Path(src), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clf = FireClassifier(src)
    calib = derive_split(data, "train", size=clf.size, limit=calibration)
    val = derive_split(data, "val", size=clf.size)
    built = {
        "int8": quantize_int8(src, out_dir / f"{src.stem}-int8.onnx",
                              np.concatenate([clf.preprocess(img) for img in calib.images])),
        "fp16": to_fp16(float32_weights(src, out_dir / f"{src.stem}-fp32.onnx"), out_dir / f"{src.stem}-fp16.onnx"),
    }
    inputs = np.concatenate([clf.preprocess(img) for img in val.images])
    return {tag: compare(src, path, inputs) for tag, path in built.items()}


if __name__ == "__main__":
    import argparse
    import json
    from dataclasses import asdict

    from firewatch.paths import SHIPPED_CLASSIFIER, data_root

    parser = argparse.ArgumentParser(description="INT8 and FP16 of a classifier, checked against it on val crops")
    parser.add_argument("--src", type=Path, default=SHIPPED_CLASSIFIER)
    parser.add_argument("--out-dir", type=Path, default=Path("runs/classifier-variants"))
    parser.add_argument("--calibration", type=int, default=256, help="train crops for INT8 calibration")
    args = parser.parse_args()
    result = variants(args.src, args.out_dir, data_root(), args.calibration)
    print(json.dumps({tag: asdict(a) for tag, a in result.items()}, indent=2))
