"""Sinks: every sink receives every event of the camera, in the order the pipeline emitted
them, and a sink that fails keeps nothing from the others."""

from __future__ import annotations

import json
import logging
import threading

from tests.support.data import FIRE2, fire_free_cctv, link_sequence
from tests.support.doubles import LabelDetector
from vision.events import EventConfig
from vision.health import HealthConfig
from vision.pipeline import Pipeline
from vision.sinks import CallbackSink
from vision.sources import ImageFolderSource
from vision.types import Event, FireEvent, HealthEvent


class Recorder:
    """Notes each event it receives, and the thread it came on."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.threads: set[str] = set()

    def publish(self, event: Event) -> None:
        self.events.append(event)
        self.threads.add(threading.current_thread().name)


class Broken:
    def __init__(self) -> None:
        self.calls = 0

    def publish(self, event: Event) -> None:
        self.calls += 1
        raise OSError("disk full")


def test_each_sink_receives_every_event_in_order_despite_a_failing_one(tmp_path, caplog):
    # Fire, then a frozen picture (health events), then quiet frames long enough to clear it.
    images = FIRE2[:40] + [FIRE2[39]] * 15 + fire_free_cctv(20)
    folder = link_sequence(tmp_path / "frames", images)
    first, broken, last = Recorder(), Broken(), Recorder()
    caplog.set_level(logging.INFO, logger="vision.pipeline")
    pipeline = Pipeline(
        ImageFolderSource(folder, fps=10), LabelDetector(images), camera="yard",
        event_config=EventConfig(confirm_hits=3, confirm_window=5, clear_after_s=1.0),
        health_config=HealthConfig(frozen_after_s=1.0), sinks=[first, broken, last],
    )
    pipeline.run()

    emitted = [json.loads(r.getMessage()) for r in caplog.records
               if r.name == "vision.pipeline" and r.getMessage().startswith("{")]
    kinds = [e.kind for e in last.events]
    assert {"started", "cleared", "frozen", "back"} <= set(kinds)
    assert any(isinstance(e, HealthEvent) for e in last.events) and any(isinstance(e, FireEvent) for e in last.events)
    assert [e.to_dict() for e in last.events] == [e.to_dict() for e in first.events] == emitted
    assert broken.calls == len(emitted)
    assert first.threads == last.threads == {"vision-yard-post"}
    assert "sink Broken failed" in caplog.text


def test_a_function_is_a_sink(tmp_path):
    received: list[Event] = []
    images = FIRE2[:20]
    Pipeline(ImageFolderSource(link_sequence(tmp_path / "frames", images), fps=10), LabelDetector(images),
             sinks=[CallbackSink(received.append)]).run()
    assert [e.kind for e in received if isinstance(e, FireEvent)] == ["started", "cleared"]
