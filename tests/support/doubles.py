"""Stand-ins for the detector and the tracker, so that a pipeline stage can be tested on real
frames without a trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.support.data import label_of
from vision.types import Detections

NAMES = {0: "fire", 1: "smoke"}


class LabelDetector:
    """Detections from ground-truth label files, in play order, one call per frame."""

    names = NAMES

    def __init__(self, images: list[Path], seed: int = 0) -> None:
        self.labels = [label_of(p) for p in images]
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def __call__(self, image: np.ndarray) -> Detections:
        rows = np.loadtxt(self.labels[self.calls], ndmin=2) if self.labels[self.calls].stat().st_size else np.zeros((0, 5))
        self.calls += 1
        h, w = image.shape[:2]
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        return Detections(xyxy, self.rng.uniform(0.35, 0.9, len(rows)), rows[:, 0])


class PassThroughTracker:
    """Keeps the detector's boxes as they are (so they can be compared with a direct call),
    one track per box position."""

    def update(self, detections: Detections, frame: np.ndarray) -> Detections:
        ids = np.arange(1, len(detections) + 1)
        return Detections(detections.xyxy, detections.confidence, detections.class_id, ids)


class FailingAt:
    """A detector double that fails on one frame, in the step named."""

    names = NAMES

    def __init__(self, step: str, frame: int) -> None:
        self.step, self.frame, self.calls = step, frame, 0

    def prepare(self, image):  # type: ignore[no-untyped-def]
        return self._maybe_fail("prepare", image)

    def infer(self, prepared):  # type: ignore[no-untyped-def]
        return self._maybe_fail("infer", prepared)

    def decode(self, inferred):  # type: ignore[no-untyped-def]
        self._maybe_fail("decode", inferred)
        return Detections.empty()

    def _maybe_fail(self, step: str, value):  # type: ignore[no-untyped-def]
        if step == self.step:
            self.calls += 1
            if self.calls > self.frame:
                raise RuntimeError(f"{step} broke")
        return value


class CannedRuntime:
    """A runtime plugin (``vision.detectors.base.ModelRuntime``) that answers every input with
    one fixed raw output, and remembers the inputs: the detector around it is tested alone."""

    def __init__(self, model: Path, options: object) -> None:
        self.model, self.options = model, options
        self.providers = ["canned"]
        self.metadata = {"names": "{0: 'fire', 1: 'smoke'}", "imgsz": "[320, 320]"}
        self.input_shape = [1, 3, 320, 320]
        self.input_dtype = np.dtype(np.float32)
        self.output = np.zeros((1, 6, 0), np.float32)
        self.inputs: list[np.ndarray] = []

    def run(self, blob: np.ndarray) -> np.ndarray:
        self.inputs.append(blob)
        return self.output
