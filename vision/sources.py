"""Frame sources: a camera index, an RTSP/HTTP URL, a video file, or a folder of images.

A source is opened, read frame by frame (``read() -> Frame | None``, None at the end of a
file) and closed. :func:`read_frames` turns a source into a stream of frames: a live source
that fails or stops delivering is closed and reopened with exponential backoff (reporting
the outage through a callback); a file or folder simply ends.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from vision.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# Without these an RTSP read can block forever when the camera drops off the network.
_STREAM_TIMEOUT_MS = 10_000


class SourceError(RuntimeError):
    """The source could not be opened or stopped delivering frames."""


class CaptureLike(Protocol):
    """The part of ``cv2.VideoCapture`` a source uses (tests fake only the device)."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def grab(self) -> bool: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


class FrameSource(Protocol):
    """What the pipeline reads from."""

    name: str
    live: bool
    fps: float | None

    def open(self) -> None: ...
    def read(self) -> Frame | None: ...
    def close(self) -> None: ...


class CaptureSource:
    """A ``cv2.VideoCapture``-like device: camera, stream (``live=True``) or video file.

    For a file, ``t`` is media time and ``fps`` (if given and lower than the file's rate)
    keeps one frame in ``round(file_fps / fps)``; for a live feed ``t`` is seconds since
    the source was created.
    """

    def __init__(
        self,
        opener: Callable[[], CaptureLike],
        *,
        name: str,
        live: bool,
        fps: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        target: str | None = None,
    ) -> None:
        self.name = name
        # What failed, for error messages: the path or camera index, not the short name.
        self.target = target or name
        self.live = live
        self._opener = opener
        self._fps = fps
        self._clock = clock
        self._start = clock()
        self._capture: CaptureLike | None = None
        self._index = 0
        self._stride = 1
        self._file_fps = 0.0

    @property
    def fps(self) -> float | None:
        """Frames per second delivered (files: after subsampling); None when unknown."""
        if self.live:
            return self._fps
        return self._file_fps / self._stride if self._file_fps else self._fps

    def open(self) -> None:
        self.close()
        try:
            capture = self._opener()
        except Exception as exc:  # a device driver can raise anything
            raise SourceError(f"cannot open {self.target}: {exc}") from exc
        if not capture.isOpened():
            capture.release()
            reason = "" if self.live else " (not a video file OpenCV can read)"
            raise SourceError(f"cannot open {self.target}{reason}")
        self._capture = capture
        if not self.live:
            self._file_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0) or (self._fps or 25.0)
            if self._fps and self._fps < self._file_fps:
                self._stride = max(1, round(self._file_fps / self._fps))

    def read(self) -> Frame | None:
        if self._capture is None:
            raise SourceError(f"{self.name} is not open")
        try:
            for _ in range(self._stride - 1):
                self._capture.grab()
            ok, image = self._capture.read()
        except Exception as exc:
            raise SourceError(f"{self.name}: read failed: {exc}") from exc
        if not ok or image is None:
            if self.live:
                raise SourceError(f"{self.name}: no frame")
            return None
        index = self._index
        self._index += 1
        t = index * self._stride / self._file_fps if not self.live else self._clock() - self._start
        return Frame(image, index, t, time.time())

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class LatestFrameSource:
    """A live source read by a background thread that keeps only the newest frame.

    A camera delivers at its own rate; when detection is slower, OpenCV's buffer would
    otherwise hand out ever older frames and alerts would lag behind the fire. ``read()``
    returns the newest frame not yet returned (older ones are dropped, so ``index`` has
    gaps), or raises ``SourceError`` when the reader failed or nothing came for ``timeout_s``.
    """

    live = True

    def __init__(self, inner: FrameSource, timeout_s: float = 10.0) -> None:
        self.inner = inner
        self.name = inner.name
        self.timeout_s = timeout_s
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._error: SourceError | None = None
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def fps(self) -> float | None:
        return self.inner.fps

    def open(self) -> None:
        self.close()
        self.inner.open()
        self._latest, self._error, self._closing = None, None, False
        self._thread = threading.Thread(target=self._reader, name=f"grab-{self.name}", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        while not self._closing:
            try:
                frame = self.inner.read()
                if frame is None:
                    raise SourceError(f"{self.name}: stream ended")
            except SourceError as exc:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._latest = frame
                self._cond.notify_all()

    def read(self) -> Frame | None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._latest is not None or self._error is not None, self.timeout_s):
                raise SourceError(f"{self.name}: no frame for {self.timeout_s:.0f} s")
            if self._latest is not None:
                frame, self._latest = self._latest, None
                return frame
            raise self._error  # type: ignore[misc]

    def close(self) -> None:
        self._closing = True
        if self._thread is not None:
            # The reader leaves after its current read (bounded by the stream read timeout).
            self._thread.join(self.timeout_s)
            hung = self._thread.is_alive()
            self._thread = None
            if hung:  # releasing a capture under a blocked read can crash OpenCV: leave it
                log.warning("%s: reader still blocked; abandoning the old connection", self.name)
                return
        self.inner.close()


def natural_key(path: Path) -> list:
    """Sort ``frame-9`` before ``frame-10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class ImageFolderSource:
    """Images of a folder, in natural name order, played as frames at ``fps``.

    ``t`` is ``index / fps``. With ``realtime=True`` reading is paced to that rate (a folder
    standing in for a camera); otherwise frames come as fast as they are read (replay).
    """

    live = False

    def __init__(self, folder: str | Path, *, fps: float = 10.0, realtime: bool = False, name: str | None = None):
        self.folder = Path(folder)
        self.name = name or self.folder.name
        self.fps = float(fps)
        self.realtime = realtime
        self._files: list[Path] = []
        self._position = 0
        self._index = 0
        self._started = 0.0

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"not a folder: {self.folder}")
        self._files = sorted(
            (p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key
        )
        self._position = self._index = 0
        self._started = time.monotonic()

    def __len__(self) -> int:
        return len(self._files)

    def read(self) -> Frame | None:
        while self._position < len(self._files):
            path = self._files[self._position]
            self._position += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                log.warning("%s: cannot decode %s, skipped", self.name, path.name)
                continue
            index = self._index
            self._index += 1
            t = index / self.fps
            if self.realtime:
                delay = self._started + t - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            return Frame(image, index, t, time.time())
        return None

    def close(self) -> None:
        self._files = []


def open_source(
    spec: str | int | Path,
    *,
    fps: float | None = None,
    name: str | None = None,
    realtime: bool = False,
    latest_only: bool = True,
) -> FrameSource:
    """Build the source that ``spec`` names: a camera index (``0``), a GStreamer pipeline
    ending in ``appsink``, a URL (``rtsp://...``, ``http://...``), a video file or a folder
    of images (played at ``fps``, default 10).

    Live sources are wrapped in ``LatestFrameSource`` unless ``latest_only=False``."""
    text = str(spec)
    if isinstance(spec, int) or text.isdigit():
        index = int(text)
        camera = CaptureSource(lambda: cv2.VideoCapture(index), name=name or f"camera{index}", live=True,
                               target=f"camera {index}")
        return LatestFrameSource(camera) if latest_only else camera
    if is_gstreamer_pipeline(text):
        # CSI / USB cameras on a Jetson: needs an OpenCV built with GStreamer (JetPack's).
        gst = CaptureSource(lambda: cv2.VideoCapture(text, cv2.CAP_GSTREAMER), name=name or "gstreamer",
                            live=True)
        return LatestFrameSource(gst) if latest_only else gst
    if "://" in text and not text.startswith("file://"):
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, _STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, _STREAM_TIMEOUT_MS]
        stream = CaptureSource(
            lambda: cv2.VideoCapture(text, cv2.CAP_ANY, params), name=name or _url_name(text), live=True
        )
        return LatestFrameSource(stream, timeout_s=_STREAM_TIMEOUT_MS / 1000) if latest_only else stream
    path = Path(text.removeprefix("file://"))
    if path.is_dir():
        return ImageFolderSource(path, fps=fps or 10.0, realtime=realtime, name=name)
    if path.is_file():
        return CaptureSource(lambda: cv2.VideoCapture(str(path)), name=name or path.stem, live=False, fps=fps,
                             target=str(path))
    raise SourceError(f"no such camera, URL, file or folder: {text}")


def is_gstreamer_pipeline(text: str) -> bool:
    """A GStreamer pipeline string, as OpenCV's CAP_GSTREAMER takes it (ends in an appsink)."""
    return "!" in text and "appsink" in text


def _url_name(url: str) -> str:
    """A camera name from a URL, without credentials."""
    host = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    return host.replace(":", "-") or "stream"


@dataclass
class Backoff:
    """Exponential reconnect delay: ``initial``, x ``factor`` per failure, capped at ``maximum``."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0
    _next: float | None = None

    def next_delay(self) -> float:
        delay = self.initial if self._next is None else self._next
        self._next = min(delay * self.factor, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = None


def read_frames(
    source: FrameSource,
    *,
    stop: threading.Event | None = None,
    backoff: Backoff | None = None,
    on_lost: Callable[[str], None] | None = None,
) -> Iterator[Frame]:
    """Yield frames until the source ends (files) or ``stop`` is set.

    A live source that fails to open or to deliver is reopened after a backoff delay;
    ``on_lost(reason)`` is called once per outage (the caller learns that it is back from
    the next frame). A file or folder that cannot be opened raises ``SourceError``.
    """
    stop = stop or threading.Event()
    backoff = backoff or Backoff()
    is_open = False
    in_outage = False
    try:
        while not stop.is_set():
            try:
                if not is_open:
                    source.open()
                    is_open = True
                frame = source.read()
            except SourceError as exc:
                if not source.live:
                    raise
                source.close()
                is_open = False
                delay = backoff.next_delay()
                if not in_outage:
                    in_outage = True
                    log.warning("%s; retrying every %.0f s at most until it is back", exc, backoff.maximum)
                    if on_lost is not None:
                        on_lost(str(exc))
                else:  # one line per outage: a camera that stays away must not fill the log
                    log.debug("%s; retrying in %.1f s", exc, delay)
                stop.wait(delay)
                continue
            if frame is None:
                return
            if in_outage:
                in_outage = False
                backoff.reset()
            yield frame
    finally:
        source.close()
