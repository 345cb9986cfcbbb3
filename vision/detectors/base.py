"""The interfaces of detection: what the pipeline runs, and what a runtime plugin provides.

A detector is three stages, so that the pipeline can run each on its own thread and keep
the model busy: ``prepare`` (CPU work on the frame), ``infer`` (the model, nothing else),
``decode`` (CPU work on the model's output). What passes between the stages is the
detector's own business.

A runtime runs one model file on one inference engine (onnxruntime today; TensorRT or
OpenVINO as one more module each, see ``vision.detectors.registry``). It knows nothing of
the model's output layout: decoding belongs to the model format (``vision.detectors.yolo``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vision.types import Detections


class StagedDetector(Protocol):
    """Frames in, ``Detections`` in frame pixels out, in three stages."""

    names: Mapping[int, str]

    def prepare(self, image: np.ndarray) -> Any: ...

    def infer(self, prepared: Any) -> Any: ...

    def decode(self, inferred: Any) -> Detections: ...


@dataclass(frozen=True)
class RuntimeOptions:
    """How to run a model. ``threads``: intra-op threads (None: the engine's default).
    ``providers``: the engine's back ends to try, in order (None: its preference).
    ``cache_dir``: where compiled engines are kept across restarts (None: not kept)."""

    threads: int | None = None
    providers: Sequence[str] | None = None
    cache_dir: Path | None = None


class ModelRuntime(Protocol):
    """One model file loaded on one engine: an input tensor in, the raw output out."""

    #: What the engine really runs on, which may be less than was asked for.
    providers: list[str]
    #: The model's custom metadata (ultralytics writes class names and input size here).
    metadata: Mapping[str, str]
    #: The input's shape as the model declares it (dimensions may be symbolic).
    input_shape: Sequence[Any]
    #: The input's element type: float32, or float16 for a half-precision export.
    input_dtype: np.dtype

    def run(self, blob: np.ndarray) -> np.ndarray: ...
