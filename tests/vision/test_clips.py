"""Onset clips (vision/clips.py) on real fire footage: the ring of small frames, the cut, the
MP4 it writes, and the pipeline that announces it after the alert's start."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.data import DATA, frame_no, link_sequence, video_frames
from tests.support.doubles import LabelDetector
from vision.clips import ClipConfig, ClipCutter, FrameRing, codec, encode_mp4
from vision.events import EventConfig
from vision.pipeline import Pipeline
from vision.sinks import CallbackSink
from vision.sources import ImageFolderSource
from vision.types import ClipEvent, FireEvent, Frame

VIDEO = DATA / "videos" / "navid__fire4.mp4"
pytestmark = pytest.mark.skipif(not VIDEO.is_file(), reason="needs the shared fire videos")


def video(path: Path = VIDEO, limit: int = 400) -> list[Frame]:
    """Frames of a real video with their media times (its own frame rate)."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while len(frames) < limit:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(Frame(image, len(frames), len(frames) / fps, 1_700_000_000 + len(frames) / fps))
    capture.release()
    return frames


def started(frame: Frame, track: int = 7) -> FireEvent:
    return FireEvent("started", "yard", track, "fire", "fire", 0.8, (10, 10, 50, 50), 0.05,
                     frame.index, frame.t, frame.wall)


def read_mp4(path: str) -> tuple[int, int, int]:
    capture = cv2.VideoCapture(path)
    count, size = 0, (0, 0)
    while True:
        ok, image = capture.read()
        if not ok:
            break
        count, size = count + 1, (image.shape[1], image.shape[0])
    capture.release()
    return count, *size


def test_the_ring_keeps_small_frames_at_its_rate_for_its_seconds() -> None:
    frames = video()
    source_fps = 1 / (frames[1].t - frames[0].t)
    assert source_fps > 8  # a camera faster than the ring's rate
    ring = FrameRing(seconds=4.0, fps=8.0, width=480)
    kept = [ring.add(f) for f in frames]
    span = frames[-1].t - frames[0].t
    assert span > 8
    assert sum(kept) == pytest.approx(span * 8, rel=0.1)  # 8 a second, not every other frame
    inside = ring.between(frames[-1].t - 4.0, frames[-1].t)
    assert len(ring) == len(inside) == pytest.approx(4 * 8, abs=2)
    small = cv2.imdecode(np.frombuffer(inside[0].jpeg, np.uint8), cv2.IMREAD_COLOR)
    h, w = frames[0].image.shape[:2]
    assert small.shape[1] == min(480, w) and abs(small.shape[0] - round(h * small.shape[1] / w)) <= 1
    assert ring.nbytes < len(ring) * 40_000  # JPEGs, not raw frames (480x270x3 = 389 kB each)


def test_a_clip_runs_from_the_pre_roll_to_after_s_and_plays(tmp_path: Path) -> None:
    frames = video()
    cutter = ClipCutter("yard", tmp_path, ClipConfig(after_s=3.0, pre_roll_s=2.0))
    start_at = next(i for i, f in enumerate(frames) if f.t >= 4.0)
    clips: list[ClipEvent] = []
    for i, frame in enumerate(frames):
        clips += cutter.observe(frame)
        if i == start_at:
            cutter.started(started(frame))
    clips += cutter.ready(wait=True)
    cutter.close()
    (clip,) = clips
    assert clip.camera == "yard" and clip.track_id == 7 and clip.codec == codec()
    # From 2 s before the start to 3 s after it, at 8 frames a second.
    assert frames[start_at].t + 3.0 <= clip.t < frames[start_at].t + 3.2
    assert clip.frames == pytest.approx(5 * 8, abs=2)
    assert clip.seconds == pytest.approx(5.0, abs=0.3)
    count, width, height = read_mp4(clip.path)
    assert count == clip.frames and width == min(480, frames[0].image.shape[1]) and height % 2 == 0
    assert 10_000 < Path(clip.path).stat().st_size < 1_000_000
    assert not list(tmp_path.rglob("*.part"))


def test_a_fire_gone_before_its_clip_is_due_gets_none(tmp_path: Path) -> None:
    frames = video(limit=200)
    cutter = ClipCutter("yard", tmp_path, ClipConfig(after_s=3.0))
    clips = []
    for i, frame in enumerate(frames):
        clips += cutter.observe(frame)
        if i == 10:
            cutter.started(started(frame))
        if frame.t >= frames[10].t + 1.5:  # half way to its clip
            cutter.ended(7)
    assert clips + cutter.ready(wait=True) == []
    assert not list(tmp_path.rglob("*.mp4"))


def test_encode_mp4_writes_the_codec_it_names(tmp_path: Path) -> None:
    images = [f.image for f in video(limit=16)]
    used = encode_mp4(images, 8.0, tmp_path / "c.mp4")
    assert used in ("avc1", "h264", "mp4v") and used == codec()
    count, width, height = read_mp4(str(tmp_path / "c.mp4"))
    assert count == 16 and (width, height) == (images[0].shape[1] - images[0].shape[1] % 2,
                                                images[0].shape[0] - images[0].shape[0] % 2)


def test_the_pipeline_announces_the_clip_after_the_start_and_before_the_end(tmp_path: Path) -> None:
    fire = [p for p in video_frames("fire2") if frame_no(p) <= 71]
    folder = link_sequence(tmp_path / "frames", fire)
    events: list = []
    pipeline = Pipeline(
        ImageFolderSource(folder, fps=10), LabelDetector(fire), camera="yard",
        event_config=EventConfig(confirm_hits=3, confirm_window=5, clear_after_s=2.0),
        sinks=[CallbackSink(events.append)], snapshot_dir=tmp_path / "snaps",
        clips=ClipConfig(after_s=2.0, pre_roll_s=2.0),
    )
    pipeline.run()
    kinds = [e.kind if isinstance(e, FireEvent) else "clip" for e in events
             if isinstance(e, ClipEvent) or e.kind != "updated"]
    assert kinds == ["started", "clip", "cleared"]
    start = next(e for e in events if isinstance(e, FireEvent) and e.kind == "started")
    (clip,) = [e for e in events if isinstance(e, ClipEvent)]
    assert clip.track_id == start.track_id and clip.t >= start.t + 2.0
    assert Path(clip.path).parent == tmp_path / "snaps" / "yard"
    assert read_mp4(clip.path)[0] == clip.frames


def test_no_clips_without_a_config(tmp_path: Path) -> None:
    fire = [p for p in video_frames("fire2") if frame_no(p) <= 71]
    folder = link_sequence(tmp_path / "frames", fire)
    events: list = []
    Pipeline(ImageFolderSource(folder, fps=10), LabelDetector(fire), sinks=[CallbackSink(events.append)],
             snapshot_dir=tmp_path / "snaps").run()
    assert any(isinstance(e, FireEvent) for e in events)
    assert not any(isinstance(e, ClipEvent) for e in events)
    assert not list((tmp_path / "snaps").rglob("*.mp4"))
