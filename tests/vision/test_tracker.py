"""Tracker: ids stay stable along a real fire video; a clear error without its library."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from tests.support.data import DATA, FIRE2, REPO
from vision.types import Detections

FIRE = DATA / "fire"


def test_missing_tracker_library_names_the_fix(monkeypatch):
    from vision import tracker

    # None in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "trackers", None)
    with pytest.raises(tracker.TrackerUnavailable, match=r"pip install 'trackers"):
        tracker.Tracker()


def test_the_tracker_does_not_load_torch():
    """The daemon's memory budget has no room for torch (hundreds of MB)."""
    import subprocess

    code = "import sys; from vision.tracker import Tracker; Tracker(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_smoke_never_continues_a_fire_track():
    from vision.tracker import Tracker

    tracker = Tracker()
    box = np.array([[100, 100, 200, 200]], np.float32)
    for _ in range(3):
        fire = tracker.update(Detections(box, [0.8], [0]))
    smoke = None
    for _ in range(2):  # the smoke appears exactly where the fire was
        smoke = tracker.update(Detections(box, [0.8], [1]))
    assert fire.track_id.tolist() == [1] and smoke.track_id.tolist() == [2]


def test_track_id_is_stable_while_the_fire_is_in_view():
    from vision.tracker import Tracker

    frames = FIRE2
    rng = np.random.default_rng(1)
    tracker = Tracker()
    ids: list[int] = []
    for path in frames:
        image = cv2.imread(str(path))
        h, w = image.shape[:2]
        rows = np.loadtxt(FIRE / "labels" / "train" / (path.stem + ".txt"), ndmin=2)
        rows = rows[rows[:, 0] == 0]  # the fire only (frames 28..71)
        if not len(rows):
            break
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        dets = Detections(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1), rng.uniform(0.35, 0.9, len(rows)), rows[:, 0])
        tracked = tracker.update(dets, image)
        assert tracked.track_id is not None
        ids += tracked.track_id.tolist()
        if len(tracked):  # the tracker reports the detector's own box, not a smoothed one
            np.testing.assert_allclose(tracked.xyxy, dets.xyxy, atol=1e-3)
    assert len(ids) >= 38  # of 40 frames with fire
    assert len(set(ids)) == 1
