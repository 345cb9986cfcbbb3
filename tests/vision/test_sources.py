"""Frame sources on real frames: image folders, video files, and a live device that fails
(only the camera device is faked: a cv2.VideoCapture-like object)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.data import DATA, FIRE2
from tests.support.fake_camera import FastCamera, FlakyCamera
from vision.sources import (
    Backoff,
    CaptureSource,
    ImageFolderSource,
    LatestFrameSource,
    SourceError,
    open_source,
    read_frames,
)

TRAIN = DATA / "fire" / "images" / "train"


def fire2(n: int) -> list[Path]:
    return FIRE2[:n]


def test_folder_plays_in_natural_order_at_fps_and_ends(tmp_path):
    frames = fire2(12)
    for i, path in enumerate(frames):
        (tmp_path / f"frame-{i}.jpg").symlink_to(path)  # frame-10 must come after frame-9
    (tmp_path / "notes.txt").write_text("not an image")
    source = ImageFolderSource(tmp_path, fps=4)
    got = list(read_frames(source))
    assert [f.index for f in got] == list(range(12))
    assert [f.t for f in got] == [i / 4 for i in range(12)]
    for frame, path in zip(got, frames):
        np.testing.assert_array_equal(frame.image, cv2.imread(str(path)))


def test_missing_folder_or_file_raises(tmp_path):
    with pytest.raises(SourceError):
        list(read_frames(ImageFolderSource(tmp_path / "nope")))
    with pytest.raises(SourceError):
        open_source(tmp_path / "nope.mp4")


@pytest.fixture()
def video_file(tmp_path) -> Path:
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10, (512, 512))
    assert writer.isOpened()
    for frame in fire2(12):
        writer.write(cv2.imread(str(frame)))
    writer.release()
    return path


def test_video_file_reads_every_frame_then_ends(video_file):
    source = open_source(video_file)
    assert isinstance(source, CaptureSource) and not source.live
    got = list(read_frames(source))
    assert len(got) == 12
    assert got[-1].t == pytest.approx(1.1)
    assert source.fps == pytest.approx(10)


def test_video_file_subsampled_to_requested_fps(video_file):
    source = open_source(video_file, fps=5)
    got = list(read_frames(source))
    assert len(got) == 6
    assert [round(f.t, 3) for f in got] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert source.fps == pytest.approx(5)


def test_open_source_kinds_and_url_name_without_credentials(tmp_path):
    cam = open_source("0", latest_only=False)
    assert isinstance(cam, CaptureSource) and cam.live and cam.name == "camera0"
    stream = open_source("rtsp://admin:secret@10.0.0.5:554/stream1")
    assert isinstance(stream, LatestFrameSource) and isinstance(stream.inner, CaptureSource)
    assert stream.live and stream.name == "10.0.0.5-554" and "secret" not in stream.name
    assert isinstance(open_source(tmp_path, fps=3), ImageFolderSource)


def test_live_source_is_reopened_with_backoff_and_outages_reported():
    images = [cv2.imread(str(p)) for p in fire2(3)]
    camera = FlakyCamera(images, fail_opens=2, frames_per_connection=4)
    source = CaptureSource(camera.open, name="porch", live=True)
    outages: list[str] = []
    stop = threading.Event()
    got = []
    for frame in read_frames(source, stop=stop, backoff=Backoff(0.001, 2, 0.01), on_lost=outages.append):
        got.append(frame)
        if len(got) == 10:
            stop.set()
    # two refused opens = one outage; then each dropped stream (after 4 frames) is another
    assert len(got) == 10
    assert camera.opens == 5  # 2 refused + 3 connections of 4, 4 and 2 frames
    assert len(outages) == 3
    assert "connection refused" in outages[0] and "no frame" in outages[1]
    assert [f.index for f in got] == list(range(10))
    assert all(b.t >= a.t for a, b in zip(got, got[1:]))


def test_backoff_grows_and_resets():
    backoff = Backoff(1, 2, 5)
    assert [backoff.next_delay() for _ in range(5)] == [1, 2, 4, 5, 5]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_latest_frame_source_drops_stale_frames_for_a_slow_consumer():
    images = [cv2.imread(str(p)) for p in fire2(3)]
    camera = FastCamera(images, period=0.002, fail_opens=1, frames_per_connection=200)
    source = LatestFrameSource(CaptureSource(camera.open, name="porch", live=True), timeout_s=2)
    outages: list[str] = []
    stop = threading.Event()
    got = []
    lags = []
    for frame in read_frames(source, stop=stop, backoff=Backoff(0.001, 2, 0.01), on_lost=outages.append):
        lags.append(time.time() - frame.wall)
        got.append(frame.index)
        time.sleep(0.03)  # detection is 15x slower than the camera
        if len(got) == 40:
            stop.set()
    assert len(got) == 40
    assert got[-1] - got[0] > 39 * 3  # most frames were skipped, not queued
    assert max(lags) < 0.2  # fresh frames; a queue would lag ~1 s by the end
    # the stream dropped after 200 frames: reported as lost, reopened, and continued
    assert outages[0] == "cannot open porch: connection refused"
    assert len(outages) >= 2 and "no frame" in outages[1]


def test_gstreamer_pipelines_are_recognised():
    from vision.sources import is_gstreamer_pipeline

    csi = ("nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720 ! "
           "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! appsink drop=1")
    assert is_gstreamer_pipeline(csi)
    for other in ("0", "rtsp://cam/stream", "/videos/fire.mp4", "frames/"):
        assert not is_gstreamer_pipeline(other)
