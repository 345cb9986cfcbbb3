"""Camera health: lost (no frames), frozen (identical frames), black (lens covered / no signal).

One state machine per camera. Each frame is reduced once to a small grey thumbnail (a
single ``cv2.resize``), which is enough to compare frames and measure darkness without
touching every pixel in Python.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from vision.types import Frame, HealthEvent

HealthState = Literal["ok", "lost", "frozen", "black"]
_THUMB = (64, 48)  # (w, h)


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds of the health checks.

    frozen: consecutive thumbnails whose mean absolute grey difference is at most
    ``frozen_tolerance`` (0 = identical) for ``frozen_after_s`` seconds.
    black: mean grey below ``black_level`` with spread below ``black_spread`` (a covered lens
    is dark *and* flat; a night scene is dark but has lights) for ``black_after_s`` seconds.
    """

    frozen_after_s: float = 10.0
    frozen_tolerance: float = 0.0
    black_after_s: float = 5.0
    black_level: float = 20.0
    black_spread: float = 5.0


class HealthMonitor:
    """Turns frames and outages into ``HealthEvent``s on state changes only."""

    def __init__(self, camera: str, config: HealthConfig | None = None, clock: Callable[[], float] = time.monotonic):
        self.camera = camera
        self.config = config or HealthConfig()
        self.state: HealthState = "ok"
        self._clock = clock
        self._thumb = np.empty((_THUMB[1], _THUMB[0]), np.uint8)
        self._previous = np.empty_like(self._thumb)
        self._diff = np.empty_like(self._thumb)
        self._have_previous = False
        self._still_since: float | None = None
        self._dark_since: float | None = None
        self._last_t = 0.0
        self._last_clock = clock()
        self._last_frame: int | None = None
        self._previous_t = 0.0

    def lost(self, detail: str = "") -> list[HealthEvent]:
        """The source stopped delivering; ``t`` extends the last frame's time by the wall time since."""
        if self.state == "lost":
            return []
        self.state = "lost"
        self._have_previous = False
        self._still_since = self._dark_since = None
        t = self._last_t + (self._clock() - self._last_clock)
        return [HealthEvent(self.camera, "lost", t, time.time(), self._last_frame, detail)]

    def observe(self, frame: Frame) -> list[HealthEvent]:
        """Check one frame; returns the events of any state change."""
        cfg = self.config
        self._last_t, self._last_clock, self._last_frame = frame.t, self._clock(), frame.index
        events: list[HealthEvent] = []
        if self.state == "lost":
            self.state = "ok"
            events.append(HealthEvent(self.camera, "back", frame.t, frame.wall, frame.index, "frames again"))

        # Shrink first, then convert: a bilinear sample of the frame (0.02 ms at 720p) is
        # enough to compare frames and measure darkness; area-averaging the full-size grey
        # image cost 0.7 ms, a twentieth of the model's time.
        image = frame.image
        if image.ndim == 3:
            small = cv2.resize(image, _THUMB, interpolation=cv2.INTER_LINEAR)
            cv2.cvtColor(small, cv2.COLOR_BGR2GRAY, dst=self._thumb)
        else:
            cv2.resize(image, _THUMB, dst=self._thumb, interpolation=cv2.INTER_LINEAR)
        mean, spread = cv2.meanStdDev(self._thumb)
        dark = float(mean[0, 0]) < cfg.black_level and float(spread[0, 0]) < cfg.black_spread
        self._dark_since = (self._dark_since if self._dark_since is not None else frame.t) if dark else None

        still = False
        if self._have_previous:
            cv2.absdiff(self._thumb, self._previous, dst=self._diff)
            still = float(cv2.mean(self._diff)[0]) <= cfg.frozen_tolerance
        if still:
            if self._still_since is None:
                self._still_since = self._previous_t
        else:
            self._still_since = None
        self._thumb, self._previous = self._previous, self._thumb
        self._have_previous = True
        self._previous_t = frame.t

        if self._dark_since is not None and frame.t - self._dark_since >= cfg.black_after_s:
            new: HealthState = "black"
        elif self._still_since is not None and frame.t - self._still_since >= cfg.frozen_after_s:
            new = "frozen"
        else:
            new = "ok"
        if new == self.state:
            return events
        previous, self.state = self.state, new
        if new == "ok":
            events.append(HealthEvent(self.camera, "back", frame.t, frame.wall, frame.index, f"{previous} ended"))
        elif new == "black":
            events.append(HealthEvent(self.camera, "black", frame.t, frame.wall, frame.index, f"mean grey {float(mean[0, 0]):.1f}"))
        else:
            detail = f"identical frames for {frame.t - self._still_since:.1f} s"
            events.append(HealthEvent(self.camera, "frozen", frame.t, frame.wall, frame.index, detail))
        return events
