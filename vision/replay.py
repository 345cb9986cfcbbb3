"""Offline detection: run the daemon's pipeline on a file, folder or stream and write
events (JSON lines), snapshots and optionally an annotated video.

The CLI (``firewatch detect``) wraps :func:`replay`; this module does not depend on click.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import cv2

from vision.events import CropClassifier, EventConfig
from vision.health import HealthConfig
from vision.pipeline import DetectorLike, Pipeline, TrackerLike
from vision.sources import open_source
from vision.verification import Verifier
from vision.types import Detections, Event, FireEvent, Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplaySummary:
    """What one replay did. ``seconds`` is processing wall time; ``source_seconds`` media time."""

    source: str
    frames: int
    seconds: float
    source_seconds: float
    fps: float
    events: dict[str, int] = field(default_factory=dict)
    events_path: str | None = None
    video_path: str | None = None
    snapshots_dir: str | None = None
    providers: list[str] = field(default_factory=list)


class Progress(Protocol):
    """What a replay reports its frames to: a tqdm bar fits."""

    total: float | None

    def update(self, n: float = 1) -> bool | None: ...


def expected_frames(source: str | Path | int, fps: float | None = None) -> int | None:
    """How many frames a replay of ``source`` will process: a video file's frame count after
    ``fps`` subsampling, a folder's image count; None for cameras and streams."""
    from vision.sources import IMAGE_SUFFIXES

    text = str(source)
    if isinstance(source, int) or ("://" in text and not text.startswith("file://")):
        return None
    path = Path(text.removeprefix("file://"))
    if path.is_dir():
        return sum(1 for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not path.is_file():
        return None
    capture = cv2.VideoCapture(str(path))
    try:
        count, file_fps = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    if count <= 0:
        return None
    stride = max(1, round(file_fps / fps)) if fps and file_fps and fps < file_fps else 1
    return -(-int(count) // stride)


class EventLog:
    """A sink that counts events by kind and, given a path, writes each as one JSON line."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.counts: dict[str, int] = {"started": 0, "updated": 0, "cleared": 0, "health": 0}
        self._file: IO[str] | None = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def publish(self, event: Event) -> None:
        self.counts[event.kind if isinstance(event, FireEvent) else "health"] += 1
        if self._file is not None:
            self._file.write(json.dumps(event.to_dict()) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class _VideoOut:
    """Annotated frames into an mp4, opened on the first frame (its size is known then)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self._writer: cv2.VideoWriter | None = None
        self._size = (0, 0)  # (w, h)

    def write(self, image) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._size = (image.shape[1], image.shape[0])
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, self._size)
            if not self._writer.isOpened():
                raise OSError(f"cannot write video {self.path}")
        if (image.shape[1], image.shape[0]) != self._size:  # folders may mix sizes; a video cannot
            image = cv2.resize(image, self._size)
        self._writer.write(image)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


def replay(
    source: str | Path | int,
    *,
    model: str | Path | None = None,
    out_video: str | Path | None = None,
    events: str | Path | None = None,
    snapshots: str | Path | None = None,
    fps: float | None = None,
    camera: str | None = None,
    conf_threshold: float = 0.25,
    threads: int | None = None,
    event_config: EventConfig | None = None,
    health_config: HealthConfig | None = None,
    classifier: CropClassifier | None = None,
    detector: DetectorLike | None = None,
    tracker: TrackerLike | None = None,
    progress: Progress | None = None,
    verifier: Verifier | None = None,
) -> ReplaySummary:
    """Run the pipeline over ``source`` until it ends; returns a summary.

    ``events``: JSON-lines file, one object per fire or health event. ``snapshots``: folder
    for annotated JPEGs of each fire event. ``out_video``: annotated mp4 of every frame.
    ``fps``: playback rate of an image folder / subsampling of a video file.
    ``detector`` / ``tracker`` replace the ONNX model / ByteTrack (a configured runtime,
    tests); without ``detector``, ``model`` is loaded on the default runtime.
    ``progress`` is told the expected frame count (``total``) and each processed frame.
    ``verifier``: temporal verification, as the daemon runs it (None: K-of-N alone).
    """
    if detector is None:
        if model is None:
            raise ValueError("replay needs a model file or a detector")
        from vision.detectors import Detector

        detector = Detector(model, conf_threshold=conf_threshold, threads=threads)
    frame_source = open_source(source, fps=fps, name=camera)
    if progress is not None:
        progress.total = expected_frames(source, fps)
    log_sink = EventLog(events)
    video: _VideoOut | None = None
    last_t = 0.0
    pipeline: Pipeline

    def on_frame(frame: Frame, tracked: Detections) -> None:
        nonlocal video, last_t
        last_t = frame.t
        if progress is not None:
            progress.update(1)
        if out_video is not None:
            if video is None:
                video = _VideoOut(Path(out_video), frame_source.fps or fps or 10.0)
            video.write(pipeline.annotate(frame, tracked))

    pipeline = Pipeline(
        frame_source, detector, camera=camera, tracker=tracker, event_config=event_config,
        classifier=classifier, health_config=health_config, snapshot_dir=snapshots,
        sinks=[log_sink], on_frame=on_frame, verifier=verifier,
    )
    started = time.monotonic()
    try:
        pipeline.run()
    except KeyboardInterrupt:  # a stream never ends: Ctrl-C stops it and still reports
        log.info("replay of %s interrupted after %d frames", source, pipeline.frames)
    finally:
        log_sink.close()
        if video is not None:
            video.close()
    seconds = time.monotonic() - started
    return ReplaySummary(
        source=str(source),
        frames=pipeline.frames,
        seconds=round(seconds, 3),
        source_seconds=round(last_t, 3),
        fps=round(pipeline.frames / seconds, 2) if seconds > 0 else 0.0,
        events=log_sink.counts,
        events_path=str(events) if events is not None else None,
        video_path=str(out_video) if out_video is not None and video is not None else None,
        snapshots_dir=str(snapshots) if snapshots is not None else None,
        providers=list(getattr(detector, "providers", [])),
    )
