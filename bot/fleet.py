"""The fleet as the bot tells it: each edge and its cameras in /status, and one message when an
edge stops checking in (and one when it is back), from the heartbeats edges write."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import datetime, timedelta
from html import escape

from telegram.ext import ContextTypes

from bot.camera_lines import camera_line
from bot.render import age, local_time
from bot.services import services
from storage import Store
from storage.models import Edge
from vision.pipeline import PipelineStatus

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
        lines.extend(camera_line(status, zones=zones, now=time.time()) for status, zones in _cameras(edge))
    return lines


def _cameras(edge: Edge) -> list[tuple[PipelineStatus, int]]:
    """The edge's cameras at its last beat, as the statuses /status shows, with their zone
    counts; fields this bot does not know (a newer edge's) are left out."""
    known = {f.name for f in dataclasses.fields(PipelineStatus)}
    cameras = []
    for state in edge.cameras:
        try:
            cameras.append((PipelineStatus(**{k: v for k, v in state.items() if k in known}),
                            int(state.get("zones") or 0)))
        except TypeError:  # an older edge's beat lacks a field: that camera is left out, not /status
            log.warning("edge %s: camera state of %r not understood", edge.name, state.get("camera"))
    return cameras


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
    """Tell every chat, once, of an edge gone silent, and once when it is back.

    Edges cannot check in while the database is away: for ``edge_quiet_after_s`` after this
    bot last failed to reach it, silence is not reported (every edge would look gone)."""
    svc = services(context)
    quiet_after = timedelta(seconds=svc.settings.edge_quiet_after_s)
    state = context.bot_data.setdefault("edge-watch", {"failed_at": None, "failing": False})
    judging = state["failed_at"] is None or time.monotonic() - state["failed_at"] >= quiet_after.total_seconds()
    try:
        gone, back = await asyncio.to_thread(svc.store.note_edge_changes, quiet_after,
                                             gone=gone_text if judging else None, back=back_text)
    except Exception as exc:  # the database is away: said once per outage, the job runs again
        if not state["failing"]:
            log.warning("edge watch: the database cannot be reached (%s); silent edges are judged "
                        "again %.0f s after it is back", type(exc).__name__, quiet_after.total_seconds())
        state.update(failed_at=time.monotonic(), failing=True)
        return
    state["failing"] = False
    for name in gone:
        log.warning("edge %s has not checked in for %.0f s", name, quiet_after.total_seconds())
    for name in back:
        log.info("edge %s is checking in again", name)
    if (gone or back) and svc.outbox:
        svc.outbox.wake()


def _span(seconds: float) -> str:
    """'45 s', '12 min', '3 h 5 min'."""
    return age(seconds).removesuffix(" ago").replace("just now", "0 s")
