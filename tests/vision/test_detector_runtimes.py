"""Detector runtimes are plugins: one chosen by name runs the model, the YOLO format around it
does the letterbox and the decoding, whatever the runtime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.doubles import CannedRuntime
from vision.detectors import RUNTIMES, Detector, RuntimeOptions, open_runtime


@pytest.fixture
def canned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RUNTIMES, "canned", "tests.support.doubles:CannedRuntime")


def test_a_registered_runtime_runs_the_model_and_yolo_decodes_its_output(canned, tmp_path):
    model = tmp_path / "fire.onnx"
    model.write_bytes(b"not read by the canned runtime")
    detector = Detector(model, runtime="canned", threads=3, trt_cache_dir=tmp_path / "cache")
    runtime = detector.runtime
    assert isinstance(runtime, CannedRuntime) and runtime.model == model
    assert runtime.options == RuntimeOptions(threads=3, providers=None, cache_dir=tmp_path / "cache")
    assert detector.names == {0: "fire", 1: "smoke"} and detector.imgsz == (320, 320)
    assert detector.providers == ["canned"]
    # One anchor: a fire box centred at (160, 100) of 40 x 20 input pixels.
    runtime.output = np.array([[[160.0], [100.0], [40.0], [20.0], [0.9], [0.1]]], np.float32)
    dets = detector(np.zeros((640, 640, 3), np.uint8))  # scale 0.5, no padding
    assert runtime.inputs[0].shape == (1, 3, 320, 320)
    assert dets.class_id.tolist() == [0]
    np.testing.assert_allclose(dets.xyxy, [[280, 180, 360, 220]])


def test_an_unknown_runtime_is_named_with_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown detector runtime 'openvino': known are onnxruntime"):
        open_runtime("openvino", tmp_path / "m.onnx")
