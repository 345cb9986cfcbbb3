"""Scripted failures of the fake Bot API: 5xx errors, 429 flood waits, stalls, late answers,
dropped connections."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from typing import Any


class FaultKind(str, Enum):
    ERROR = "error"  # answer with an HTTP error status (5xx by default) and Bot API error JSON
    RETRY_AFTER = "retry_after"  # answer 429 with parameters.retry_after
    STALL = "stall"  # wait ``seconds`` before handling the call normally
    DROP = "drop"  # close the connection without any response
    LATE = "late"  # carry the call out at once (the message is there), answer ``seconds`` later


@dataclass
class Fault:
    kind: FaultKind
    remaining: int
    # Lower-cased Bot API method names; None means every method (getUpdates included).
    # Downloads under /file/bot<token>/ count as the pseudo-method "file".
    methods: frozenset[str] | None = None
    status: int = 500
    description: str | None = None
    retry_after: int = 1
    seconds: float = 0.0
    # DROP only: carry the call out first, then drop the response (the bot cannot know it worked).
    after_execute: bool = False
    # time.monotonic() after which the fault no longer matches (an outage of some seconds).
    until: float | None = None
    # Only calls whose chat_id is one of these (None: any call): one slow chat among others.
    chats: frozenset[int] | None = None

    def matches(self, method: str, chat_id: int | None = None) -> bool:
        if self.until is not None and time.monotonic() >= self.until:
            return False
        if self.chats is not None and chat_id not in self.chats:
            return False
        return self.remaining > 0 and (self.methods is None or method.lower() in self.methods)

    def error_description(self) -> str:
        if self.description:
            return self.description
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return "Error"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "remaining": self.remaining,
            "methods": sorted(self.methods) if self.methods is not None else None,
            "status": self.status,
            "description": self.description,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "after_execute": self.after_execute,
            "chats": sorted(self.chats) if self.chats is not None else None,
            "seconds_left": None if self.until is None else max(0.0, self.until - time.monotonic()),
        }


def _methods(methods: str | list[str] | tuple[str, ...] | frozenset[str] | set[str] | None) -> frozenset[str] | None:
    if methods is None:
        return None
    if isinstance(methods, str):
        methods = [methods]
    return frozenset(m.lower() for m in methods)


def _chats(chats: list[int] | tuple[int, ...] | None) -> frozenset[int] | None:
    return None if chats is None else frozenset(int(c) for c in chats)


class FaultPlan:
    """Faults queued in order; each matching call consumes one unit of the first matching fault."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        if fault.remaining < 1:
            raise ValueError("a fault needs a count of at least 1")
        self._faults.append(fault)
        return fault

    def fail_next(
        self, n: int = 1, *, methods: str | list[str] | None = None, status: int = 500, description: str | None = None,
        chats: list[int] | None = None,
    ) -> Fault:
        """Answer the next ``n`` matching calls with HTTP ``status`` and Bot API error JSON."""
        return self.add(Fault(FaultKind.ERROR, n, _methods(methods), status=status, description=description,
                              chats=_chats(chats)))

    def rate_limit(self, n: int = 1, *, retry_after: int = 1, methods: str | list[str] | None = None) -> Fault:
        """Answer the next ``n`` matching calls 429 "Too Many Requests: retry after N"."""
        return self.add(Fault(FaultKind.RETRY_AFTER, n, _methods(methods), status=429, retry_after=retry_after))

    def stall(self, n: int = 1, *, seconds: float, methods: str | list[str] | None = None) -> Fault:
        """Delay the next ``n`` matching calls by ``seconds`` before handling them normally."""
        return self.add(Fault(FaultKind.STALL, n, _methods(methods), seconds=seconds))

    def late(self, n: int = 1, *, seconds: float, methods: str | list[str] | None = None,
             chats: list[int] | None = None) -> Fault:
        """Carry out the next ``n`` matching calls at once but answer them ``seconds`` later:
        Telegram took the upload, its answer is slow. A client that gives up first never
        learns that the message is there."""
        return self.add(Fault(FaultKind.LATE, n, _methods(methods), seconds=seconds, chats=_chats(chats)))

    def drop(self, n: int = 1, *, methods: str | list[str] | None = None, after_execute: bool = False) -> Fault:
        """Close the connection of the next ``n`` matching calls without answering."""
        return self.add(Fault(FaultKind.DROP, n, _methods(methods), after_execute=after_execute))

    def outage(self, seconds: float, *, methods: str | list[str] | None = None) -> Fault:
        """Drop every matching call's connection for the next ``seconds``: Telegram out of reach."""
        return self.add(Fault(FaultKind.DROP, 10**9, _methods(methods), until=time.monotonic() + seconds))

    def add_json(self, spec: dict[str, Any]) -> Fault:
        """Build a fault from the control API's JSON (same names as the Python methods)."""
        kind = FaultKind(spec["kind"])
        fault = Fault(
            kind=kind,
            remaining=int(spec.get("count", 1)),
            methods=_methods(spec.get("methods")),
            status=int(spec.get("status", 429 if kind is FaultKind.RETRY_AFTER else 500)),
            description=spec.get("description"),
            retry_after=int(spec.get("retry_after", 1)),
            seconds=float(spec.get("seconds", 0.0)),
            after_execute=bool(spec.get("after_execute", False)),
            chats=_chats(spec.get("chats")),
        )
        if "for_seconds" in spec:  # a timed fault: matches every call until then
            fault.remaining = 10**9
            fault.until = time.monotonic() + float(spec["for_seconds"])
        if kind in (FaultKind.STALL, FaultKind.LATE) and fault.seconds <= 0:
            raise ValueError(f"a {kind.value} fault needs seconds > 0")
        return self.add(fault)

    def take(self, method: str, chat_id: int | None = None) -> Fault | None:
        """Consume one unit of the first fault matching ``method`` (to ``chat_id``); None when
        the call should pass."""
        now = time.monotonic()
        self._faults = [f for f in self._faults if f.until is None or now < f.until]
        for fault in self._faults:
            if fault.matches(method, chat_id):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def outage_covers(self, method: str) -> bool:
        """Whether a timed outage is on for ``method`` now (it also cuts calls already waiting)."""
        return any(f.until is not None and f.kind is FaultKind.DROP and f.matches(method) for f in self._faults)

    def clear(self) -> None:
        self._faults.clear()

    @property
    def pending(self) -> list[Fault]:
        return list(self._faults)
