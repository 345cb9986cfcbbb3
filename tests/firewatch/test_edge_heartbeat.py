"""An edge's side of the fleet, on both databases: its heartbeat carries its cameras' state and
brings it the zones that operators added through the bot (another process); a database out of
reach is said once and the beat resumes; its recorder keeps snapshots in the database."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from bot.zones import stored_zones
from firewatch.edge_recorder import EdgeRecorder
from firewatch.heartbeat import EdgeHeartbeat
from storage import Store, upgrade
from storage.models import SNAPSHOT_MAX_BYTES
from tests.support.data import FIRE2, folder_of
from tests.support.servers import free_port
from vision.pipeline import Pipeline
from vision.sources import ImageFolderSource
from vision.types import Detections, FireEvent

CAMERA = "site-a/yard"
BOX = [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]]

pytestmark = pytest.mark.skipif(len(FIRE2) < 6, reason="needs the shared fire2_mp4 frames")


class NoDetections:
    names = {0: "fire", 1: "smoke"}

    def __call__(self, image: np.ndarray) -> Detections:
        return Detections.empty()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = (f"sqlite:///{tmp_path / 'fw.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_database"))
    upgrade(url)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def test_the_beat_carries_the_cameras_and_brings_the_bots_zones(tmp_path: Path, db_url: str, store: Store) -> None:
    pipeline = Pipeline(ImageFolderSource(folder_of(tmp_path, FIRE2[:6]), fps=50), NoDetections(), camera=CAMERA)
    heartbeat = EdgeHeartbeat(store, "site-a", {CAMERA: pipeline}, 1.0, lambda camera: stored_zones(store, camera))
    assert heartbeat.beat()
    _, (edge,) = store.edges()
    assert edge.name == "site-a" and [state["camera"] for state in edge.cameras] == [CAMERA]
    assert (edge.cameras[0]["frames"], edge.cameras[0]["zones"]) == (0, 0)

    bot = Store(db_url)  # an operator presses "Ignore this area" on the bot
    try:
        zone = bot.add_zone(CAMERA, BOX, created_by=1001)
        bot.add_zone("site-b/yard", BOX, created_by=1001)  # another edge's camera
        assert heartbeat.beat()
        assert [z.id for z in pipeline.zones.added] == [zone.id]
        pipeline.start()
        deadline = time.monotonic() + 30
        while pipeline.running and time.monotonic() < deadline:
            time.sleep(0.05)
        bot.remove_zone(zone.id)
        assert heartbeat.beat()
    finally:
        bot.close()
    assert pipeline.zones.added == ()
    _, (edge,) = store.edges()
    assert (edge.cameras[0]["frames"], edge.cameras[0]["running"]) == (6, False)
    assert edge.started_at <= edge.last_seen


def test_a_database_out_of_reach_is_said_once(caplog: pytest.LogCaptureFixture, store: Store) -> None:
    gone = Store(f"postgresql+psycopg://firewatch@127.0.0.1:{free_port()}/none?connect_timeout=2")
    heartbeat = EdgeHeartbeat(gone, "site-a", {}, 1.0, lambda camera: ())
    with caplog.at_level(logging.INFO, logger="firewatch.heartbeat"):
        assert heartbeat.beat() is False
        assert heartbeat.beat() is False
        heartbeat.store = store  # the database answers again
        assert heartbeat.beat() is True
    gone.close()
    said = [r.getMessage() for r in caplog.records]
    assert said == ["edge site-a cannot reach the database (OperationalError): heartbeats resume when it is back",
                    "edge site-a reaches the database again"], said
    assert [e.name for e in store.edges()[1]] == ["site-a"]


def _event(kind: str, snapshot: Path | None) -> FireEvent:
    return FireEvent(kind=kind, camera=CAMERA, track_id=7, class_name="fire", severity="fire", confidence=0.8,  # type: ignore[arg-type]
                     box=(10, 10, 50, 50), area_fraction=0.05, frame=3, t=0.3,
                     wall=datetime.now(timezone.utc).timestamp(), snapshot=str(snapshot) if snapshot else None,
                     frame_size=(640, 480))


def test_the_edges_recorder_keeps_the_snapshot_in_the_database(tmp_path: Path, store: Store,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    jpeg = FIRE2[0].read_bytes()
    shot = tmp_path / "started.jpg"
    shot.write_bytes(jpeg)
    recorder = EdgeRecorder(store, can_push=True, owns=lambda camera: camera.startswith("site-a/"))
    alert_id = recorder.record(_event("started", shot)).alert_id
    shot.unlink()  # the bot, elsewhere, never sees the edge's file
    alert = store.get_alert(alert_id)  # type: ignore[arg-type]
    assert alert is not None and alert.snapshot_path.startswith("db:snapshot/")  # type: ignore[union-attr]
    assert store.read_snapshot(alert.snapshot_path) == jpeg

    huge = tmp_path / "updated.jpg"
    huge.write_bytes(b"\xff" * (SNAPSHOT_MAX_BYTES + 1))
    with caplog.at_level(logging.WARNING, logger="firewatch.edge_recorder"):
        recorder.record(_event("updated", huge))
    assert store.get_alert(alert_id).snapshot_path == str(huge)  # type: ignore[union-attr, arg-type]
    assert "not kept in the database" in caplog.text and "cap" in caplog.text
    recorder.record(_event("cleared", shot))  # a cleared alert's picture is not shown: nothing stored
    assert store.get_alert(alert_id).cleared_at is not None  # type: ignore[union-attr, arg-type]
    assert store.read_snapshot("db:snapshot/2") is None
