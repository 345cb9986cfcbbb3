"""Camera health on real frames: frozen feed, black feed, and a live device that drops out
(only the device is faked). Played through the pipeline, as the daemon would."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.data import DATA, FIRE2
from tests.support.fake_camera import FastCamera
from vision.health import HealthConfig, HealthMonitor
from vision.pipeline import Pipeline
from vision.sinks import CallbackSink
from vision.sources import Backoff, CaptureSource, ImageFolderSource
from vision.types import Detections, Frame, HealthEvent

TRAIN = DATA / "fire" / "images" / "train"


def fire2() -> list[Path]:
    return list(FIRE2)


class NoDetections:
    """A detector that sees nothing: these tests are about the feed, not fires."""

    names = {0: "fire", 1: "smoke"}

    def __call__(self, image: np.ndarray) -> Detections:
        return Detections.empty()


def play(folder: Path, images: list[Path], config: HealthConfig) -> list[HealthEvent]:
    folder.mkdir()
    for i, image in enumerate(images):
        (folder / f"{i:04d}.jpg").symlink_to(image)
    events: list = []
    Pipeline(ImageFolderSource(folder, fps=10), NoDetections(), health_config=config, sinks=[CallbackSink(events.append)]).run()
    return events


def test_frozen_feed_is_reported_once_then_back(tmp_path):
    frames = fire2()
    stuck = frames[10]
    images = frames[:10] + [stuck] * 40 + frames[11:21]  # 4 s of one picture at 10 FPS
    events = play(tmp_path / "frames", images, HealthConfig(frozen_after_s=2.0))
    assert [(e.kind, e.frame) for e in events] == [("frozen", 30), ("back", 50)]
    assert events[0].t == pytest.approx(3.0) and "identical" in events[0].detail
    assert events[1].detail == "frozen ended"


def test_moving_real_video_is_healthy(tmp_path):
    assert play(tmp_path / "frames", fire2(), HealthConfig(frozen_after_s=0.5, black_after_s=0.5)) == []


def test_black_feed_is_black_not_frozen(tmp_path):
    black = tmp_path / "black.jpg"
    cv2.imwrite(str(black), np.zeros((512, 512, 3), np.uint8))
    frames = fire2()
    images = frames[:10] + [black] * 30 + frames[10:20]
    events = play(tmp_path / "frames", images, HealthConfig(black_after_s=1.0, frozen_after_s=2.0))
    assert [(e.kind, e.frame) for e in events] == [("black", 20), ("back", 40)]
    assert events[1].detail == "black ended"


def test_dimmed_but_lit_scene_is_not_black():
    """A frame as dark as a covered lens but with detail (a night scene) is not black."""
    image = cv2.imread(str(fire2()[0]))
    night = (image.astype(np.float32) * 0.15).astype(np.uint8)  # mean grey ~16, spread ~10
    monitor = HealthMonitor("porch", HealthConfig(black_after_s=0.0))
    assert monitor.observe(Frame(night, 0, 0.0, 0.0)) == []
    assert monitor.observe(Frame(np.full_like(image, 3), 1, 0.1, 0.0))[0].kind == "black"


def test_lost_camera_is_reported_retried_and_back():
    camera = FastCamera([cv2.imread(str(p)) for p in fire2()[:5]], period=0.005, fail_opens=3,
                        frames_per_connection=15)
    events: list = []
    got_frames = threading.Event()
    pipeline = Pipeline(
        CaptureSource(camera.open, name="porch", live=True), NoDetections(),
        sinks=[CallbackSink(events.append)], backoff=Backoff(0.01, 2, 0.05),
        on_frame=lambda frame, dets: got_frames.set() if frame.index >= 20 else None,
    )
    pipeline.start()
    assert got_frames.wait(20)
    pipeline.stop()
    assert not pipeline.running and pipeline.error is None
    kinds = [e.kind for e in events]
    assert kinds[:4] == ["lost", "back", "lost", "back"]
    assert "connection refused" in events[0].detail and "no frame" in events[2].detail
    assert camera.opens >= 5  # 3 refused, then one per dropped stream
    assert all(e.camera == "porch" for e in events)
    assert events[1].t >= events[0].t and events[3].frame == 15
