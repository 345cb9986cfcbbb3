"""The heartbeat job: a stalled or crashed pipeline is reported to the admins once; a
video file or image folder that played to its end is not a stall."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from bot.access import Access
from bot.jobs import heartbeat
from storage import Store
from tests.support.data import FIRE2, folder_of
from tests.support.doubles import FailingAt, PassThroughTracker
from vision.pipeline import Pipeline
from vision.sources import ImageFolderSource
from vision.types import Detections

ADMIN = 4242


class NoBoxes:
    """A detector that sees nothing: the heartbeat only cares whether frames flow."""

    names = {0: "fire", 1: "smoke"}

    def prepare(self, image):  # type: ignore[no-untyped-def]
        return image

    def infer(self, prepared):  # type: ignore[no-untyped-def]
        return prepared

    def decode(self, inferred):  # type: ignore[no-untyped-def]
        return Detections.empty()


def beat(pipeline: Pipeline, store: Store, bot_data: dict) -> None:
    svc = SimpleNamespace(pipelines={pipeline.camera: pipeline}, store=store, access=Access(store, [ADMIN]), outbox=None,
                          settings=SimpleNamespace(stall_after_s=0.0))
    bot_data["services"] = svc
    asyncio.run(heartbeat(SimpleNamespace(bot_data=bot_data)))


def texts(store: Store) -> list[str]:
    return [d.text for d in store.deliveries() if d.chat_id == ADMIN]


def test_a_folder_that_played_to_its_end_is_not_a_stall(tmp_path, store):
    pipeline = Pipeline(ImageFolderSource(folder_of(tmp_path, FIRE2[:5]), fps=50), NoBoxes(), camera="yard",
                        tracker=PassThroughTracker())
    pipeline.run()
    assert pipeline.status().frames == 5 and pipeline.status().error is None
    bot_data: dict = {}
    for _ in range(3):
        beat(pipeline, store, bot_data)
    assert texts(store) == []


def test_a_crashed_pipeline_is_reported_once_with_its_error(tmp_path, store):
    pipeline = Pipeline(ImageFolderSource(folder_of(tmp_path, FIRE2[:20]), fps=50), FailingAt("infer", frame=3),
                        camera="yard", tracker=PassThroughTracker())
    with pytest.raises(RuntimeError):
        pipeline.run()
    bot_data: dict = {}
    for _ in range(3):  # first beat notes the frame count, the next finds it unchanged
        beat(pipeline, store, bot_data)
    assert len(texts(store)) == 1
    assert "produced no frame" in texts(store)[0] and "It stopped: RuntimeError: infer broke" in texts(store)[0]
