"""Scheduled jobs on PTB's JobQueue: heartbeat, automatic re-arm, daily summary, retention, and
the watch on a fleet's edges."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from datetime import time as dtime
from html import escape
from pathlib import Path

from telegram.ext import Application, ContextTypes

from bot.alerts import AlertRecorder, watching
from bot.fleet import watch_edges
from bot.render import local_time
from bot.services import Services, services
from bot.snooze import expire_snoozes
from vision.annotate import raw_frame_path

log = logging.getLogger(__name__)


def _wake(svc: Services) -> None:
    if svc.outbox:
        svc.outbox.wake()


async def heartbeat(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Notice a pipeline that stopped producing frames (a hung thread, a dead source)."""
    svc = services(context)
    for pipeline in list(svc.pipelines.values()):
        await _check_pipeline(svc, context, pipeline.status())


async def _check_pipeline(svc: Services, context: ContextTypes.DEFAULT_TYPE, status) -> None:  # type: ignore[no-untyped-def]
    # Per camera: each pipeline stalls, and recovers, on its own.
    state = context.bot_data.setdefault("heartbeat", {}).setdefault(
        status.camera, {"frames": -1, "since": time.monotonic(), "warned": False})
    frames = status.frames
    if not status.running and status.error is None and frames > 0:
        return  # a video file or image folder that played to its end is done, not stalled
    if frames != state["frames"]:
        if state["warned"]:
            log.warning("pipeline %s producing frames again", status.camera)
        state.update(frames=frames, since=time.monotonic(), warned=False)
        return
    stalled = time.monotonic() - state["since"]
    if stalled >= svc.settings.stall_after_s and not state["warned"]:
        state["warned"] = True
        log.error("pipeline %s stalled: no frame for %.0f s", status.camera, stalled)
        admins = await asyncio.to_thread(svc.access.admin_chat_ids)
        reason = f" It stopped: {status.error}" if status.error else ""
        await asyncio.to_thread(svc.store.queue_text, admins,
                                f"⚠️ Camera {escape(status.camera)}: its pipeline has produced no frame for {stalled:.0f} s.{reason}")
        _wake(svc)


async def auto_rearm(context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    state = await asyncio.to_thread(svc.store.arm_state)
    if state.armed or state.rearm_at is None or state.rearm_at > datetime.now(timezone.utc):
        return
    await asyncio.to_thread(svc.store.set_armed, True, user_id=None, method="auto",
                            detail=f"re-armed {svc.settings.rearm_after_h:g} h after disarm")
    chats = await asyncio.to_thread(svc.store.alert_chat_ids)
    await asyncio.to_thread(svc.store.queue_text, chats,
                            f"🟢 Re-armed automatically ({svc.settings.rearm_after_h:g} h after the disarm).")
    log.info("system re-armed automatically")
    _wake(svc)


async def daily_summary(context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    since = datetime.now(timezone.utc) - timedelta(days=1)
    alerts, total = await asyncio.to_thread(svc.store.recent_alerts, limit=1000, since=since)
    fires = sum(a.class_name == "fire" for a in alerts)
    false_alarms = sum(a.status.value == "false-alarm" for a in alerts)
    state = await asyncio.to_thread(svc.store.arm_state)
    text = (f"📋 Last 24 h: {total} alerts ({fires} fire, {total - fires} smoke), "
            f"{false_alarms} marked false alarms. System {'armed' if state.armed else 'disarmed'}.")
    admins = await asyncio.to_thread(svc.access.admin_chat_ids)
    await asyncio.to_thread(svc.store.queue_text, admins, text)
    _wake(svc)


async def retention(context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    cutoff = datetime.now(timezone.utc) - timedelta(days=svc.settings.retention_days)
    removed, paths = await asyncio.to_thread(svc.store.purge_before, cutoff)
    for path in paths:
        Path(path).unlink(missing_ok=True)
        raw_frame_path(Path(path)).unlink(missing_ok=True)
    if removed:
        log.info("retention: removed %d alerts older than %s", removed, local_time(cutoff))


def schedule_jobs(app: Application) -> None:
    svc: Services = app.bot_data["services"]
    jq = app.job_queue
    assert jq is not None, "python-telegram-bot[job-queue] is required"
    jq.run_repeating(heartbeat, interval=10, first=10, name="heartbeat")
    jq.run_repeating(auto_rearm, interval=30, first=1, name="auto-rearm")
    jq.run_daily(daily_summary, time=dtime(hour=svc.settings.summary_hour).replace(
        tzinfo=datetime.now().astimezone().tzinfo), name="daily-summary")
    jq.run_repeating(retention, interval=6 * 3600, first=60, name="retention")
    jq.run_repeating(expire_snoozes, interval=15, first=5, name="snooze-ends")
    jq.run_repeating(clear_carried, interval=2, first=2, name="carried-alerts")
    # Edges check in every few seconds; a quarter of the silence that is reported is often enough.
    jq.run_repeating(watch_edges, interval=max(1.0, svc.settings.edge_quiet_after_s / 4), first=5,
                     name="edge-watch")


async def clear_carried(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Alerts carried over a restart and not seen again are cleared once their camera has looked."""
    svc = services(context)
    recorder: AlertRecorder = context.bot_data["recorder"]
    statuses = [p.status() for p in svc.pipelines.values()]
    if await asyncio.to_thread(recorder.expire_carried, watching(statuses)):
        _wake(svc)
