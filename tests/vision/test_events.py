"""Tracker + fire events (and the pipeline around them) on real consecutive video frames.

No trained detector exists yet, so ``LabelDetector`` produces the detections from each
frame's ground-truth YOLO label file, with realistic, varying confidences: the tracker,
the event rules, annotation and the pipeline are exercised on real boxes of real fires.

Sequences: ``rf__fire2_mp4`` frames 28..71 show one fire (class 0), 72..82 smoke (class 1).
An alert is cleared by time: the fire sequence is followed by fire-free CCTV frames
(``rf__img_*`` with an empty label file) longer than ``clear_after_s``. When the source
simply ends, the pipeline flushes open alerts as ``cleared`` at the last frame.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.data import fire_free_cctv, frame_no, link_sequence, video_frames
from tests.support.doubles import NAMES, LabelDetector
from vision.annotate import annotate, snapshot_path
from vision.events import EventConfig, FireEvents
from vision.pipeline import Pipeline
from vision.replay import replay
from vision.sinks import CallbackSink
from vision.sources import ImageFolderSource
from vision.tracker import Tracker
from vision.types import Detections, FireEvent, Frame, HealthEvent


def run_events(images: list[Path], config: EventConfig, classifier=None, fps: float = 10) -> list[FireEvent]:
    """Detector -> tracker -> events over ``images``, without the pipeline."""
    detector, tracker = LabelDetector(images), Tracker()
    events = FireEvents("test", NAMES, config, classifier)
    out: list[FireEvent] = []
    for i, path in enumerate(images):
        image = cv2.imread(str(path))
        frame = Frame(image, i, i / fps, 1_700_000_000 + i / fps)
        out += events.update(tracker.update(detector(image), image), frame)
    return out


CONFIG = EventConfig(confirm_hits=3, confirm_window=5, clear_after_s=1.0)


def test_fire_sequence_gives_one_alert_per_fire_and_clears_after_it_is_gone():
    fire = [p for p in video_frames("fire2") if frame_no(p) <= 71]
    assert len(fire) == 40
    quiet = fire_free_cctv(20)
    events = run_events(fire + quiet, CONFIG)
    started = [e for e in events if e.kind == "started"]
    cleared = [e for e in events if e.kind == "cleared"]
    assert len(started) == 1 and len(cleared) == 1
    alert = started[0]
    assert (alert.class_name, alert.severity) == ("fire", "fire")  # 5-20 % of the frame
    # ByteTrack names a track on its 2nd sighting; confirmed on the 3rd tracked one
    assert alert.frame == 3
    assert cleared[0].track_id == alert.track_id
    last_fire_t = 3.9
    assert last_fire_t + 1.0 <= cleared[0].t < last_fire_t + 1.2
    updates = [e for e in events if e.kind == "updated"]
    assert len(updates) <= 4, "an update is for real growth, not for every frame"
    for before, after in zip([alert, *updates], updates):
        assert after.area_fraction >= 1.5 * before.area_fraction
    assert [e.kind for e in events] == ["started", *["updated"] * len(updates), "cleared"]


def test_smoke_after_fire_is_its_own_alert_without_severity():
    events = run_events(video_frames("fire2") + fire_free_cctv(15), CONFIG)
    started = [(e.class_name, e.severity) for e in events if e.kind == "started"]
    assert started == [("fire", "fire"), ("smoke", None)]
    assert sum(e.kind == "cleared" for e in events) == 2


def test_fire_free_frames_give_no_alert():
    assert run_events(fire_free_cctv(40), CONFIG) == []


def test_flicker_below_k_of_n_never_confirms():
    """A detection seen in 2 of every 5 frames (a reflection, say) stays below 3-of-5."""
    image = cv2.imread(str(fire_free_cctv(1)[0]))
    events = FireEvents("test", NAMES, CONFIG)
    box = Detections([[100, 100, 160, 180]], [0.7], [0], [7])
    out = []
    for i in range(50):
        dets = box if i % 5 in (0, 2) else Detections.empty()
        if dets.track_id is None:
            dets.track_id = np.zeros(0, np.int32)
        out += events.update(dets, Frame(image, i, i / 10, 0.0))
    assert out == []


def test_small_fire_is_start_fire_then_updated_to_fire_when_it_grows():
    image = cv2.imread(str(fire_free_cctv(1)[0]))
    h, w = image.shape[:2]
    events = FireEvents("test", NAMES, CONFIG)
    out = []
    for i in range(30):
        side = 40 + 4 * i  # 40x40 px = 0.6 % of 512x512, growing
        dets = Detections([[200, 200, 200 + side, 200 + side]], [0.6], [0], [3])
        out += events.update(dets, Frame(image, i, i / 10, 0.0))
    assert out[0].kind == "started" and out[0].severity == "start-fire"
    assert out[0].area_fraction == pytest.approx(48 * 48 / (h * w))
    severities = [e.severity for e in out]
    assert "fire" in severities
    assert severities.index("fire") > 0
    assert all(e.kind == "updated" for e in out[1:])
    # severity never falls back within one alert
    assert severities[severities.index("fire"):] == ["fire"] * (len(out) - severities.index("fire"))


def test_track_id_switch_on_the_same_fire_does_not_start_a_second_alert():
    image = cv2.imread(str(fire_free_cctv(1)[0]))
    events = FireEvents("test", NAMES, CONFIG)
    out = []
    for i in range(20):
        tid = 1 if i < 10 else 2  # the tracker lost and re-found the fire under a new id
        out += events.update(Detections([[100, 100, 200, 220]], [0.6], [0], [tid]), Frame(image, i, i / 10, 0.0))
    for i in range(20, 35):
        out += events.update(Detections([[100, 100, 200, 220]], [0.6], [0], [2])[:0], Frame(image, i, i / 10, 0.0))
    assert [e.kind for e in out] == ["started", "cleared"]


@dataclass
class Verdict:
    label: str
    confidence: float

    @property
    def no_fire(self) -> float:
        return self.confidence if self.label == "no-fire" else (1 - self.confidence) / 2


class FixedClassifier:
    """Stands in for vision.classifier.FireClassifier (another engineer's module)."""

    def __init__(self, label: str, confidence: float):
        self.verdict = Verdict(label, confidence)
        self.crops: list[tuple[int, int]] = []

    def classify(self, crop_bgr: np.ndarray) -> Verdict:
        self.crops.append(crop_bgr.shape[:2])
        return self.verdict


def test_confident_no_fire_classifier_vetoes_confirmation():
    fire = [p for p in video_frames("fire2") if frame_no(p) <= 71]
    classifier = FixedClassifier("no-fire", 0.95)
    assert run_events(fire, CONFIG, classifier) == []
    # asked once per classify_every_s (2 s = 20 frames), not every frame
    assert 1 <= len(classifier.crops) <= 3
    # a doubtful "no-fire" does not veto
    assert [e.kind for e in run_events(fire[:10], CONFIG, FixedClassifier("no-fire", 0.5))][0] == "started"


def test_veto_below_one_half_requires_a_confident_fire():
    """veto_confidence 0.1: a fire verdict at 0.85 (p(no-fire) 0.075) passes, one at 0.7
    (p(no-fire) 0.15) is vetoed though its label is fire."""
    fire = [p for p in video_frames("fire2") if frame_no(p) <= 71][:10]
    strict = replace(CONFIG, veto_confidence=0.1)
    assert [e.kind for e in run_events(fire, strict, FixedClassifier("fire", 0.85))][0] == "started"
    assert run_events(fire, strict, FixedClassifier("fire", 0.7)) == []


def test_classifier_sets_severity():
    fire = [p for p in video_frames("fire2") if frame_no(p) <= 71][:10]
    events = run_events(fire, CONFIG, FixedClassifier("start-fire", 0.9))
    assert events[0].kind == "started"
    assert {e.severity for e in events} == {"start-fire"}  # the classifier's word, though the box is large


def test_annotated_snapshot_has_caption_and_box(tmp_path):
    image = cv2.imread(str(video_frames("fire2")[0]))
    dets = Detections([[300, 120, 400, 400]], [0.83], [0], [5])
    out = annotate(image, dets, NAMES, camera="yard", wall=1_700_000_000.0, severity_of=lambda tid: "fire")
    assert out.shape == image.shape and not np.shares_memory(out, image)
    changed = np.any(out != image, axis=2)
    assert changed[:10].all(axis=1).any()  # the caption bar spans the width
    assert (out[200, 300] == (0, 0, 255)).all()  # red box edge for severity fire
    assert not changed[300:350, 320:380].any()  # inside the box untouched
    event = FireEvent("started", "yard cam/1", 5, "fire", "fire", 0.83, (300, 120, 400, 400), 0.1, 0, 0.0, 1_700_000_000.0)
    path = snapshot_path(tmp_path, event)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(1_700_000_000.0))
    assert path == tmp_path / "yard_cam_1" / f"{stamp}-track5-started.jpg"


def test_replay_writes_events_snapshots_and_video(tmp_path):
    images = video_frames("fire2") + fire_free_cctv(15)
    folder = link_sequence(tmp_path / "frames", images)
    summary = replay(
        folder, detector=LabelDetector(images), event_config=CONFIG, fps=10, camera="yard",
        events=tmp_path / "events.jsonl", snapshots=tmp_path / "snaps", out_video=tmp_path / "out.mp4",
    )
    assert summary.frames == len(images)
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    # the smoke starts while the fire's alert still waits out clear_after_s
    assert [(e["event"], e["class"]) for e in lines if e["event"] != "updated"] == [
        ("started", "fire"), ("started", "smoke"), ("cleared", "fire"), ("cleared", "smoke")
    ]
    assert summary.events["started"] == 2 and summary.events["cleared"] == 2
    first = lines[0]
    assert set(first) >= {"event", "t", "frame", "track_id", "class", "severity", "confidence", "box", "snapshot"}
    assert first["class"] == "fire" and first["t"] == pytest.approx(first["frame"] / 10)
    assert len(first["box"]) == 4 and 0 < first["confidence"] < 1
    for event in lines:
        snap = Path(event["snapshot"])
        assert snap.is_file() and snap.parent == tmp_path / "snaps" / "yard"
        assert snap.name.endswith(f"-track{event['track_id']}-{event['event']}.jpg")
        assert cv2.imread(str(snap)).shape == (512, 512, 3)
    video = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == len(images)


def test_source_end_flushes_open_alerts(tmp_path):
    fire = [p for p in video_frames("fire2") if frame_no(p) <= 71]
    folder = link_sequence(tmp_path / "frames", fire)
    events = []
    pipeline = Pipeline(ImageFolderSource(folder, fps=10), LabelDetector(fire), event_config=CONFIG, sinks=[CallbackSink(events.append)])
    pipeline.run()
    kinds = [e.kind for e in events if isinstance(e, FireEvent) and e.kind != "updated"]
    assert kinds == ["started", "cleared"]
    assert events[-1].frame == len(fire) - 1


def test_pipeline_in_a_worker_thread_start_status_snapshot_stop(tmp_path):
    images = video_frames("fire2")
    folder = link_sequence(tmp_path / "frames", images * 3)
    received: list = []
    pipeline = Pipeline(
        ImageFolderSource(folder, fps=25, realtime=True), LabelDetector(images * 3),
        camera="yard", event_config=CONFIG, sinks=[CallbackSink(received.append)], snapshot_dir=tmp_path / "snaps",
    )
    assert pipeline.snapshot() is None
    pipeline.start()
    deadline = time.monotonic() + 20
    while not any(isinstance(e, FireEvent) for e in received) and time.monotonic() < deadline:
        time.sleep(0.05)
    status = pipeline.status()
    assert status.running and status.health == "ok" and status.fps > 5 and status.open_alerts == 1
    picture = pipeline.snapshot()
    assert picture is not None and picture.shape == (512, 512, 3)
    assert pipeline.snapshot_jpeg()[:2] == b"\xff\xd8"
    started = time.monotonic()
    pipeline.stop()
    assert not pipeline.running and time.monotonic() - started < 2
    assert pipeline.frames < len(images) * 3  # stopped early, not run to the end
    stopped = time.time()
    time.sleep(0.3)
    shot = pipeline.zoned_snapshot()  # the last frame, with the time it was captured, not now
    assert shot is not None and shot.image.shape == (512, 512, 3) and shot.wall <= stopped
    assert not any(isinstance(e, FireEvent) and e.kind == "cleared" for e in received)  # stop is not "fire gone"
    assert all(not isinstance(e, HealthEvent) for e in received)
