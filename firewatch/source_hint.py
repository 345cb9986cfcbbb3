"""One hint, the first time the configured camera cannot be opened: which setting names it
and what else it can point at. The pipeline reports every outage as a ``lost`` health
event; only the first in a run gets the hint, later ones are ordinary outages."""

from __future__ import annotations

import logging

from firewatch.masking import mask_url_credentials
from vision.types import Event, HealthEvent

log = logging.getLogger("firewatch")


class SourceHint:
    """A sink that logs the hint once, on the first ``lost`` event."""

    def __init__(self, source: str, setting: str = "FIREWATCH_CAMERA_SOURCE") -> None:
        self.source = source
        self.setting = setting  # where the user changes the source
        self._said = False

    def publish(self, event: Event) -> None:
        if self._said or not isinstance(event, HealthEvent) or event.kind != "lost":
            return
        self._said = True
        log.warning(
            "camera source %r (%s) is not delivering: %s. Point %s at a stream (rtsp://host/path), "
            "a video file or an image folder; `firewatch demo` plays a fire clip without a camera. "
            "Retrying meanwhile.", mask_url_credentials(self.source), self.setting, event.detail, self.setting)

