"""The one-shot GPU job, run here on CPU: bundle a tiny slice, train one epoch, export.

This is the check that the job works the moment a GPU machine is lent: the same script,
the same bundle layout, only ``--device cpu`` and a tiny slice instead of the full set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

pytest.importorskip("ultralytics", reason="training needs the train extra")
pytest.importorskip("efficientnet_lite_pytorch", reason="detector v2 needs the train extra")

from firewatch.paths import REPO_ROOT, data_root  # noqa: E402
from training import gpu_bundle, gpu_train  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "b"
    report = gpu_bundle.build_bundle(out, data_root() / "fire", imgsz=160, quality=50, limit=6, wheels=False,
                                     fire_only=data_root() / "fire-extra")
    assert report.images == 24
    assert report.weights_bytes > 0
    return out


def test_bundle_shrinks_images_and_keeps_labels(bundle: Path) -> None:
    source = data_root() / "fire"
    spec = yaml.safe_load((bundle / "data" / "fire" / "data.yaml").read_text())
    assert spec["path"] == "." and spec["names"] == {0: "fire", 1: "smoke"}
    for image in sorted((bundle / "data" / "fire" / "images" / "val").glob("*.jpg")):
        h, w = cv2.imread(str(image)).shape[:2]
        assert max(h, w) <= 160
        original = cv2.imread(str(source / "images" / "val" / image.name))
        # Same picture, smaller: the aspect ratio survives the resize.
        assert abs(w / h - original.shape[1] / original.shape[0]) < 0.02
        label = f"labels/val/{image.stem}.txt"
        assert (bundle / "data" / "fire" / label).read_text() == (source / label).read_text()


@pytest.mark.slow
def test_gpu_job_trains_and_exports_on_cpu(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "training" / "gpu_job.sh"), str(bundle), str(out),
         "--device", "cpu", "--epochs", "1", "--hours", "0", "--batch", "4", "--workers", "0", "--imgsz", "160"],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = (out / "train.log").read_text()
    assert "smoke loss masked on 6 fire-only images of 12" in log
    weights = out / "weights-fp16.pt"
    import torch

    saved = torch.load(weights, map_location="cpu", weights_only=False)
    assert saved["model"].yaml["backbone"][0][2] == "TorchVision"
    assert next(saved["model"].parameters()).dtype == torch.float16

    from vision.detectors import Detector

    detector = Detector(out / "fire-detector.onnx", conf_threshold=0.0)
    assert set(detector.names.values()) == {"fire", "smoke"}
    frame = cv2.imread(str(next((bundle / "data" / "fire" / "images" / "val").glob("*.jpg"))))
    detections = detector(frame)
    assert np.isfinite(detections.xyxy).all()

    # The polars-free reader sees results.csv exactly as ultralytics' own reader does.
    from ultralytics.engine.trainer import BaseTrainer

    class Run:
        csv = out / "results.csv"

    assert gpu_train._results_without_polars(Run()) == BaseTrainer.read_results_csv(Run())
