"""The classifier training entry point runs end to end on a slice of the real data."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.data import DATA, SHIPPED_DETECTOR

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

from training.classifier import train_all  # noqa: E402
from training.classifier_data import derive_split  # noqa: E402
from vision.classifier import LABELS, FireClassifier  # noqa: E402

pytestmark = pytest.mark.skipif(not (DATA / "fire" / "manifest.csv").exists(), reason="no shared data")


def test_derived_crops_follow_the_rule() -> None:
    crops = derive_split(DATA, "val", size=64, limit=60)
    assert crops.images.shape[1:] == (64, 64, 3) and crops.images.dtype == np.uint8
    start = crops.labels == LABELS.index("start-fire")
    fire = crops.labels == LABELS.index("fire")
    assert start.any() and fire.any() and (crops.labels == LABELS.index("no-fire")).any()
    assert (crops.area[start] < 0.02).all() and (crops.area[fire & (crops.kind == "box")] >= 0.02).all()
    cairneg = np.char.find(crops.source.astype(str), "cairneg__") >= 0
    assert (crops.labels[cairneg] == LABELS.index("no-fire")).all()


def test_detector_proposals_are_labelled_against_the_fire_labels() -> None:
    """The shipped detector's fire boxes on a train slice: hits on labelled fire are fire or
    start-fire, boxes on fire-free images are no-fire, and the frame's other samples are the
    same as without a detector."""
    detector = SHIPPED_DETECTOR
    plain = derive_split(DATA, "train", size=64, limit=120)
    crops = derive_split(DATA, "train", size=64, limit=120, detector=detector)
    proposal = crops.kind == "proposal"
    assert len(crops) - len(plain) == proposal.sum() > 0
    assert (crops.images[~proposal] == plain.images).all() and (crops.labels[~proposal] == plain.labels).all()
    labels = {LABELS[k] for k in crops.labels[proposal]}
    assert {"fire", "no-fire"} <= labels
    fire_free = {str(s) for s in plain.source[plain.kind == "frame"][plain.labels[plain.kind == "frame"] == LABELS.index("no-fire")]}
    on_fire_free = proposal & np.isin(crops.source.astype(str), list(fire_free))
    assert on_fire_free.any() and (crops.labels[on_fire_free] == LABELS.index("no-fire")).all()
    hits = proposal & (crops.labels != LABELS.index("no-fire"))
    assert (crops.area[hits] > 0).all() and (crops.area[proposal & ~hits] == 0).all()
    # val is never given proposals: its metrics stay comparable with earlier models
    assert len(derive_split(DATA, "val", size=64, limit=20, detector=detector)) == len(derive_split(DATA, "val", size=64, limit=20))


@pytest.mark.slow
def test_train_all_runs_and_exports_a_loadable_model(tmp_path: Path) -> None:
    models = tmp_path / "models"
    report = train_all(DATA, tmp_path / "run", limit=40, teacher_epochs=1, student_epochs=1,
                       finetune_epochs=1, models_dir=models)

    assert set(report.metrics) >= {"teacher", "student", "student-kd", "pruned"}
    assert report.params["pruned"] < report.params[report.chosen]
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["chosen"] == report.chosen
    img = cv2.imread(str(next((DATA / "fire" / "images" / "val").glob("rf__*.jpg"))))
    assert [p.name for p in models.iterdir()] == ["fire-classifier-v1.onnx"]
    run = tmp_path / "run"
    for path in (models / "fire-classifier-v1.onnx", *(run / f"{report.chosen}-{t}.onnx" for t in ("int8", "fp16"))):
        clf = FireClassifier(path)
        result = clf.classify(img)
        assert result.label in LABELS
        assert result.probs.shape == (3,) and abs(float(result.probs.sum()) - 1.0) < 1e-3
        heat = clf.cam(img)
        assert heat.shape == img.shape[:2] and heat.dtype == np.float32
    for agreement in report.agreement.values():
        assert agreement["n"] > 0
