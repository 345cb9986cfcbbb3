"""An edge's alert recorder: the alert's snapshot goes into the shared database (size-capped),
where the bot reads it from another machine; the file stays on the edge for its other sinks.

An edge started while its database is away carries the last run's open alerts over once the
database answers (and its spool is replayed), not at start."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.alerts import AlertRecorder, RecordResult
from storage.repository import is_stored_snapshot
from vision.types import ClipEvent, Event, FireEvent

log = logging.getLogger(__name__)


class EdgeRecorder(AlertRecorder):
    def __init__(self, store: Any, *, owns: Callable[[str], bool] = lambda camera: True, **options: Any) -> None:
        super().__init__(store, owns=owns, **options)
        self._owns = owns

    def expire_carried(self, watching: dict[str, bool]) -> bool:
        if not getattr(self.store, "open_alerts_known", True):
            self._carry_over()
        return super().expire_carried(watching)

    def _carry_over(self) -> None:
        """The last run's open alerts, once the database answers and holds all this run wrote."""
        with self._lock:
            if self.store.spooling:
                return
            try:
                alerts = self.store.store.open_alerts()
            except Exception:  # away again: asked at the next look
                return
            ours = set(self._open.values())  # recorded by this run, spooled or not, still open
            self._carried.update({a.id: a for a in alerts
                                  if self._owns(a.camera) and a.id not in ours and a.key not in ours})
            self.store.open_alerts_known = True
        if self._carried:
            log.info("%d alerts left open by the last run are carried over", len(self._carried))

    def record(self, event: Event) -> RecordResult:
        return super().record(self.stored(event))

    def stored(self, event: Event) -> Event:
        """``event`` with its snapshot file replaced by its copy in the database; unchanged
        when it has none (a cleared alert's is not shown) or it cannot be kept there (over the
        cap, unreadable, or the database away: the alert is recorded, or spooled, without it)."""
        if isinstance(event, ClipEvent):
            return self._stored_clip(event)
        if (not isinstance(event, FireEvent) or not event.snapshot or event.kind == "cleared"
                or is_stored_snapshot(event.snapshot)):
            return event
        try:
            ref = self.store.save_snapshot(Path(event.snapshot).read_bytes())
        except (OSError, ValueError) as exc:  # unreadable, or over the cap
            log.warning("snapshot of %s track %d not kept in the database: %s", event.camera, event.track_id, exc)
            return event
        except Exception as exc:  # the database is away: the alert itself must still be recorded
            log.warning("snapshot of %s track %d not kept in the database (%s): the alert goes without it",
                        event.camera, event.track_id, type(exc).__name__)
            return event
        return dataclasses.replace(event, snapshot=ref)

    def _stored_clip(self, clip: ClipEvent) -> ClipEvent:
        """The onset clip, like the snapshot, where the bot on another machine reads it; left
        a local file (which the bot cannot send: the alert keeps its photo) if it cannot be."""
        try:
            ref = self.store.save_snapshot(Path(clip.path).read_bytes(), "video/mp4")
        except Exception as exc:  # unreadable, over the cap, or the database away
            log.warning("onset clip of %s track %d not kept in the database (%s)", clip.camera, clip.track_id,
                        type(exc).__name__)
            return clip
        return clip if ref is None else dataclasses.replace(clip, path=ref)
