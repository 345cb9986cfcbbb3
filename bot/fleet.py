"""The fleet as the bot tells it: each edge and its cameras in /status, and one message when an
edge stops checking in (and one when it is back), from the heartbeats edges write."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from html import escape

from telegram.ext import ContextTypes

from bot.render import age, local_time
from bot.services import services
from storage import Store
from storage.models import Edge

log = logging.getLogger(__name__)


def edge_lines(store: Store, quiet_after_s: float) -> list[str]:
    """'🛰 site-a: checked in 3 s ago' and a line per camera under it, for each edge."""
    now, edges = store.edges()
    lines = []
    for edge in edges:
        silent = (now - edge.last_seen).total_seconds()
        if silent >= quiet_after_s:
            lines.append(f"🛰⚠️ <b>{escape(edge.name)}</b>: not checked in for {_span(silent)} "
                         f"(last at {local_time(edge.last_seen)})")
        else:
            lines.append(f"🛰 <b>{escape(edge.name)}</b>: checked in {age(silent)}")
        lines.extend(_camera_line(state) for state in edge.cameras)
    return lines


def _camera_line(state: dict) -> str:
    """'📷 site-a/kitchen: ok, 9.8 FPS, 1200 frames, 1 fire in view', from the edge's last beat
    (its ``PipelineStatus`` fields)."""
    fires = int(state.get("open_alerts") or 0)
    zones = int(state.get("zones") or 0)
    return (f"📷 {escape(str(state.get('camera')))}: {escape(str(state.get('state') or state.get('health')))}"
            f"{'' if state.get('running') else ' (stopped)'}, {float(state.get('fps') or 0):.1f} FPS, "
            f"{int(state.get('frames') or 0)} frames, {fires} fire{'' if fires == 1 else 's'} in view"
            + (f", {zones} ignore zone{'' if zones == 1 else 's'}" if zones else ""))


def gone_text(edge: Edge, now: datetime) -> str:
    cameras = ", ".join(str(state.get("camera")) for state in edge.cameras) or "no camera"
    return (f"🛰⚠️ Edge <b>{escape(edge.name)}</b> has not checked in for "
            f"{_span((now - edge.last_seen).total_seconds())} (last at {local_time(edge.last_seen)}): "
            f"its cameras ({escape(cameras)}) may not be watched.")


def back_text(edge: Edge, now: datetime) -> str:
    down = (edge.last_seen - edge.quiet_since).total_seconds() if edge.quiet_since else 0.0
    return (f"🛰✅ Edge <b>{escape(edge.name)}</b> is checking in again"
            + (f" (reported silent {_span(down)} ago)" if down > 0 else "") + ".")


async def watch_edges(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Tell every chat, once, of an edge gone silent, and once when it is back."""
    svc = services(context)
    quiet_after = timedelta(seconds=svc.settings.edge_quiet_after_s)
    gone, back = await asyncio.to_thread(svc.store.note_edge_changes, quiet_after,
                                         gone=gone_text, back=back_text)
    for name in gone:
        log.warning("edge %s has not checked in for %.0f s", name, quiet_after.total_seconds())
    for name in back:
        log.info("edge %s is checking in again", name)
    if (gone or back) and svc.outbox:
        svc.outbox.wake()


def _span(seconds: float) -> str:
    """'45 s', '12 min', '3 h 5 min'."""
    return age(seconds).removesuffix(" ago").replace("just now", "0 s")
