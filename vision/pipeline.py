"""The per-camera loop: source -> detector -> tracker -> fire events -> sinks.

``Pipeline.run()`` processes frames in the calling thread (offline replay);
``start()`` / ``stop()`` run the same loop in a worker thread for the daemon (OpenCV and
onnxruntime release the GIL). Events leave through the sinks (``vision.sinks``), in order,
from the loop's post thread: the daemon's sinks hand them to its event loop thread-safely.
The latest frame is kept so the daemon can ask for a fresh annotated picture
(``snapshot()``) at any time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vision.annotate import annotate, draw_zones, encode_jpeg, raw_frame_path, snapshot_path, write_jpeg
from vision.camera_state import CameraState, FrameRate, camera_state
from vision.clips import ClipConfig, ClipCutter
from vision.detectors.base import StagedDetector
from vision.events import CropClassifier, EventConfig, FireEvents
from vision.health import HealthConfig, HealthMonitor, HealthState
from vision.sinks import Sink, publish
from vision.sources import Backoff, FrameSource, SourceError, read_frames
from vision.types import Detections, Event, FireEvent, Frame
from vision.verification import Verifier
from vision.zones import ZoneSet

log = logging.getLogger(__name__)
# How often a blocked hand-off looks whether the run was aborted.
_POLL_S = 0.1
_GIL_SWITCH_S = 0.0005



@dataclass(frozen=True)
class Snapshot:
    """An annotated frame (BGR) and the Unix time its frame was captured."""

    image: np.ndarray
    wall: float

class DetectorLike(Protocol):
    """A detector that is one call (a test double, a wrapper): run whole as the infer stage."""

    names: Mapping[int, str]

    def __call__(self, image: np.ndarray) -> Detections: ...


class TrackerLike(Protocol):
    def update(self, detections: Detections, frame: np.ndarray) -> Detections: ...


@dataclass(frozen=True)
class PipelineStatus:
    """What the daemon shows about one camera. ``fps``: frames analysed a second over the
    last seconds; ``since`` (the state's start) and ``last_frame`` are Unix times."""

    camera: str
    running: bool
    health: HealthState
    fps: float
    frames: int
    open_alerts: int
    error: str | None
    state: CameraState = "starting"
    since: float | None = None
    last_frame: float | None = None


class Pipeline:
    """One camera's vision loop."""

    def __init__(
        self,
        source: FrameSource,
        detector: StagedDetector | DetectorLike,
        *,
        camera: str | None = None,
        tracker: TrackerLike | None = None,
        event_config: EventConfig | None = None,
        classifier: CropClassifier | None = None,
        health_config: HealthConfig | None = None,
        snapshot_dir: str | Path | None = None,
        sinks: Sequence[Sink] = (),
        on_frame: Callable[[Frame, Detections], None] | None = None,
        backoff: Backoff | None = None,
        flush_at_end: bool = True,
        zones: ZoneSet | None = None,
        max_fps: float | None = None,
        verifier: Verifier | None = None,
        clips: ClipConfig | None = None,
    ) -> None:
        if tracker is None:
            from vision.tracker import Tracker

            tracker = Tracker()
        self.source = source
        self.detector = detector
        self.tracker = tracker
        self.camera = camera or source.name
        self.events = FireEvents(self.camera, detector.names, event_config, classifier)
        self.health = HealthMonitor(self.camera, health_config)
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir else None
        self.sinks = list(sinks)
        self.on_frame = on_frame
        self.backoff = backoff
        self.flush_at_end = flush_at_end
        # Detections mostly inside one of these are dropped before tracking; the bot swaps
        # the operator-added ones while the loop runs (``ZoneSet.set_added``).
        self.zones = zones or ZoneSet()
        # A live camera is read at most this often: its frames beyond are dropped unread.
        self.max_fps = max_fps
        # Temporal verification (a fire must move like fire); None: K-of-N alone decides.
        self.verifier = verifier
        # Onset clips that replace the alert's photo (None: photos only); kept beside the snapshots.
        self.clips = ClipCutter(self.camera, self.snapshot_dir, clips) if clips and self.snapshot_dir else None
        self.frames = 0
        self.rate = FrameRate()
        self.error: str | None = None
        self._finished_at: float | None = None
        self._lost_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._latest: tuple[Frame, Detections] | None = None

    # -- control -------------------------------------------------------------------------

    def start(self) -> None:
        """Run the loop in a daemon worker thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._finished_at = None
        self._thread = threading.Thread(target=self.run, name=f"vision-{self.camera}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the loop to stop after the current frame and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def fps(self) -> float:
        return self.rate.rate()

    def status(self) -> PipelineStatus:
        with self._lock:
            latest = self._latest
        last_frame = latest[0].wall if latest is not None else None
        running = self.running
        state, since = camera_state(
            running=running, error=self.error, stopped=self._stop.is_set(), finished_at=self._finished_at,
            lost_since=self._lost_since if self.health.state == "lost" else None,
            last_frame=last_frame, now=time.time(),
        )
        return PipelineStatus(
            self.camera, running, self.health.state, round(self.fps, 2), self.frames,
            self.events.open_alerts, self.error, state, since, last_frame,
        )

    def snapshot(self) -> np.ndarray | None:
        """The latest frame, annotated with its tracked boxes (BGR), or None before the first frame."""
        with self._lock:
            latest = self._latest
        if latest is None:
            return None
        return self.annotate(*latest)

    def snapshot_jpeg(self, quality: int = 85) -> bytes | None:
        image = self.snapshot()
        return None if image is None else encode_jpeg(image, quality)

    def annotate(self, frame: Frame, detections: Detections) -> np.ndarray:
        return annotate(
            frame.image, detections, self.detector.names, camera=self.camera, wall=frame.wall,
            severity_of=self.events.severity_of,
        )

    def snapshot_with_zones(self) -> np.ndarray | None:
        """``snapshot()`` with the ignore zones outlined: what an operator checks a zone on."""
        shot = self.zoned_snapshot()
        return None if shot is None else shot.image

    def zoned_snapshot(self) -> Snapshot | None:
        """``snapshot_with_zones()`` with its frame's capture time: a source that ended or
        stalled keeps its last frame, which must not be passed off as the view now."""
        with self._lock:
            latest = self._latest
        if latest is None:
            return None
        frame, detections = latest
        return Snapshot(draw_zones(self.annotate(frame, detections), self.zones.zones), frame.wall)

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Process frames until the source ends or ``stop()``; events go to the sinks.

        Three threads, each one stage, hand frames on in order through one-slot queues:
        feed (read, health, letterbox) -> infer (the model; this thread) -> post (decode,
        tracker, events, snapshots, sinks). The model then waits for nothing else: on
        two cores the pipeline runs at the bare model's rate. Every event leaves from the
        post thread, in frame order.
        """
        # Python hands the GIL to a waiting thread only every switch interval (5 ms by
        # default): the model thread, back from onnxruntime, would queue behind the post
        # thread's tracker code for a third of a frame. Process-wide, and harmless elsewhere.
        sys.setswitchinterval(min(sys.getswitchinterval(), _GIL_SWITCH_S))
        stages = _Stages(self._stop)
        staged = _staged(self.detector)
        feed = threading.Thread(target=stages.guard, args=(self._feed, staged), name=f"{self._name}-feed", daemon=True)
        post = threading.Thread(target=stages.guard, args=(self._post, staged), name=f"{self._name}-post", daemon=True)
        feed.start()
        post.start()
        stages.guard(self._infer, staged)
        feed.join()
        post.join()
        self._finished_at = time.time()
        if stages.failure is not None:
            exc = stages.failure
            self.error = f"{type(exc).__name__}: {exc}"
            reraise = threading.current_thread() is threading.main_thread() or not isinstance(exc, Exception)
            # A file that cannot be read is reported by the caller, in one line.
            if not (reraise and isinstance(exc, SourceError)):
                log.error("vision pipeline %s stopped", self.camera, exc_info=exc)
            if reraise:
                raise exc

    @property
    def _name(self) -> str:
        return f"vision-{self.camera}"

    def _feed(self, stages: _Stages, staged: StagedDetector) -> None:
        def lost(reason: str) -> None:
            events = list(self.health.lost(reason))
            if events:
                self._lost_since = events[0].wall
            stages.feed.put(events)

        pace = _Pace(self.max_fps if self.source.live else None, stages.abort)
        try:
            for frame in read_frames(self.source, stop=stages.abort, backoff=self.backoff, on_lost=lost):
                pace.wait()
                notices = list(self.health.observe(frame))
                if not stages.feed.put(_Work(frame, notices, staged.prepare(frame.image))):
                    return
        finally:
            stages.feed.put(_END)

    def _infer(self, stages: _Stages, staged: StagedDetector) -> None:
        try:
            while (item := stages.feed.get()) is not _END:
                if isinstance(item, _Work):
                    item.data = staged.infer(item.data)
                if not stages.post.put(item):
                    return
        finally:
            stages.post.put(_END)

    def _post(self, stages: _Stages, staged: StagedDetector) -> None:
        last: Frame | None = None
        while (item := stages.post.get()) is not _END:
            if not isinstance(item, _Work):  # health notices while no frame arrives
                for notice in item:
                    self._emit(notice)
                continue
            for notice in item.notices:
                self._emit(notice)
            self._process(item.frame, staged.decode(item.data))
            self.rate.tick()
            last = item.frame
        if self.clips is not None:  # a clip still encoding is its alert's, which the flush ends
            for clip in self.clips.ready(wait=True):
                self._emit(clip)
            self.clips.close()
        if last is not None and self.flush_at_end and not self._stop.is_set() and stages.failure is None:
            for event in self.events.flush(last.index, last.t, last.wall):
                self._emit(self._with_snapshot(event, last))

    def _process(self, frame: Frame, detections: Detections) -> None:
        size = (frame.image.shape[1], frame.image.shape[0])
        tracked = self.tracker.update(self.zones.apply(detections, size), frame.image)
        with self._lock:
            self._latest = (frame, tracked)
        self.frames += 1
        if self.clips is not None:
            for clip in self.clips.observe(frame):
                self._emit(clip)
        verdicts = None
        if self.verifier is not None:
            verdicts = self.verifier.update(frame.image, tracked, self.events.alert_tracks).verdicts
        for event in self.events.update(tracked, frame, verdicts):
            self._emit(self._with_snapshot(dataclasses.replace(event, frame_size=size), frame, tracked))
        if self.on_frame is not None:
            self.on_frame(frame, tracked)

    def _with_snapshot(self, event: FireEvent, frame: Frame, tracked: Detections | None = None) -> FireEvent:
        if self.snapshot_dir is None:
            return event
        if tracked is None:  # a cleared alert: show its last box on the last frame
            tracked = Detections(
                np.array([event.box]), [event.confidence],
                [self._class_id(event.class_name)], [event.track_id],
            )
        path = snapshot_path(self.snapshot_dir, event)
        try:
            write_jpeg(path, self.annotate(frame, tracked))
            if event.kind != "cleared":
                # The clean frame beside it: a false alarm becomes a hard negative for training.
                write_jpeg(raw_frame_path(path), frame.image)
        except OSError:
            log.exception("snapshot for %s track %s not written", self.camera, event.track_id)
            return event
        return dataclasses.replace(event, snapshot=str(path))

    def _class_id(self, class_name: str) -> int:
        return next((k for k, v in self.detector.names.items() if v == class_name), -1)

    def _emit(self, event: Event) -> None:
        log.info("%s", event.to_json())
        if self.clips is not None and isinstance(event, FireEvent):
            if event.kind == "started":
                self.clips.started(event)
            elif event.kind == "cleared":
                self.clips.ended(event.track_id)
        publish(self.sinks, event)


class _Pace:
    """Holds a loop to at most ``fps`` turns a second (None: no limit)."""

    def __init__(self, fps: float | None, stop: threading.Event) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self.stop = stop
        self.next = 0.0

    def wait(self) -> None:
        if not self.period:
            return
        now = time.monotonic()
        if self.next > now:
            self.stop.wait(self.next - now)
        self.next = max(now, self.next) + self.period


# -- stages -------------------------------------------------------------------------------------


class _WholeDetector:
    """A ``DetectorLike`` as the three stages: all its work in the infer stage."""

    def __init__(self, detector: DetectorLike) -> None:
        self.names = detector.names
        self.infer = detector

    @staticmethod
    def prepare(image: np.ndarray) -> np.ndarray:
        return image

    @staticmethod
    def decode(detections: Detections) -> Detections:
        return detections


def _staged(detector: StagedDetector | DetectorLike) -> StagedDetector:
    if all(callable(getattr(detector, step, None)) for step in ("prepare", "infer", "decode")):
        return detector  # type: ignore[return-value]
    return _WholeDetector(detector)


@dataclass
class _Work:
    """One frame on its way through the stages; ``data`` is what the last stage made of it."""

    frame: Frame
    notices: list[Event]
    data: Any


_END = object()


class _Handoff:
    """A one-slot queue between two stages that gives up once the run is aborted."""

    def __init__(self, abort: threading.Event) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._abort = abort

    def put(self, item: Any) -> bool:
        while True:
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                if self._abort.is_set() and item is not _END:
                    return False
                if self._abort.is_set():  # the end must still get through: make room for it
                    with contextlib.suppress(queue.Empty):
                        self._queue.get_nowait()

    def get(self) -> Any:
        return self._queue.get()


class _Stages:
    """The hand-offs of one run, and what stops them all when one stage fails."""

    def __init__(self, stop: threading.Event) -> None:
        # ``stop`` is the pipeline's own: a failing stage sets it so the others wind down.
        self.abort = stop
        self.feed = _Handoff(stop)
        self.post = _Handoff(stop)
        self.failure: BaseException | None = None

    def guard(self, stage: Callable[[_Stages, StagedDetector], None], staged: StagedDetector) -> None:
        try:
            stage(self, staged)
        except BaseException as exc:  # Ctrl-C in `firewatch detect` must stop the other stages too
            if self.failure is None:
                self.failure = exc
            self.abort.set()
