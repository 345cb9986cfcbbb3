"""Fire / start-fire / no-fire classifier at run time (onnxruntime only, no torch).

The pipeline grades a confirmed detection by cropping its box with ``vision.crops.context_crop``
(the same rule the training crops were made with) and calling :meth:`FireClassifier.classify`.
The ONNX file has two outputs: ``logits`` (N, 3) and ``features`` (N, C, h, w), the last
feature map before global-average pooling; the linear head's weights sit in the model's
metadata, so :meth:`FireClassifier.cam` computes an exact class-activation map with numpy.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

LABELS = ("fire", "start-fire", "no-fire")


@dataclass(frozen=True)
class ClassifierResult:
    """One classification: ``probs`` (3,) float32 in the order of :data:`LABELS`;
    ``no_fire`` is p(no-fire), what the pipeline's veto compares."""

    label: str
    confidence: float
    probs: np.ndarray
    no_fire: float


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class FireClassifier:
    """Loads ``fire-classifier*.onnx`` and classifies BGR crops or frames."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        log.info("fire classifier %s on %s", path, self.session.get_providers())
        meta = self.session.get_modelmeta().custom_metadata_map
        self.labels: tuple[str, ...] = tuple(json.loads(meta["class_names"]))
        self._no_fire = self.labels.index("no-fire")
        self.size = int(meta["input_size"])
        self.mean = np.asarray(json.loads(meta["mean"]), np.float32).reshape(3, 1, 1)
        self.std = np.asarray(json.loads(meta["std"]), np.float32).reshape(3, 1, 1)
        # (classes, C) and (classes,): the linear head after global-average pooling.
        self.head_w = np.asarray(json.loads(meta["head_weight"]), np.float32)
        self.head_b = np.asarray(json.loads(meta["head_bias"]), np.float32)
        inp = self.session.get_inputs()[0]
        self._input = inp.name
        self._dtype = np.float16 if "float16" in inp.type else np.float32

    def preprocess(self, image_bgr: np.ndarray) -> np.ndarray:
        """(1, 3, S, S) normalised RGB tensor; the image is resized whole (no letterbox)."""
        img = cv2.resize(image_bgr, (self.size, self.size), interpolation=cv2.INTER_AREA)
        x = img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0
        return ((x - self.mean) / self.std)[None].astype(self._dtype)

    def _run(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, features = self.session.run(None, {self._input: self.preprocess(image_bgr)})
        return logits[0].astype(np.float32), features[0].astype(np.float32)

    def classify(self, crop_bgr: np.ndarray) -> ClassifierResult:
        """Classify one BGR crop (any size) into fire / start-fire / no-fire."""
        logits, _ = self._run(crop_bgr)
        probs = softmax(logits)
        k = int(probs.argmax())
        return ClassifierResult(self.labels[k], float(probs[k]), probs, float(probs[self._no_fire]))

    def cam(self, image_bgr: np.ndarray, label: str | None = None) -> np.ndarray:
        """Class-activation map, float32 (H, W) in 0..1 for the image's own size.

        ``label`` defaults to the more probable of fire / start-fire: the map shows where
        the fire evidence is, which is what an operator looking at an alert wants.
        """
        logits, features = self._run(image_bgr)
        if label is None:
            probs = softmax(logits)
            label = max(("fire", "start-fire"), key=lambda n: probs[self.labels.index(n)])
        k = self.labels.index(label)
        # GAP + linear is linear, so the class score is the mean of this map plus the bias.
        heat = np.tensordot(self.head_w[k], features, axes=(0, 0))
        heat = np.maximum(heat, 0.0)
        if heat.max() > 0:
            heat = heat / heat.max()
        h, w = image_bgr.shape[:2]
        return cv2.resize(heat.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
