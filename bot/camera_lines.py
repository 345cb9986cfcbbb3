"""How /status describes one camera: its state (live, ended, lost since ...), frame rate over
the last seconds, the age of its last frame, its fires in view, its snooze and zones."""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from bot.render import age
from vision.pipeline import PipelineStatus

_STATE_WORDS = {
    "starting": "starting, no frame yet",
    "live": "live",
    "stalled": "stalled since {since}",
    "lost": "lost since {since}",
    "ended": "ended at {since} (played to its end)",
    "failed": "failed at {since}",
    "stopped": "stopped",
}
# Frames flow, or should: the rate says how well (a lost source has none to measure).
_RATED = frozenset({"live", "stalled"})


def when(unix: float, now: float) -> str:
    """'14:03' today, '2026-11-30 14:03' before."""
    at = datetime.fromtimestamp(unix, timezone.utc).astimezone()
    today = datetime.fromtimestamp(now, timezone.utc).astimezone().date()
    return at.strftime("%H:%M:%S" if at.date() == today else "%Y-%m-%d %H:%M")


def camera_line(ps: PipelineStatus, *, zones: int = 0, snooze: str | None = None, now: float) -> str:
    """'📷 yard: live, 9.8 FPS, last frame just now, 1 fire in view, 1200 frames'; ``snooze``
    (the camera's snooze, already rendered) goes on a line of its own under it."""
    state = _STATE_WORDS[ps.state].format(since=when(ps.since, now) if ps.since is not None else "?")
    if ps.state == "live" and ps.health != "ok":
        state += f" but {'frozen (identical frames)' if ps.health == 'frozen' else 'black (lens covered?)'}"
    parts = [state]
    if ps.state in _RATED:
        parts.append(f"{ps.fps:.1f} FPS")
    if ps.last_frame is not None:
        parts.append(f"last frame {age(max(0.0, now - ps.last_frame))}")
    if ps.open_alerts:
        parts.append(f"{ps.open_alerts} fire{'s' if ps.open_alerts > 1 else ''} in view")
    parts.append(f"{ps.frames} frames")
    if zones:
        parts.append(f"{zones} ignore zone{'s' if zones > 1 else ''}")
    line = f"📷 {escape(ps.camera)}: {', '.join(parts)}"
    if ps.state == "failed" and ps.error:
        line += f"\n   {escape(ps.error)}"
    return line + (f"\n{snooze}" if snooze else "")
