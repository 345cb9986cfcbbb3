"""What /status says about one camera: the pipeline's typed status on real frames (a folder
that plays to its end, a fake camera device that drops and stays away) and its line."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from bot.camera_lines import camera_line
from tests.support.data import FIRE2, fire_free_cctv, folder_of
from tests.support.fake_camera import FlakyCamera
from vision.camera_state import STALLED_AFTER_S, FrameRate, camera_state
from vision.pipeline import Pipeline, PipelineStatus
from vision.sources import Backoff, CaptureSource, ImageFolderSource
from vision.types import Detections

pytestmark = pytest.mark.skipif(len(FIRE2) != 51, reason="needs the shared fire2_mp4 frames")


class NoDetections:
    names = {0: "fire", 1: "smoke"}

    def __call__(self, image: np.ndarray) -> Detections:
        return Detections.empty()


class GoneCamera(FlakyCamera):
    """Delivers one connection's frames, then refuses every reconnection (cable pulled)."""

    def open(self):  # type: ignore[no-untyped-def]
        if self.opens >= 1:
            self.opens += 1
            raise OSError("connection refused")
        return super().open()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def wait_until(predicate, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_frame_rate_counts_the_last_seconds_only() -> None:
    clock = Clock()
    rate = FrameRate(window=5.0, clock=clock)
    assert rate.rate() == 0.0
    for _ in range(60):  # 10 FPS for 6 s
        rate.tick()
        clock.now += 0.1
    assert rate.rate() == pytest.approx(10.0, abs=0.3)
    clock.now += 2.5  # half the window without a frame: half the rate
    assert rate.rate() == pytest.approx(5.0, abs=0.3)
    clock.now += 3.0
    assert rate.rate() == 0.0


def test_frame_rate_before_the_window_is_full() -> None:
    clock = Clock()
    rate = FrameRate(window=5.0, clock=clock)
    rate.tick()
    assert rate.rate() == 0.0  # one frame says nothing of a rate
    for _ in range(4):
        clock.now += 0.5
        rate.tick()
    assert rate.rate() == pytest.approx(2.0)


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"running": True, "last_frame": None}, ("starting", None)),
    ({"running": True, "last_frame": 99.0}, ("live", None)),
    ({"running": True, "last_frame": 100.0 - STALLED_AFTER_S}, ("stalled", 100.0 - STALLED_AFTER_S)),
    ({"running": True, "last_frame": 99.0, "lost_since": 98.0}, ("lost", 98.0)),
    ({"running": False, "finished_at": 90.0, "last_frame": 89.0}, ("ended", 90.0)),
    ({"running": False, "finished_at": 90.0, "stopped": True}, ("stopped", 90.0)),
    ({"running": False, "finished_at": 90.0, "error": "RuntimeError: boom"}, ("failed", 90.0)),
])
def test_camera_state(kwargs: dict, expected: tuple) -> None:
    args = {"error": None, "stopped": False, "finished_at": None, "lost_since": None, "last_frame": None,
            "now": 100.0, **kwargs}
    assert camera_state(**args) == expected


def test_a_folder_that_played_to_its_end_is_ended_not_ok(tmp_path) -> None:
    pipeline = Pipeline(ImageFolderSource(folder_of(tmp_path, fire_free_cctv(8)), fps=20), NoDetections(),
                        camera="attic")
    assert pipeline.status().state == "starting"
    before = time.time()
    pipeline.start()
    wait_until(lambda: not pipeline.running)
    status = pipeline.status()
    assert (status.state, status.frames, status.error) == ("ended", 8, None)
    assert before <= status.last_frame <= status.since <= time.time()  # type: ignore[operator]
    line = camera_line(status, now=status.since + 180)  # type: ignore[operator]
    assert line.startswith("📷 attic: ended at ") and "(played to its end)" in line
    assert "last frame 3 min ago" in line and "8 frames" in line
    assert "FPS" not in line and " ok" not in line


def test_a_camera_that_drops_and_stays_away_is_lost_since_then() -> None:
    images = [cv2.imread(str(p)) for p in FIRE2[:5]]
    camera = GoneCamera(images, fail_opens=0, frames_per_connection=30)
    pipeline = Pipeline(CaptureSource(camera.open, name="porch", live=True), NoDetections(), camera="porch",
                        backoff=Backoff(0.01, 2, 0.05))
    live: list[PipelineStatus] = []
    pipeline.on_frame = lambda frame, _: live.append(pipeline.status()) if frame.index == 20 else None
    pipeline.start()
    try:
        wait_until(lambda: pipeline.status().state == "lost")
        status = pipeline.status()
    finally:
        pipeline.stop()
    assert live and live[0].state == "live" and live[0].fps > 0
    assert status.frames == 30 and status.running and status.health == "lost"
    assert status.last_frame <= status.since <= time.time()  # type: ignore[operator]
    line = camera_line(status, now=time.time())
    assert line.startswith("📷 porch: lost since ") and "FPS" not in line and "30 frames" in line
    assert pipeline.status().state == "stopped"


def test_the_line_of_a_live_camera() -> None:
    now = time.time()
    status = PipelineStatus("yard", True, "ok", 9.84, 1200, 2, None, "live", None, now - 0.5)
    assert camera_line(status, zones=1, now=now) == (
        "📷 yard: live, 9.8 FPS, last frame just now, 2 fires in view, 1200 frames, 1 ignore zone")
    frozen = PipelineStatus("yard", True, "frozen", 9.84, 1200, 0, None, "live", None, now - 0.5)
    assert camera_line(frozen, now=now).startswith("📷 yard: live but frozen (identical frames), 9.8 FPS")
    snoozed = camera_line(status, snooze="🔕 <b>yard</b> snoozed by Ada until 12:30 (27 min left)", now=now)
    assert snoozed.splitlines()[1] == "🔕 <b>yard</b> snoozed by Ada until 12:30 (27 min left)"


def test_the_line_escapes_the_camera_and_shows_the_error() -> None:
    now = time.time()
    status = PipelineStatus("<b>", False, "ok", 0.0, 3, 0, "SourceError: <gone>", "failed", now - 60, now - 61)
    line = camera_line(status, now=now)
    assert line.startswith("📷 &lt;b&gt;: failed at ") and line.endswith("\n   SourceError: &lt;gone&gt;")


def test_a_stalled_camera_shows_zero_fps_not_ok() -> None:
    now = time.time()
    state, since = camera_state(running=True, error=None, stopped=False, finished_at=None, lost_since=None,
                                last_frame=now - 30, now=now)
    status = PipelineStatus("yard", True, "ok", 0.0, 50, 0, None, state, since, now - 30)
    assert camera_line(status, now=now).startswith("📷 yard: stalled since ")
    assert "0.0 FPS, last frame 30 s ago" in camera_line(status, now=now)
