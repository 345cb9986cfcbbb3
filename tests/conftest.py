"""Fixtures shared by several test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Ultralytics probes the network when imported unless told it is offline; any test
# module may import it, so this must hold before the first import.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

REPO = Path(__file__).resolve().parent.parent
# Absolute, and exported so: tests run commands from temporary folders.
DATA = Path(os.environ.get("FIREWATCH_DATA", REPO.parent / "shared" / "data")).resolve()
os.environ["FIREWATCH_DATA"] = str(DATA)
SHIPPED_DETECTOR = REPO / "models" / "fire-detector.onnx"
SHIPPED_CLASSIFIER = REPO / "models" / "fire-classifier.onnx"


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained fire-detector (scale p) exported by ultralytics, as training/ would."""
    pytest.importorskip("ultralytics", reason="exporting a model needs the train extra")
    root = tmp_path_factory.mktemp("tiny-yolo")
    os.environ["YOLO_CONFIG_DIR"] = str(root / "config")
    import torch

    torch.set_num_threads(1)
    from training.detector import export_untrained

    return export_untrained(root / "fire-detector-p.onnx")
