"""Temporal verification in the event rules and the pipeline: a confirmed fire alerts only
once it moves like fire; a photo of a fire held still does not alert at all."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from firewatch.paths import SHIPPED_DETECTOR, SHIPPED_VERIFICATION
from tests.support.data import DATA
from vision.events import EventConfig, FireEvents
from vision.replay import replay
from vision.types import Detections, Frame
from vision.verification import VerificationModel, Verifier

NAMES = {0: "fire", 1: "smoke"}
CONFIG = EventConfig(confirm_hits=3, confirm_window=5, clear_after_s=1.0)


@dataclass(frozen=True)
class Verdict:
    verified: bool | None
    camera_moving: bool = False
    reason: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"verified": self.verified, "camera_moving": self.camera_moving, "reason": self.reason}


def _one_box(track_id: int = 7) -> Detections:
    return Detections(np.array([[100, 100, 160, 180]], np.float32), np.array([0.6], np.float32),
                      np.array([0]), np.array([track_id]))


def _feed(events: FireEvents, verdicts_per_frame, fps: float = 10.0):
    image = np.zeros((480, 640, 3), np.uint8)
    out = []
    for i, verdict in enumerate(verdicts_per_frame):
        frame = Frame(image, i, i / fps, 1_700_000_000 + i / fps)
        detections = _one_box() if verdict != "gone" else Detections.empty()
        verdicts = {} if verdict in (None, "gone") else {7: verdict}
        out += events.update(detections, frame, verdicts)
    return out


def test_no_alert_until_the_track_is_verified_and_the_event_says_why() -> None:
    events = FireEvents("cam", NAMES, CONFIG)
    moving = Verdict(True, reason="moves like fire: flicker 2 %")
    out = _feed(events, [None] * 6 + [moving])
    assert [e.kind for e in out] == ["started"]
    assert out[0].frame == 6  # K-of-N held from frame 2; the verdict came at 6
    assert out[0].verification["reason"].startswith("moves like fire")
    assert json.loads(out[0].to_json())["verification"]["verified"] is True


def test_held_back_track_never_alerts_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    events = FireEvents("cam", NAMES, CONFIG)
    still = Verdict(False, reason="static: no flicker, no motion")
    with caplog.at_level(logging.INFO, logger="vision.events"):
        out = _feed(events, [still] * 30)
    assert out == []
    held = [r for r in caplog.records if "held back" in r.getMessage()]
    assert len(held) == 1 and "static" in held[0].getMessage()


def test_camera_motion_without_a_verdict_waits() -> None:
    events = FireEvents("cam", NAMES, CONFIG)
    out = _feed(events, [Verdict(None, camera_moving=True)] * 5 + [Verdict(True, camera_moving=True)])
    assert [e.kind for e in out] == ["started"] and out[0].frame == 5


def test_open_alert_counts_only_sightings_that_still_move_like_fire() -> None:
    events = FireEvents("cam", NAMES, CONFIG)
    out = _feed(events, [Verdict(True)] * 3 + [Verdict(False)] * 15)
    assert [e.kind for e in out] == ["started", "cleared"]
    assert out[1].frame == 12  # last good sighting at t=0.2 s, cleared 1 s later
    # Without verdicts the same boxes keep the alert open.
    plain = FireEvents("cam", NAMES, CONFIG)
    image = np.zeros((480, 640, 3), np.uint8)
    kinds = [e.kind for i in range(18) for e in plain.update(_one_box(), Frame(image, i, i / 10, 0.0))]
    assert kinds == ["started"]


needs_models = pytest.mark.skipif(not SHIPPED_DETECTOR.is_file() or not SHIPPED_VERIFICATION.is_file(),
                                  reason="no shipped models")


def _verifier() -> Verifier:
    return Verifier(VerificationModel.load(SHIPPED_VERIFICATION))


def _still_clip(image: Path, folder: Path, frames: int = 30) -> Path:
    """A photo held in front of a camera for 3 s: the same picture with sensor noise."""
    folder.mkdir(parents=True)
    picture = cv2.imread(str(image)).astype(np.int16)
    rng = np.random.default_rng(0)
    for i in range(frames):
        noisy = np.clip(picture + rng.normal(0, 2, picture.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i:04d}.png"), noisy)
    return folder


@needs_models
def test_a_photo_of_a_fire_held_still_is_not_alerted(tmp_path: Path) -> None:
    val = DATA / "fire" / "images" / "val"
    # A large, clear fire the shipped detector confirms when verification is off.
    photo = next(p for p in sorted(val.glob("lz__*.jpg"))
                 if (DATA / "fire" / "labels" / "val" / f"{p.stem}.txt").read_text().startswith("0 "))
    clip = _still_clip(photo, tmp_path / "still")
    plain = replay(clip, model=SHIPPED_DETECTOR, fps=10, threads=1, events=tmp_path / "plain.jsonl")
    verified = replay(clip, model=SHIPPED_DETECTOR, fps=10, threads=1, events=tmp_path / "verified.jsonl",
                      verifier=_verifier())
    assert plain.events["started"] >= 1, "the detector alone alerts on this photo"
    assert verified.events["started"] == 0


@needs_models
def test_a_real_fire_clip_is_verified_and_the_jsonl_says_why(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    summary = replay(DATA / "videos" / "navid__fire4.mp4", model=SHIPPED_DETECTOR, threads=1, events=events,
                     verifier=_verifier())
    assert summary.events["started"] >= 1
    started = [json.loads(line) for line in events.read_text().splitlines() if '"started"' in line]
    why = started[0]["verification"]
    assert why["verified"] is True and why["reason"].startswith("moves like fire")
    assert set(why["features"]) >= {"flicker", "motion_in", "outline_change"}
