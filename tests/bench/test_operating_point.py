"""The operating-point sweep: thresholds applied after one detector pass, confirmation and
timing counted in frames of real footage (label-driven detections, so the rules are tested
apart from the model's skill)."""

from __future__ import annotations

import cv2
import pytest

from bench.operating_point import Footage, Setting, evaluate, started_fires, table
from tests.support.data import FIRE2, fire_free_cctv
from tests.support.doubles import NAMES, LabelDetector
from vision.types import Detections


@pytest.fixture(scope="module")
def clip() -> Footage:
    frames = FIRE2[:30]
    detector = LabelDetector(frames)
    images = [cv2.imread(str(p)) for p in frames]
    detections = [detector(image) for image in images]
    for d in detections:  # one known score, so the threshold decides
        d.confidence[:] = 0.5
    first = next(i for i, d in enumerate(detections) if (d.class_id == 0).any())
    return Footage("fire2", images, detections, first)


def test_threshold_applied_after_detection_decides_the_alert(clip: Footage) -> None:
    at = started_fires(clip, Setting(0.4, 3, 5, 0.9), NAMES, classifier=None)
    assert at and at[0] >= clip.first_fire + 2  # three sightings at least
    assert started_fires(clip, Setting(0.6, 3, 5, 0.9), NAMES, classifier=None) == []
    later = started_fires(clip, Setting(0.4, 5, 8, 0.9), NAMES, classifier=None)
    assert later[0] > at[0]  # a stricter confirmation costs frames


def test_outcome_counts_clips_and_false_alerts(clip: Footage) -> None:
    stills = fire_free_cctv(3)
    quiet = Footage("fire-free", [cv2.imread(str(p)) for p in stills for _ in range(10)],
                    [Detections.empty() for _ in range(30)], None)
    outcome = evaluate(Setting(0.4, 3, 5, 0.9), [clip], quiet, NAMES, classifier=None)
    assert outcome.fire_clips == 1 and outcome.fire_clips_alerted == 1
    assert 0 < outcome.time_to_fire_alert_s[0] <= 1.0
    assert outcome.false_alerts == 0 and outcome.false_alerts_per_hour == 0
    assert outcome.fire_free_hours == pytest.approx(30 / 10 / 3600, abs=1e-4)
    assert "1/1" in table([outcome])
