"""What a camera is doing now, as /status tells it: live, ended (a file played to its end),
lost since when, its frame rate over the last seconds and the age of its last frame.

A frame rate averaged since the start stays high after the frames stop, and a camera that
ended or stalled must not read as healthy: the rate here counts only the last seconds.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

# starting: no frame yet; live: frames arrive; stalled: no frame for a while, the source not
# (yet) declared lost; lost: the source stopped delivering; ended: a file or folder played
# to its end; failed: the loop stopped on an error; stopped: the daemon stopped it.
CameraState = Literal["starting", "live", "stalled", "lost", "ended", "failed", "stopped"]

RATE_WINDOW_S = 5.0
# No frame for this long while the source still counts as open: stalled.
STALLED_AFTER_S = 10.0


class FrameRate:
    """Frames per second over the last ``window`` seconds; 0 once frames stop for that long."""

    def __init__(self, window: float = RATE_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._ticks: deque[float] = deque()
        self._first: float | None = None
        self._lock = threading.Lock()

    def tick(self) -> None:
        """One frame, now."""
        now = self._clock()
        with self._lock:
            if self._first is None:
                self._first = now
            self._ticks.append(now)
            self._prune(now)

    def rate(self) -> float:
        now = self._clock()
        with self._lock:
            self._prune(now)
            if self._first is None or not self._ticks:
                return 0.0
            if now - self._first >= self.window:
                return len(self._ticks) / self.window
            # Fewer seconds than the window since the first frame: the gaps between frames.
            span = now - self._ticks[0]
            return (len(self._ticks) - 1) / span if len(self._ticks) > 1 and span > 0 else 0.0

    def _prune(self, now: float) -> None:
        while self._ticks and self._ticks[0] <= now - self.window:
            self._ticks.popleft()


def camera_state(*, running: bool, error: str | None, stopped: bool, finished_at: float | None,
                 lost_since: float | None, last_frame: float | None, now: float) -> tuple[CameraState, float | None]:
    """The state and since when (a Unix time; None when it has no start worth saying).
    ``stopped``: a stop was asked for; ``finished_at``: when the loop returned."""
    if not running:
        if error is not None:
            return "failed", finished_at
        if finished_at is None:
            return ("stopped" if stopped else "starting"), None
        return ("stopped", finished_at) if stopped else ("ended", finished_at)
    if lost_since is not None:
        return "lost", lost_since
    if last_frame is None:
        return "starting", None
    if now - last_frame >= STALLED_AFTER_S:
        return "stalled", last_frame
    return "live", None
