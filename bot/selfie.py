"""Deciding an arm/disarm request from a selfie — no Telegram here, so it is testable alone.

The face must match one of the *sender's own* templates. Every attempt is audited with
its distance; repeated failures lock the user out for a while, and the same photo cannot
be used twice (a replayed or forwarded picture is not a live selfie).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from bot.render import local_time
from storage import Store
from vision.faces import FaceEncoder, FaceStatus, best_match, encoding_from_bytes, photo_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockoutPolicy:
    failures: int = 5
    window: timedelta = timedelta(minutes=10)
    duration: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Decision:
    success: bool
    reply: str
    distance: float | None = None
    locked_now: bool = False  # this failure started a lockout: tell the admins


class SelfieGate:
    def __init__(self, store: Store, encoder: FaceEncoder, *, threshold: float = 0.5,
                 rearm_after: timedelta = timedelta(hours=8),
                 lockout: LockoutPolicy = LockoutPolicy()) -> None:
        self.store = store
        self.encoder = encoder
        self.threshold = threshold
        self.rearm_after = rearm_after
        self.lockout = lockout

    def locked_until(self, user_id: int, now: datetime | None = None) -> datetime | None:
        """End of the user's lockout, if one is running.

        A lockout starts at the failure that completes ``failures`` failures within
        ``window``, and lasts ``duration`` from then.
        """
        now = now or datetime.now(timezone.utc)
        since = now - self.lockout.window - self.lockout.duration
        times = self.store.failed_attempt_times(user_id, since)
        n = self.lockout.failures
        for i in range(n - 1, len(times)):
            if times[i] - times[i - n + 1] <= self.lockout.window:
                until = times[i] + self.lockout.duration
                if until > now:
                    return until
        return None

    def attempt(self, user_id: int, action: str, photo: bytes, *, forwarded: bool = False) -> Decision:
        """Judge one selfie for ``action`` ('arm' or 'disarm') and apply it if it matches."""
        if action not in {"arm", "disarm"}:
            raise ValueError(f"unknown action {action!r}")
        until = self.locked_until(user_id)
        if until is not None:
            self.store.audit_failure(user_id=user_id, action=action, method="lockout",
                                     detail="refused: locked out")
            return Decision(False, f"Too many failed attempts. Try again after {local_time(until)}.")

        templates = self.store.face_templates(user_id)
        if not templates:
            return self._fail(user_id, action, "not enrolled",
                              "You have no enrolled face yet: ask an admin to enrol you.")
        if forwarded:
            return self._fail(user_id, action, "forwarded photo",
                              "Forwarded photos are not accepted: take a selfie now.")
        digest = photo_hash(photo)
        if self.store.photo_seen(digest):
            return self._fail(user_id, action, "photo already used",
                              "This photo was already used. Take a new selfie.", photo_hash=digest)

        result = self.encoder.encode(photo)
        if result.status is not FaceStatus.OK or result.encoding is None:
            return self._fail(user_id, action, result.status.value, result.message, photo_hash=digest)

        match = best_match(np.stack([encoding_from_bytes(t) for t in templates]), result.encoding,
                           threshold=self.threshold)
        distance = match.distance
        if not match.accepted:
            return self._fail(user_id, action, "face does not match",
                              "Your face does not match your enrolment. Try again in good light.",
                              distance=distance, photo_hash=digest)

        armed = action == "arm"
        now = datetime.now(timezone.utc)
        rearm_at = None if armed else now + self.rearm_after
        self.store.set_armed(armed, user_id=user_id, method="selfie", rearm_at=rearm_at,
                             face_distance=distance, photo_hash=digest)
        log.info("user %d %sed the system (distance %.3f)", user_id, action, distance)
        if armed:
            return Decision(True, "✅ Armed. Alerts will be pushed.", distance)
        return Decision(
            True,
            f"🔕 Disarmed. Alerts are recorded but not pushed. "
            f"I will re-arm automatically at {local_time(rearm_at)}.",  # type: ignore[arg-type]
            distance,
        )

    def _fail(self, user_id: int, action: str, detail: str, reply: str, *,
              distance: float | None = None, photo_hash: str | None = None) -> Decision:
        self.store.audit_failure(user_id=user_id, action=action, method="selfie", detail=detail,
                                 face_distance=distance, photo_hash=photo_hash)
        log.info("user %d failed to %s: %s", user_id, action, detail)
        locked = self.locked_until(user_id)
        if locked is not None:
            reply += f"\nToo many failed attempts: arm/disarm is locked until {local_time(locked)}."
        return Decision(False, reply, distance, locked_now=locked is not None)
