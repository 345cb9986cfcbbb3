"""Hard-label distillation of the detector: the shipped v2 teacher labels real train images,
its boxes fill in what the labels miss, and ultralytics trains on the merged labels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.yolo_data import tiny_dataset
from training.distill_detector import label_with_teacher, teacher_boxes
from training.evaluate import GroundTruth
from vision.detectors import Detector
from vision.geometry import box_iou_matrix
from vision.types import Detections

TEACHER = Path(__file__).parents[2] / "models" / "fire-detector.onnx"


def test_teacher_boxes_skip_what_the_labels_already_cover() -> None:
    truth = GroundTruth(np.array([[10, 10, 50, 50]], np.float32), np.array([0], np.int32))
    teacher = Detections(
        xyxy=[[12, 11, 51, 49], [12, 11, 51, 49], [100, 100, 140, 150]],
        confidence=[0.9, 0.8, 0.7],
        class_id=[0, 1, 0],
    )
    added = teacher_boxes(truth, teacher, iou=0.5)
    # The covered fire goes; the same place as smoke and the unlabelled fire stay.
    assert added.class_id.tolist() == [1, 0]
    assert added.xyxy.tolist() == [[12, 11, 51, 49], [100, 100, 140, 150]]
    assert len(teacher_boxes(GroundTruth(np.zeros((0, 4), np.float32), np.zeros(0, np.int32)), teacher).class_id) == 3


def test_label_lines_round_trip_and_clip(tmp_path: Path) -> None:
    boxes = GroundTruth(np.array([[20, 10, 60, 50], [-5, 0, 10, 30], [5, 5, 5, 9]], np.float32),
                        np.array([1, 0, 0], np.int32), (100, 200))
    lines = boxes.lines()
    assert len(lines) == 2  # the zero-width box is dropped
    assert lines[0] == "1 0.200000 0.300000 0.200000 0.400000"
    assert lines[1] == "0 0.025000 0.150000 0.050000 0.300000"  # clipped to the left edge
    (tmp_path / "a.txt").write_text("\n".join(lines))
    again = GroundTruth.read(tmp_path / "a.txt", (100, 200))
    assert again.class_id.tolist() == [1, 0]
    assert np.allclose(again.xyxy, [[20, 10, 60, 50], [0, 0, 10, 30]], atol=1e-3)


@pytest.mark.slow
def test_the_teacher_finds_hidden_fires_and_ultralytics_reads_its_labels(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tiny_dataset(tmp_path / "fire", n_train=8, n_val=2)
    (data / "images" / "train" / "broken.jpg").write_bytes(b"not a jpeg")
    labels = sorted((data / "labels" / "train").glob("*.txt"))
    with_fire = [p for p in labels if p.read_text().strip()]
    hidden, kept = with_fire[:3], with_fire[3:]
    truths = {p.stem: p.read_text() for p in hidden}
    for p in hidden:
        p.write_text("")

    teacher = Detector(TEACHER, conf_threshold=0.3, threads=1)
    result = label_with_teacher(data, teacher, tmp_path / "kd")

    out = tmp_path / "kd" / "labels" / "train"
    assert result.images == len(labels) == len(list(out.glob("*.txt")))  # the broken file is skipped
    assert "skipped broken.jpg: not a readable image" in caplog.text
    for p in kept:  # labelled boxes come through unchanged, first
        assert (out / p.name).read_text().startswith(p.read_text().strip())
    refound = 0
    for stem, text in truths.items():
        shape = cv2.imread(str(data / "images" / "train" / f"{stem}.jpg")).shape[:2]
        (tmp_path / "truth.txt").write_text(text)
        truth = GroundTruth.read(tmp_path / "truth.txt", shape)
        merged = GroundTruth.read(out / f"{stem}.txt", shape)
        if len(merged) and (box_iou_matrix(merged.xyxy, truth.xyxy) >= 0.3).any():
            refound += 1
    assert refound >= 2, "the teacher should find most of the fires whose labels were hidden"
    assert result.images_with_additions >= refound and sum(result.added_by_class.values()) >= refound

    from training import offline

    offline.prepare()
    from ultralytics.data.utils import check_det_dataset, img2label_paths

    spec = check_det_dataset(str(result.data_yaml))
    images = sorted(str(p) for p in Path(spec["train"]).iterdir())
    assert all(Path(p).is_symlink() for p in images)  # linked, not copied
    assert {Path(p).parent for p in img2label_paths(images)} == {out}
    assert Path(spec["val"]).resolve() == (data / "images" / "val").resolve()
