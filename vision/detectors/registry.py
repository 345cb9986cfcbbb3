"""Detector runtimes by name, chosen by a setting (``FIREWATCH_DETECTOR_RUNTIME``).

A runtime is one module with a class that takes ``(model, RuntimeOptions)`` and fits
``vision.detectors.base.ModelRuntime``; adding TensorRT-native or OpenVINO is that module
and one line here. Modules are imported only when chosen: an engine that is not installed
costs nothing until asked for.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from vision.detectors.base import ModelRuntime, RuntimeOptions

DEFAULT_RUNTIME = "onnxruntime"
RUNTIMES: dict[str, str] = {
    "onnxruntime": "vision.detectors.onnxruntime:OnnxRuntime",
}


def open_runtime(name: str, model: str | Path, options: RuntimeOptions | None = None) -> ModelRuntime:
    """Load ``model`` on the runtime called ``name``; ValueError names the known ones."""
    if name not in RUNTIMES:
        raise ValueError(f"unknown detector runtime {name!r}: known are {', '.join(sorted(RUNTIMES))}")
    module, _, cls = RUNTIMES[name].partition(":")
    runtime_class = getattr(importlib.import_module(module), cls)
    return runtime_class(model, options or RuntimeOptions())  # type: ignore[no-any-return]
