"""Hard-negative mining on the real train split with the shipped detector."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from tests.support.data import FIRE, SHIPPED_DETECTOR
from training.hard_negatives import mine
from vision.detectors import Detector

pytestmark = pytest.mark.skipif(not (FIRE / "manifest.csv").exists(), reason="no shared data")

CONF = 0.1


def _classes(label: Path) -> set[int]:
    return {int(line.split()[0]) for line in label.read_text().splitlines() if line.strip()} if label.exists() else set()


def test_flagged_fire_free_train_images_are_linked_repeatedly_with_their_smoke(tmp_path: Path) -> None:
    mined = mine(FIRE, SHIPPED_DETECTOR, tmp_path / "hn", conf=CONF, repeats=2, limit=120)
    images = sorted((tmp_path / "hn" / "images" / "train").iterdir())
    assert 0 < mined.flagged < mined.considered < 120
    assert len(images) == mined.written == 2 * mined.flagged

    detector = Detector(SHIPPED_DETECTOR, conf_threshold=CONF, iou_threshold=0.5)
    sources = {}
    for link in images:
        assert link.is_symlink(), "the data is linked, never copied"
        source = link.resolve()
        assert source.is_relative_to(FIRE.resolve() / "images" / "train")
        sources.setdefault(source, []).append(link)
        label = tmp_path / "hn" / "labels" / "train" / f"{link.stem}.txt"
        original = FIRE / "labels" / "train" / f"{source.stem}.txt"
        assert 0 not in _classes(original), f"{source.name} holds a fire label"
        assert label.read_text().split() == (original.read_text().split() if original.exists() else [])
    assert all(len(links) == 2 for links in sources.values())
    smoke_kept = [s for s in sources if _classes(FIRE / "labels" / "train" / f"{s.stem}.txt") == {1}]
    for source in list(sources)[:3] + smoke_kept[:1]:
        assert (detector(cv2.imread(str(source))).class_id == 0).any(), f"{source.name} is not flagged"

    again = mine(FIRE, SHIPPED_DETECTOR, tmp_path / "hn", conf=CONF, repeats=2, limit=120)
    assert again == mined and len(list((tmp_path / "hn" / "images" / "train").iterdir())) == len(images)


def test_unlabelled_only_leaves_out_the_smoke_pictures(tmp_path: Path) -> None:
    every = mine(FIRE, SHIPPED_DETECTOR, tmp_path / "all", conf=CONF, repeats=1, limit=600)
    unlabelled = mine(FIRE, SHIPPED_DETECTOR, tmp_path / "none", conf=CONF, repeats=1, limit=600, unlabelled_only=True)
    labels = list((tmp_path / "none" / "labels" / "train").iterdir())
    assert 0 < unlabelled.flagged < every.flagged and unlabelled.considered < every.considered
    assert len(labels) == unlabelled.flagged and all(not label.read_text() for label in labels)


def test_positives_are_the_fire_images_whose_fires_get_no_box(tmp_path: Path) -> None:
    from training.evaluate import COVER, GroundTruth
    from vision.geometry import box_cover_matrix

    conf = 0.3
    mined = mine(FIRE, SHIPPED_DETECTOR, tmp_path / "hp", conf=conf, repeats=1, limit=300, positives=True)
    links = sorted((tmp_path / "hp" / "images" / "train").iterdir())
    assert 0 < mined.flagged < mined.considered < 300 and len(links) == mined.flagged

    detector = Detector(SHIPPED_DETECTOR, conf_threshold=conf, iou_threshold=0.5)
    for link in links:
        image = cv2.imread(str(link))
        label = tmp_path / "hp" / "labels" / "train" / f"{link.stem}.txt"
        truth = GroundTruth.read(label, image.shape[:2])
        assert 0 in truth.class_id.tolist(), f"{link.name} has no fire label"
        dets = detector(image)
        fires, boxes = truth.xyxy[truth.class_id == 0], dets.xyxy[dets.class_id == 0]
        assert not len(boxes) or box_cover_matrix(boxes, fires).max() < COVER, f"{link.name}: a fire was boxed"
