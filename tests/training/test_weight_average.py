"""Averaging checkpoints of one run into one detector, on v2's committed checkpoints (stage 1,
and stage 2 that started from it): the mean of every weight and BatchNorm statistic, a slim
file that exports and detects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.data import FIRE

pytest.importorskip("ultralytics", reason="training needs the train extra")

from training.detector import CHECKPOINTS, SLIM_KEY, checkpoint_weights  # noqa: E402
from training.weight_average import average_checkpoints  # noqa: E402

STAGE1, STAGE2 = CHECKPOINTS / "fire-detector-lite0-last.pt", CHECKPOINTS / "fire-detector-lite0-ft-last.pt"
pytestmark = pytest.mark.skipif(not (STAGE1.is_file() and STAGE2.is_file()), reason="no committed v2 checkpoints")


def _load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def test_the_average_is_the_mean_of_every_weight_and_batchnorm_statistic(tmp_path: Path) -> None:
    out = average_checkpoints([STAGE1, STAGE2], tmp_path / "avg.pt")
    avg, a, b = _load(out), _load(STAGE1), _load(STAGE2)

    assert avg["optimizer"] is None and avg[SLIM_KEY] and avg["averaged_from"] == [STAGE1.name, STAGE2.name]
    assert avg["epoch"] == b["epoch"] and avg["train_args"] == b["train_args"]
    got, sa, sb = (checkpoint_weights(c).float().state_dict() for c in (avg, a, b))
    assert list(got) == list(sa)
    floats = [k for k in got if got[k].dtype.is_floating_point]
    assert any(k.endswith("running_var") for k in floats)
    differ = 0
    for k in floats:
        mean = (sa[k].double() + sb[k].double()) / 2
        np.testing.assert_allclose(got[k].double().numpy(), mean.numpy(), rtol=2e-3, atol=1e-4)  # stored in fp16
        differ += not np.allclose(sa[k].double().numpy(), sb[k].double().numpy(), rtol=2e-3, atol=1e-4)
    assert differ > len(floats) // 2, "the two stages differ, so the check above can fail"


def test_checkpoints_of_another_network_are_refused(tmp_path: Path) -> None:
    import torch

    from training import offline
    from training.detector import model_yaml

    offline.prepare()
    from ultralytics import YOLO

    other = tmp_path / "v1-shaped.pt"
    torch.save({"model": YOLO(str(model_yaml("p", tmp_path))).model, "epoch": 0}, other)
    with pytest.raises(ValueError, match="not the same network"):
        average_checkpoints([STAGE2, other], tmp_path / "avg.pt")
    with pytest.raises(ValueError, match="at least two"):
        average_checkpoints([STAGE2], tmp_path / "avg.pt")


def test_the_average_exports_and_detects_fire(tmp_path: Path) -> None:
    import cv2

    from training.detector import export_detector
    from vision.detectors import Detector

    onnx = export_detector(average_checkpoints([STAGE1, STAGE2], tmp_path / "avg.pt"), tmp_path / "avg.onnx", imgsz=320)
    detector = Detector(onnx, conf_threshold=0.25, threads=1)
    assert detector.names == {0: "fire", 1: "smoke"}
    fires = [p for p in sorted((FIRE / "labels" / "val").glob("*.txt")) if p.read_text().startswith("0 ")][:10]
    found = sum(0 in detector(cv2.imread(str(FIRE / "images" / "val" / f"{p.stem}.jpg"))).class_id for p in fires)
    assert found >= 5
