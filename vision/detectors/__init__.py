"""Detection: a staged interface (prepare -> infer -> decode), model formats, runtimes.

- ``base``        — the interfaces: ``StagedDetector`` (what the pipeline runs),
  ``ModelRuntime`` and ``RuntimeOptions`` (what a runtime plugin provides and takes).
- ``yolo``        — the YOLO format (letterbox, output decoding, metadata) and ``Detector``,
  a model file on a named runtime: what callers build.
- ``registry``    — runtimes by name (``FIREWATCH_DETECTOR_RUNTIME``), imported when chosen.
- ``onnxruntime`` — the onnxruntime runtime (TensorRT -> CUDA -> CPU).
- ``tiles``       — a detector run on the whole frame and on a grid of tiles, for small fires
  (``FIREWATCH_DETECTOR_TILES``, a camera's ``tiles`` key).

Box geometry (IoU, NMS) lives in ``vision.geometry``, shared with the event rules and
with evaluation.
"""

from vision.detectors.base import ModelRuntime, RuntimeOptions, StagedDetector
from vision.detectors.registry import DEFAULT_RUNTIME, RUNTIMES, open_runtime
from vision.detectors.yolo import Detector, YoloDetector, input_size

__all__ = [
    "DEFAULT_RUNTIME",
    "RUNTIMES",
    "Detector",
    "ModelRuntime",
    "RuntimeOptions",
    "StagedDetector",
    "YoloDetector",
    "input_size",
    "open_runtime",
]
