"""The pipeline's three-stage loop (feed -> infer -> post) with the real detector.

What the stages must not change: every frame is processed once, in order, with the same
detections the detector gives when called directly; events leave from one thread. What
they must add: letterbox and decode run beside the model, and a failure in any stage
stops the whole run with the error instead of hanging a thread.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.support.data import FIRE2, SHIPPED_DETECTOR, folder_of
from tests.support.doubles import FailingAt, PassThroughTracker
from vision.detectors import Detector
from vision.pipeline import Pipeline
from vision.sinks import CallbackSink
from vision.sources import ImageFolderSource
from vision.types import Detections, FireEvent, Frame


class ThreadRecorder:
    """The real detector, noting which thread ran each step."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.names = detector.names
        self.threads: dict[str, set[str]] = {"prepare": set(), "infer": set(), "decode": set()}

    def _note(self, step: str) -> None:
        self.threads[step].add(threading.current_thread().name)

    def prepare(self, image):  # type: ignore[no-untyped-def]
        self._note("prepare")
        return self.detector.prepare(image)

    def infer(self, prepared):  # type: ignore[no-untyped-def]
        self._note("infer")
        return self.detector.infer(prepared)

    def decode(self, inferred):  # type: ignore[no-untyped-def]
        self._note("decode")
        return self.detector.decode(inferred)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(SHIPPED_DETECTOR, conf_threshold=0.1, threads=1)


def test_staged_run_gives_each_frame_its_own_detections_in_order(tmp_path, detector):
    images = FIRE2[:30]
    recorder = ThreadRecorder(detector)
    seen: list[tuple[int, Detections]] = []
    pipeline = Pipeline(
        ImageFolderSource(folder_of(tmp_path, images), fps=10), recorder, camera="yard",
        tracker=PassThroughTracker(), on_frame=lambda frame, dets: seen.append((frame.index, dets)),
    )
    pipeline.run()

    assert [index for index, _ in seen] == list(range(len(images)))
    # Letterbox buffers are not shared between frames in flight: each frame's boxes are
    # exactly what a direct call on that frame gives.
    import cv2

    direct = [detector(cv2.imread(str(p))) for p in images]
    assert sum(len(d) for d in direct) > 0  # the model sees the fire in these frames
    for (_, staged), expected in zip(seen, direct):
        np.testing.assert_allclose(staged.xyxy, expected.xyxy, atol=1e-3)
        np.testing.assert_allclose(staged.confidence, expected.confidence, atol=1e-5)
    # Three threads: the model's never letterboxes or decodes.
    assert recorder.threads["prepare"] == {"vision-yard-feed"}
    assert recorder.threads["decode"] == {"vision-yard-post"}
    assert recorder.threads["infer"].isdisjoint(recorder.threads["prepare"] | recorder.threads["decode"])


def test_prepare_hands_out_a_new_buffer_per_frame(detector):
    import cv2

    a = detector.prepare(cv2.imread(str(FIRE2[0])))
    b = detector.prepare(cv2.imread(str(FIRE2[20])))
    assert not np.shares_memory(a.blob, b.blob)
    assert not np.array_equal(a.blob, b.blob)


@pytest.mark.parametrize("step", ["prepare", "infer", "decode"])
def test_a_failing_stage_stops_the_run_with_its_error(tmp_path, step):
    folder = folder_of(tmp_path, FIRE2[:40])
    before = {t.name for t in threading.enumerate()}
    pipeline = Pipeline(ImageFolderSource(folder, fps=10), FailingAt(step, frame=5), camera="cam", tracker=PassThroughTracker())
    with pytest.raises(RuntimeError, match=f"{step} broke"):
        pipeline.run()  # in the main thread (as `firewatch detect` runs it): the error is raised
    assert pipeline.error == f"RuntimeError: {step} broke"
    assert 0 < pipeline.frames <= 5
    leftover = {t.name for t in threading.enumerate()} - before
    assert not any(name.startswith("vision-cam") for name in leftover)

    # In a worker thread (the daemon's way) the error is kept for status(), nothing hangs.
    pipeline = Pipeline(ImageFolderSource(folder, fps=10), FailingAt(step, frame=5), camera="cam2", tracker=PassThroughTracker())
    pipeline.start()
    deadline = time.monotonic() + 10
    while pipeline.running and time.monotonic() < deadline:
        time.sleep(0.02)
    status = pipeline.status()
    assert not status.running and status.error == f"RuntimeError: {step} broke"


def test_events_leave_from_the_post_thread_in_frame_order(tmp_path, detector):
    events: list[tuple[str, FireEvent]] = []

    def collect(event):  # type: ignore[no-untyped-def]
        events.append((threading.current_thread().name, event))

    frames: list[Frame] = []
    pipeline = Pipeline(
        ImageFolderSource(folder_of(tmp_path, FIRE2), fps=10), detector, camera="yard",
        sinks=[CallbackSink(collect)], on_frame=lambda frame, _: frames.append(frame),
    )
    pipeline.run()
    fire = [e for _, e in events if isinstance(e, FireEvent)]
    assert fire and fire[0].kind == "started" and fire[-1].kind == "cleared"
    assert {name for name, _ in events} == {"vision-yard-post"}
    assert [e.frame for e in fire] == sorted(e.frame for e in fire)
    assert len(frames) == len(FIRE2)
