"""Threshold x veto choice: the sweep's arithmetic on hand-made images, and one real pass."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.data import DATA, SHIPPED_CLASSIFIER, SHIPPED_DETECTOR
from training.cascade_sweep import (
    VETOES,
    ImageBoxes,
    Point,
    best_kept,
    choose,
    collect,
    cross_validate,
    grid,
)


def image(name: str, has_fire: bool, *boxes: tuple[float, float], group: str | None = None) -> ImageBoxes:
    conf = np.array([b[0] for b in boxes], np.float32)
    no_fire = np.array([b[1] for b in boxes], np.float32)
    return ImageBoxes(name, group or name, has_fire, conf, no_fire)


def test_veto_drops_boxes_the_classifier_doubts() -> None:
    images = [
        image("fire", True, (0.75, 0.05), (0.25, 0.9)),
        image("lamp", False, (0.5, 0.4)),
        image("empty", False),
    ]
    kept = best_kept(images, (0.1, 0.5, 1.01))
    assert kept.tolist() == [[0.75, 0.75, 0.75], [0.0, 0.5, 0.5], [0.0, 0.0, 0.0]]
    points = {(p.conf, p.veto): p for p in grid(np.array([True, False, False]), kept, (0.4,), (0.1, 0.5))}
    assert (points[(0.4, 0.1)].f1, points[(0.4, 0.1)].fp) == (1.0, 0)
    assert (points[(0.4, 0.5)].precision, points[(0.4, 0.5)].fp_rate) == (0.5, 0.5)


def test_choice_keeps_to_the_false_alarm_budget() -> None:
    points = [
        Point(0.2, 1.01, 0.9, 0.95, 0.92, 0.08, 8),
        Point(0.3, 0.5, 0.95, 0.8, 0.87, 0.03, 3),
        Point(0.3, 0.2, 0.96, 0.8, 0.87, 0.02, 2),
        Point(0.4, 0.5, 0.97, 0.6, 0.74, 0.01, 1),
    ]
    assert choose(points, 0.03) == points[1]  # same F1 and threshold: the looser veto
    assert choose(points, 0.005) is None


def test_cross_validation_scores_each_half_with_the_other_halfs_choice() -> None:
    # Two groups that want different thresholds: each half's pick is scored on the other.
    images = [image(f"a{i}", True, (0.5, 0.0), group="a") for i in range(5)]
    images += [image(f"b{i}", False, (0.45, 0.0), group="b") for i in range(5)]
    cv = cross_validate(images, confs=(0.4, 0.6), vetoes=(1.01,), max_fp=0.0, repeats=3)
    # Half "a" (all fire) picks 0.4, which flags every fire-free image of "b"; half "b"
    # (nothing to find) picks 0.6, which misses every fire of "a".
    assert (cv.f1_mean, cv.fp_rate_mean) == (0.0, 1.0)
    assert sorted(set(cv.picks)) == [(0.4, 1.01), (0.6, 1.01)]


@pytest.mark.skipif(not (DATA / "fire" / "manifest.csv").exists(), reason="no shared data")
def test_real_pass_with_the_shipped_models() -> None:
    images = collect(DATA / "fire", SHIPPED_DETECTOR, SHIPPED_CLASSIFIER, limit=60)
    assert len(images) == 60 and any(im.has_fire for im in images) and not all(im.has_fire for im in images)
    assert all(len(im.conf) == len(im.no_fire) and ((im.no_fire >= 0) & (im.no_fire <= 1)).all() for im in images)
    assert len({im.group for im in images}) > 10  # groups come from the manifest, not one per file name
    kept = best_kept(images, VETOES)
    # a looser veto never keeps fewer boxes, and "off" keeps every box
    assert (np.diff(kept, axis=1) >= 0).all()
    assert kept[:, -1].tolist() == [float(im.conf.max(initial=0.0)) for im in images]
