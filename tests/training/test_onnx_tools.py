"""Shipping a detector with its weights stored in float16: half the file, the same detections."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.data import FIRE, FP32_DETECTOR

pytest.importorskip("onnx", reason="ONNX tooling is in the train extra")

from training.onnx_tools import float32_weights, fp16_storage  # noqa: E402
from training.quantize_detector import compare, sample_images  # noqa: E402


def test_fp16_storage_halves_the_file_and_keeps_every_detection(tmp_path: Path) -> None:
    import onnx

    stored = fp16_storage(FP32_DETECTOR, tmp_path / "half.onnx")

    assert stored.stat().st_size < 0.6 * FP32_DETECTOR.stat().st_size
    # The daemon reads class names and input size from the metadata: it must survive.
    meta = lambda p: {m.key: m.value for m in onnx.load(str(p)).metadata_props}  # noqa: E731
    assert meta(stored) == meta(FP32_DETECTOR)
    agreement = compare(FP32_DETECTOR, stored, sample_images(FIRE / "images" / "val", 24))
    assert agreement.fp32_detections > 0
    assert agreement.variant_detections == agreement.fp32_detections
    assert agreement.matched == 1.0
    assert agreement.max_score_diff < 5e-3  # the weights rounded to float16, nothing more


def test_float32_weights_undoes_fp16_storage(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    stored = fp16_storage(FP32_DETECTOR, tmp_path / "half.onnx")
    restored = float32_weights(stored, tmp_path / "restored.onnx")

    graph, original = onnx.load(str(restored)).graph, onnx.load(str(FP32_DETECTOR)).graph
    assert [n.op_type for n in graph.node] == [n.op_type for n in original.node]  # no Cast left
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    assert set(weights) == {i.name for i in original.initializer}
    for init in original.initializer:
        w = numpy_helper.to_array(init)
        assert weights[init.name].dtype == w.dtype
        np.testing.assert_allclose(weights[init.name], w, rtol=1e-3, atol=1e-6)  # float16's rounding
    agreement = compare(stored, restored, sample_images(FIRE / "images" / "val", 8))
    assert agreement.fp32_detections > 0 and agreement.max_score_diff < 1e-5
    # A float32 file passes through unchanged.
    again = float32_weights(FP32_DETECTOR, tmp_path / "same.onnx")
    assert [n.name for n in onnx.load(str(again)).graph.node] == [n.name for n in original.node]
