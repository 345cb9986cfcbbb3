"""Temporal verification on real frames: the real detector and tracker feed it, as in the
daemon. A fireplace clip moves like fire; a fire photo held still does not."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from firewatch.paths import SHIPPED_VERIFICATION as DEFAULT_MODEL
from tests.support.data import DATA, SHIPPED_DETECTOR
from vision.types import Detections
from vision.verification import VerificationConfig, VerificationModel, Verifier, box_features

FIRE_CLIP = DATA / "videos" / "navid__fire4.mp4"  # a fireplace, camera still
# A val frame of a CCTV fire video (never fitted on): the detector boxes the fire in it.
FIRE_PHOTO = next(iter(sorted((DATA / "fire" / "images" / "val").glob("rf__pexels-alan-w-8365993_mp4-0_*.jpg"))), None)
pytestmark = [
    pytest.mark.skipif(not FIRE_CLIP.is_file() or FIRE_PHOTO is None, reason="no shared data"),
    pytest.mark.skipif(not SHIPPED_DETECTOR.is_file() or not DEFAULT_MODEL.is_file(), reason="no shipped models"),
]


@pytest.fixture(scope="module")
def detect():  # type: ignore[no-untyped-def]
    from vision.detectors import Detector
    from vision.tracker import Tracker

    detector = Detector(SHIPPED_DETECTOR, conf_threshold=0.25, iou_threshold=0.5, threads=1)

    def run(frames: list[np.ndarray]) -> list[Detections]:
        tracker = Tracker()
        return [tracker.update(detector(f)) for f in frames]

    return run


def _clip(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(FIRE_CLIP))
    frames = [cap.read()[1] for _ in range(n)]
    cap.release()
    return frames


def _held_still(n: int) -> list[np.ndarray]:
    image = cv2.imread(str(FIRE_PHOTO)).astype(np.float32)
    rng = np.random.default_rng(0)
    return [np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def _verdicts(frames: list[np.ndarray], dets: list[Detections], verifier: Verifier | None = None):  # type: ignore[no-untyped-def]
    verifier = verifier or Verifier(VerificationModel.load(DEFAULT_MODEL))
    return [verifier.update(f, d) for f, d in zip(frames, dets)]


def test_a_fire_clip_track_is_verified(detect) -> None:  # type: ignore[no-untyped-def]
    frames = _clip(30)
    results = _verdicts(frames, detect(frames))
    verified = [v for r in results for v in r.verdicts.values() if v.verified]
    assert verified, "no track of the fireplace was verified in 3 s"
    assert verified[0].reason.startswith("moves like fire")
    assert all(not r.camera.moving for r in results)


def test_a_fire_photo_held_still_is_not_verified(detect) -> None:  # type: ignore[no-untyped-def]
    frames = _held_still(30)
    dets = detect(frames)
    assert sum(len(d) for d in dets) >= 20, "the detector should box the fire in this photo"
    final = [v for r in _verdicts(frames, dets)[-10:] for v in r.verdicts.values()]
    assert final and all(v.verified is False for v in final)
    assert "static" in final[-1].reason


def test_no_verdict_before_enough_frames(detect) -> None:  # type: ignore[no-untyped-def]
    config = VerificationConfig()
    frames = _clip(config.min_frames + 5)
    dets = detect(frames)
    results = _verdicts(frames, dets, Verifier(VerificationModel.load(DEFAULT_MODEL), config))
    first_seen: dict[int, int] = {}
    for i, (d, r) in enumerate(zip(dets, results)):
        for tid in d.track_id.tolist():
            first_seen.setdefault(tid, i)
            if i - first_seen[tid] + 1 < config.min_frames:
                assert r.verdicts[tid].verified is None and r.verdicts[tid].score is None
    assert any(v.verified is not None for v in results[-1].verdicts.values())


def test_features_are_finite_and_serialisable(detect) -> None:  # type: ignore[no-untyped-def]
    import json

    frames = _clip(20)
    results = _verdicts(frames, detect(frames))
    with_features = [v for r in results for v in r.verdicts.values() if v.features]
    assert with_features
    for v in with_features:
        assert all(isinstance(x, float) and math.isfinite(x) for x in v.features.values())
        assert json.loads(json.dumps(v.to_dict()))["features"].keys() == v.features.keys()


def _shaken(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The same frames from a shaking camera: every other frame shifted by 3 % of the width."""
    shift = int(0.03 * frames[0].shape[1])
    return [np.roll(f, shift, axis=1) if i % 2 else f for i, f in enumerate(frames)]


def _shaken_boxes(dets: list[Detections], width: int) -> list[Detections]:
    shift = np.float32([int(0.03 * width), 0, int(0.03 * width), 0])
    return [Detections(d.xyxy + shift, d.confidence, d.class_id, d.track_id) if i % 2 else d for i, d in enumerate(dets)]


def test_a_fire_filmed_by_a_shaking_camera_is_still_verified(detect) -> None:  # type: ignore[no-untyped-def]
    frames = _clip(20)
    dets = detect(frames)
    results = _verdicts(_shaken(frames), _shaken_boxes(dets, frames[0].shape[1]))
    late = [v for r in results[8:] for v in r.verdicts.values()]
    assert all(r.camera.moving for r in results[2:]), "the shake is camera motion"
    assert late and all(v.camera_moving for v in late)
    assert any(v.verified for v in late), "the flames still flicker once the shake is undone"
    assert "camera motion compensated" in next(v for v in late if v.verified).reason


def test_a_fire_photo_held_by_a_shaking_camera_is_not_verified(detect) -> None:  # type: ignore[no-untyped-def]
    frames = _held_still(30)
    dets = detect(frames)
    results = _verdicts(_shaken(frames), _shaken_boxes(dets, frames[0].shape[1]))
    final = [v for r in results[-15:] for v in r.verdicts.values()]
    assert all(r.camera.moving for r in results[2:])
    # Without the shake undone, every box would "move"; aligned, the photo is still. A box that
    # appears late has no verdict yet (None): it is not verified either.
    assert final and not any(v.verified for v in final)
    assert any(v.verified is False for v in final)


def test_hysteresis_an_open_alert_needs_less() -> None:
    model = VerificationModel.load(DEFAULT_MODEL)
    assert model.hold_threshold < model.threshold_for(15)
    between = (model.hold_threshold + model.threshold_for(15)) / 2
    assert not model.decide(between, alert_open=False)
    assert model.decide(between, alert_open=True)


def test_thresholds_by_window_length() -> None:
    model = VerificationModel.load(DEFAULT_MODEL)
    assert len(model.thresholds) == VerificationConfig().window - model.min_frames + 1
    # A full window reads the last threshold, however long the stream has run.
    assert model.threshold_for(15) == model.threshold_for(1000) == model.thresholds[-1]
    assert model.threshold_for(model.min_frames) == model.thresholds[0]
    assert all(0.5 <= t < 1 for t in model.thresholds)


def test_box_features_see_growth_and_a_steady_outline() -> None:
    steady = np.tile(np.array([[10, 10, 50, 50]], np.float32), (10, 1))
    f = box_features(steady)
    assert f["growth"] == pytest.approx(0.0) and f["outline_change"] == pytest.approx(0.0)
    growing = np.array([[10, 10, 50 + 4 * i, 50 + 4 * i] for i in range(10)], np.float32)
    g = box_features(growing)
    assert g["growth"] > 0.5 and g["outline_change"] > 0.05
