"""Compress the fire classifier: structured pruning (torch-pruning), INT8 and FP16 ONNX.

Pruning removes whole channels (physically smaller convolutions, unlike
``torch.nn.utils.prune`` which only zeroes weights); the caller fine-tunes afterwards.
INT8 is onnxruntime static QDQ on Conv/MatMul/Gemm only, calibrated on train crops. FP16
uses onnxruntime's own converter (onnxconverter-common is not a dependency) with float32
inputs/outputs kept. Every variant is checked against FP32 with :func:`compare`.
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


class _Calibration:
    """onnxruntime CalibrationDataReader over (N, 3, S, S) float32 inputs."""

    def __init__(self, inputs: np.ndarray, name: str, batch: int = 32) -> None:
        self._it = iter(
            {name: inputs[i:i + batch].astype(np.float32)} for i in range(0, len(inputs), batch)
        )

    def get_next(self):
        return next(self._it, None)


def quantize_int8(src: Path, dst: Path, calibration: np.ndarray) -> Path:
    """Static INT8 (QDQ, per-channel weights) of Conv/MatMul/Gemm, calibrated on ``calibration``
    (N, 3, S, S) normalised inputs."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    quantize_static(
        str(src), str(dst), _Calibration(calibration, name),
        quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv", "MatMul", "Gemm"],
        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
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
