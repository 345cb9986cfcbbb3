"""Where a camera's events go: sinks, each handed every event in the order it happened.

The pipeline publishes each event to its sinks in turn, from its post thread, in frame
order. A sink that raises is logged and skipped for that event only, so one broken
consumer (a full disk, a dead broker) neither starves the others nor stops detection. A
sink with slow work (a database, a network) hands the event to its own thread or loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from vision.types import Event

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Receives one camera's events, in order, on the pipeline's post thread."""

    def publish(self, event: Event) -> None: ...


@dataclass(frozen=True)
class CallbackSink:
    """A function as a sink."""

    callback: Callable[[Event], None]

    def publish(self, event: Event) -> None:
        self.callback(event)


def publish(sinks: Sequence[Sink], event: Event) -> None:
    """Hand ``event`` to every sink; a failing sink does not keep it from the others."""
    for sink in sinks:
        try:
            sink.publish(event)
        except Exception:  # a consumer's bug must not stop fire detection
            log.exception("sink %s failed on %s", type(sink).__name__, event)
