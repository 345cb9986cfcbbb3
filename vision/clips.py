"""A short MP4 of a fire's onset, to replace the alert's photo once it is ready.

Each camera keeps its last seconds of frames, small and few: a frame at most ``fps`` times a
second, downscaled to ``width`` pixels and kept as a JPEG (about 10 kB at 480 px), so a ring
of ten seconds costs about 1 MB and a millisecond a kept frame. When an alert starts its
clip is due once the fire has been in view for ``after_s``: it runs from ``pre_roll_s``
before the start to that moment, is encoded off the vision thread, and is announced by a
``ClipEvent`` that the recorder turns into an edit of the alert's message. A fire gone
before then gets no clip; the photo, sent at the start, never waits for one.

H.264 plays inline on every Telegram client. OpenCV's wheels cannot write it (no libx264,
see ``codec()``), so it is written through PyAV's libx264 where PyAV is installed, else as
MPEG-4 Part 2 (``mp4v``), which OpenCV always writes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from vision.annotate import safe_name
from vision.types import ClipEvent, FireEvent, Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipConfig:
    after_s: float = 5.0  # how long the fire has been in view when its clip is cut
    pre_roll_s: float = 5.0  # how much of the time before the alert it shows
    width: int = 480
    fps: float = 8.0
    jpeg_quality: int = 80


@dataclass(frozen=True)
class _Kept:
    t: float
    wall: float
    jpeg: bytes


class FrameRing:
    """The last ``seconds`` of a camera's frames, at most ``fps`` a second, ``width`` wide, as JPEGs."""

    def __init__(self, seconds: float, fps: float, width: int, quality: int = 80) -> None:
        self.seconds = seconds
        self.period = 1.0 / fps
        self.width = width
        self.quality = quality
        self._frames: deque[_Kept] = deque()
        self._next_t = float("-inf")

    def add(self, frame: Frame) -> bool:
        """Keep ``frame`` if it is due; returns whether it was kept."""
        if self._frames and frame.t < self._frames[-1].t:  # a source that restarted its clock
            self._frames.clear()
            self._next_t = float("-inf")
        if frame.t < self._next_t:
            return False
        # The next due time steps by the period, not from this frame: a 10 fps camera kept
        # at 8 fps keeps 8 frames a second, not every second one.
        first = self._next_t == float("-inf")
        self._next_t = frame.t + self.period if first else max(self._next_t + self.period, frame.t)
        small = _downscale(frame.image, self.width)
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return False
        self._frames.append(_Kept(frame.t, frame.wall, jpeg.tobytes()))
        while self._frames and self._frames[0].t < frame.t - self.seconds:
            self._frames.popleft()
        return True

    def between(self, start: float, end: float) -> list[_Kept]:
        return [k for k in self._frames if start <= k.t <= end]

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        return sum(len(k.jpeg) for k in self._frames)


class ClipCutter:
    """One camera's onset clips: feed it every frame (``observe``) and the alerts' starts
    and ends; it returns the clips that are ready, in the caller's thread."""

    def __init__(self, camera: str, out_dir: str | Path, config: ClipConfig | None = None) -> None:
        self.camera = camera
        self.config = config or ClipConfig()
        self.out_dir = Path(out_dir)
        c = self.config
        # Holds the pre-roll and the wait, with a frame's slack at either end.
        self.ring = FrameRing(c.pre_roll_s + c.after_s + 1.0, c.fps, c.width, c.jpeg_quality)
        log.debug("onset clips of %s written as %s", camera, codec())  # found now, not mid-alert
        self._due: dict[int, FireEvent] = {}  # track -> its started event, clip not cut yet
        self._encoding: list[Future[ClipEvent | None]] = []
        self._executor: ThreadPoolExecutor | None = None

    def started(self, event: FireEvent) -> None:
        self._due[event.track_id] = event

    def ended(self, track_id: int) -> None:
        """The fire is gone before its clip was cut: it gets none."""
        self._due.pop(track_id, None)

    def observe(self, frame: Frame) -> list[ClipEvent]:
        """Keep ``frame`` in the ring, cut the clips now due, and return those encoded."""
        self.ring.add(frame)
        for track_id, start in list(self._due.items()):
            if frame.t - start.t >= self.config.after_s:
                del self._due[track_id]
                self._cut(start, frame)
        return self.ready()

    def ready(self, wait: bool = False) -> list[ClipEvent]:
        """The clips encoded since the last call (``wait``: also those still encoding)."""
        done = [f for f in self._encoding if wait or f.done()]
        self._encoding = [f for f in self._encoding if f not in done]
        return [clip for f in done if (clip := f.result()) is not None]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _cut(self, start: FireEvent, now: Frame) -> None:
        kept = self.ring.between(start.t - self.config.pre_roll_s, now.t)
        if len(kept) < 2:
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"clips-{self.camera}")
        path = self.out_dir / safe_name(self.camera) / f"{_stamp(start)}-track{start.track_id}-onset.mp4"
        self._encoding.append(self._executor.submit(self._encode, start, kept, path))

    def _encode(self, start: FireEvent, kept: list[_Kept], path: Path) -> ClipEvent | None:
        seconds = kept[-1].t - kept[0].t
        fps = (len(kept) - 1) / seconds if seconds > 0 else self.config.fps
        try:
            images = [cv2.imdecode(np.frombuffer(k.jpeg, np.uint8), cv2.IMREAD_COLOR) for k in kept]
            used = encode_mp4(images, fps, path)
        except Exception:  # a full disk or a broken encoder: the alert keeps its photo
            log.exception("onset clip of track %s on %s not written", start.track_id, self.camera)
            return None
        return ClipEvent(self.camera, start.track_id, str(path), kept[-1].t, kept[-1].wall,
                         len(kept), round(seconds + 1.0 / fps, 2), used)


def encode_mp4(images: list[np.ndarray], fps: float, path: Path) -> str:
    """Write BGR ``images`` as an MP4 at ``fps``; returns the codec (see ``codec()``).
    Written beside and renamed, so that a reader never finds half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    used = codec()
    h, w = images[0].shape[:2]
    h, w = h - h % 2, w - w % 2  # 4:2:0 needs even sides
    if used == "h264":
        _encode_pyav(images, fps, partial, w, h)
    else:
        writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*used), fps, (w, h))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write {used} to {partial}")
        try:
            for image in images:
                writer.write(np.ascontiguousarray(image[:h, :w]))
        finally:
            writer.release()
    partial.replace(path)
    return used


def _encode_pyav(images: list[np.ndarray], fps: float, path: Path, w: int, h: int) -> None:
    import av

    # faststart: the index first, so that a client plays the clip while it loads.
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "28"}  # small over sharp: ~100 kB for 10 s
        for image in images:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@functools.cache
def codec() -> str:
    """What clips are written in here: "avc1" (H.264 by OpenCV), "h264" (by PyAV), or
    "mp4v" (MPEG-4 Part 2 by OpenCV). Found once, by trying."""
    if _opencv_writes("avc1"):
        return "avc1"
    try:
        import av

        av.codec.Codec("libx264", "w")
        return "h264"
    except Exception:  # no PyAV, or one built without libx264
        return "mp4v"


def _opencv_writes(fourcc: str) -> bool:
    with tempfile.TemporaryDirectory() as tmp, _stderr_muted():
        writer = cv2.VideoWriter(str(Path(tmp) / "probe.mp4"), cv2.VideoWriter_fourcc(*fourcc), 8, (64, 64))
        opened = writer.isOpened()
        writer.release()
        return opened


@contextlib.contextmanager
def _stderr_muted() -> Iterator[None]:
    """FFmpeg prints a failed encoder's errors straight to file descriptor 2, past OpenCV's
    log level: the one try at start must not read as a fault."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _downscale(image: np.ndarray, width: int) -> np.ndarray:
    """Bilinear, in two steps from far above ``width`` (as ``vision.thumbnails``): a single
    area resize is the slow part of keeping a frame."""
    h, w = image.shape[:2]
    if w <= width:
        return image
    height = max(2, int(round(h * width / w)))
    if w > 2 * width:
        image = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def _stamp(event: FireEvent) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(event.wall))
