"""Shipping a detector with its weights stored in float16: half the file, the same detections."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.data import FIRE, FP32_DETECTOR

pytest.importorskip("onnx", reason="ONNX tooling is in the train extra")

from training.onnx_tools import fp16_storage  # noqa: E402
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
