"""Every camera is analysed at the rate the temporal verification was fitted at, unless its
configuration says otherwise: the verifier counts its window in frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from firewatch.config import load_settings
from firewatch.paths import SHIPPED_DETECTOR
from firewatch.wiring import build_pipelines


def _video(path: Path, fps: float, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i * 4 % 256, np.uint8))
    writer.release()
    return path


def _frames_read(pipeline) -> int:  # type: ignore[no-untyped-def]
    source = pipeline.source
    source.open()
    try:
        count = 0
        while source.read() is not None:
            count += 1
        return count
    finally:
        source.close()


def test_env_and_config_cameras_are_paced_and_a_faster_file_is_read_every_nth_frame(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = _video(tmp_path / "thirty.mp4", 30.0, 60)
    monkeypatch.setenv("FIREWATCH_DETECTOR_MODEL", str(SHIPPED_DETECTOR))
    monkeypatch.setenv("FIREWATCH_CAMERA_SOURCE", str(clip))
    env_camera = build_pipelines(load_settings(env_file=None), sinks=[])["camera"]
    assert env_camera.max_fps == 10.0
    assert _frames_read(env_camera) == 20  # 2 s of video at 10 a second

    config = tmp_path / "firewatch.yaml"
    config.write_text(f"source_fps: 15\ncameras:\n  - name: yard\n    source: {clip}\n"
                      f"  - name: gate\n    source: {clip}\n    fps: 5\n")
    pipelines = build_pipelines(load_settings(env_file=None, config_file=config), sinks=[])
    assert (pipelines["yard"].max_fps, pipelines["gate"].max_fps) == (15.0, 5.0)
    assert (_frames_read(pipelines["yard"]), _frames_read(pipelines["gate"])) == (30, 10)
