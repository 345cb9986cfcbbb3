"""An edge's check-in with the fleet: every few seconds it writes its heartbeat (its cameras
and their state) to the shared database, and takes the ignore zones operators added there
since, so that a zone added on the bot reaches the edge's pipelines without a restart.

The database being out of reach is said once when it starts and once when it ends; the
cameras keep watching meanwhile.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone

from storage import Store
from vision.pipeline import Pipeline
from vision.zones import Zone

log = logging.getLogger(__name__)


def camera_states(pipelines: Mapping[str, Pipeline]) -> list[dict]:
    """Each camera's status as /status shows it (``PipelineStatus``'s fields) and its zone count."""
    return [{**dataclasses.asdict(pipeline.status()), "zones": len(pipeline.zones.zones)}
            for pipeline in pipelines.values()]


class EdgeHeartbeat:
    """Beats for edge ``name`` every ``interval_s`` in a thread of its own, until ``stop``."""

    def __init__(self, store: Store, name: str, pipelines: Mapping[str, Pipeline], interval_s: float,
                 stored_zones: Callable[[str], Sequence[Zone]], *,
                 refresh: Callable[[], object] | None = None) -> None:
        """``refresh``: at each check-in, read (and keep) the rest of what the edge decides by."""
        self.store = store
        self.refresh = refresh
        self.name = name
        self.pipelines = pipelines
        self.interval_s = interval_s
        self.stored_zones = stored_zones
        self.started_at = datetime.now(timezone.utc)
        self.beats = 0
        self._failing = False
        self._thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._run, args=(stop,), name="edge-heartbeat", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.beat()
            stop.wait(self.interval_s)

    def beat(self) -> bool:
        """One check-in and zone refresh; False if the database could not be reached."""
        try:
            self.store.beat(self.name, camera_states(self.pipelines),
                            started_at=self.started_at if self.beats == 0 else None)
            for camera, pipeline in self.pipelines.items():
                zones = tuple(self.stored_zones(camera))
                if zones != pipeline.zones.added:
                    pipeline.zones.set_added(zones)
                    log.info("camera %s: %d ignore zones from the database", camera, len(zones))
            if self.refresh is not None:
                self.refresh()
        except Exception as exc:  # the database is away: keep watching, say it once
            if not self._failing:
                log.warning("edge %s cannot reach the database (%s): heartbeats resume when it is back",
                            self.name, type(exc).__name__)
            self._failing = True
            return False
        if self._failing:
            log.info("edge %s reaches the database again", self.name)
        self._failing = False
        self.beats += 1
        return True
