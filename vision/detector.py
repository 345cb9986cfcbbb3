"""The detector's public names at their first import path, for code written against it.

New code imports ``vision.detectors`` (interface, runtimes, YOLO format) and
``vision.geometry`` (IoU, NMS); nothing here is defined twice.
"""

from vision.detectors.onnxruntime import PREFERRED_PROVIDERS, choose_providers, provider_options
from vision.detectors.yolo import (
    Detector,
    Inferred,
    Letterbox,
    LetterboxGeometry,
    Prepared,
    input_size,
    postprocess,
    read_metadata,
)
from vision.geometry import box_iou, nms

__all__ = [
    "PREFERRED_PROVIDERS",
    "Detector",
    "Inferred",
    "Letterbox",
    "LetterboxGeometry",
    "Prepared",
    "box_iou",
    "choose_providers",
    "input_size",
    "nms",
    "postprocess",
    "provider_options",
    "read_metadata",
]
