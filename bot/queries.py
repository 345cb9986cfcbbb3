"""Read-only commands: /status, /history, /alert, /snapshot, /help."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from html import escape

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from bot.access import members_only
from bot.fleet import edge_lines
from bot.camera_lines import camera_line
from bot.periods import parse_period
from bot.outbox import caption_of, display_name, keyboard_of
from bot.render import age, local_time
from bot.services import services
from bot.snooze import status_lines
from bot.strangers import introduce
from vision.annotate import encode_jpeg

PAGE = 5
MAX_HISTORY = 200

COMMANDS = [
    BotCommand("status", "Armed state, camera health, last alert"),
    BotCommand("arm", "Arm the system (needs a selfie)"),
    BotCommand("disarm", "Disarm the system (needs a selfie)"),
    BotCommand("history", "Recent alerts: /history [N|24h|7d] [fire|smoke]"),
    BotCommand("alert", "One alert with its snapshot: /alert ID"),
    BotCommand("snapshot", "A fresh annotated frame: /snapshot [camera]"),
    BotCommand("zones", "Ignore zones of each camera, with buttons to remove them"),
    BotCommand("help", "What I can do"),
    BotCommand("cancel", "Cancel the current question"),
    BotCommand("snooze", "Silence a camera for a while: /snooze [camera] [30m|2h]"),
    BotCommand("unsnooze", "End the snooze of every camera: /unsnooze [camera]"),
]

HELP = "\n".join(f"/{c.command} — {c.description}" for c in COMMANDS) + (
    "\n\nAdmins: /enroll USER_ID [NAME], then send that person's photo; /audit [N] lists arm/disarm attempts."
)


@members_only
async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text(HELP)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: the help for members; for anyone else, how to get access."""
    user = update.effective_user
    if user is not None and await asyncio.to_thread(services(context).access.is_member, user.id):
        await help_command(update, context)
    else:
        await introduce(update, context)


@members_only
async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    svc = services(context)
    state = await asyncio.to_thread(svc.store.arm_state)
    alerts, _ = await asyncio.to_thread(svc.store.recent_alerts, limit=1)
    lines = []
    if state.armed:
        lines.append("🟢 <b>Armed</b>")
    else:
        lines.append("🔕 <b>Disarmed</b>" + (f", re-arms at {local_time(state.rearm_at)}" if state.rearm_at else ""))
    if state.changed_by is not None:
        who = escape(await asyncio.to_thread(display_name, svc.store, state.changed_by))
        lines.append(f"Last change by {who} at {local_time(state.changed_at)}")
    snoozes = await status_lines(svc)
    now = time.time()
    for pipeline in svc.pipelines.values():
        lines.append(camera_line(pipeline.status(), zones=len(pipeline.zones.zones),
                                 snooze=snoozes.pop(pipeline.camera, None), now=now))
    fleet = await asyncio.to_thread(edge_lines, svc.store, svc.settings.edge_quiet_after_s)
    lines.extend(fleet)
    if not svc.pipelines and not fleet:
        lines.append("📷 no camera pipeline running")
    lines.extend(snoozes.values())  # cameras that do not run here
    lines.append(f"Model: {escape(svc.model_name or '-')}")
    if alerts:
        a = alerts[0]
        lines.append(f"Last alert: #{a.id} {escape(a.class_name)} on {escape(a.camera)} at "
                     f"{local_time(a.first_seen)} ({a.status.value})")
    else:
        lines.append("Last alert: none")
    lines.append(f"Uptime: {timedelta(seconds=int(time.monotonic() - svc.started))}")
    await update.effective_message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)



def parse_history_args(args: list[str]) -> tuple[int, timedelta | None, str | None]:
    """'/history [N | 24h | 7d] [fire|smoke]' -> (limit, period, class). ValueError if bad."""
    limit, period, class_name = MAX_HISTORY, None, None
    if len(args) > 2:
        raise ValueError("too many arguments")
    for arg in args:
        arg = arg.strip().lower()
        if arg in {"fire", "smoke"}:
            class_name = arg
        elif arg.isdigit() and arg.isascii():
            limit = int(arg)
            if not 1 <= limit <= MAX_HISTORY:
                raise ValueError(f"N must be between 1 and {MAX_HISTORY}")
        else:
            period = parse_period(arg)
    return limit, period, class_name


@members_only
async def history(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    try:
        limit, period, class_name = parse_history_args(context.args or [])
    except ValueError as exc:
        await update.effective_message.reply_text(
            f"{exc}. Usage: /history [N | 24h | 7d] [fire|smoke]")
        return
    spec = f"{limit}:{int(period.total_seconds()) if period else 0}:{class_name or ''}"
    text, markup = await _history_page(context, spec, 0)
    await update.effective_message.reply_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)


@members_only
async def history_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    try:
        _, offset, limit, seconds, class_name = query.data.split(":")
        spec = f"{int(limit)}:{int(seconds)}:{class_name if class_name in {'fire', 'smoke'} else ''}"
        text, markup = await _history_page(context, spec, max(0, int(offset)))
    except (ValueError, OverflowError):  # forged data: a period too long for a timedelta
        await query.answer("Unknown button.")
        return
    await query.answer()
    await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)


async def _history_page(context: ContextTypes.DEFAULT_TYPE, spec: str, offset: int):  # type: ignore[no-untyped-def]
    limit, seconds, class_name = spec.split(":")
    since = datetime.now(timezone.utc) - timedelta(seconds=int(seconds)) if int(seconds) else None
    page_size = min(PAGE, max(0, int(limit) - offset))
    alerts, total = await asyncio.to_thread(
        services(context).store.recent_alerts, limit=page_size, offset=offset, since=since,
        class_name=class_name or None,
    )
    total = min(total, int(limit))
    if not alerts:
        return "No alerts.", None
    lines = [f"Alerts {offset + 1}–{offset + len(alerts)} of {total}, newest first:"]
    for a in alerts:
        lines.append(
            f"#{a.id} {local_time(a.first_seen)} {escape(a.camera)}: {escape(a.kind)} {a.peak_confidence:.0%}"
            f" — {a.status.value}"
            + ("" if a.pushed else " (not pushed)")
        )
    buttons = []
    if offset > 0:
        buttons.append(InlineKeyboardButton("◀ Newer", callback_data=f"hist:{max(0, offset - PAGE)}:{spec}"))
    if offset + len(alerts) < total:
        buttons.append(InlineKeyboardButton("Older ▶", callback_data=f"hist:{offset + PAGE}:{spec}"))
    return "\n".join(lines), InlineKeyboardMarkup([buttons]) if buttons else None


@members_only
async def alert(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    args = context.args or []
    if len(args) != 1 or not args[0].isdigit() or not args[0].isascii() or len(args[0]) > 12:
        await update.effective_message.reply_text("Usage: /alert ID (a number, see /history).")
        return
    svc = services(context)
    found = await asyncio.to_thread(svc.store.get_alert, int(args[0]))
    if found is None:
        await update.effective_message.reply_text(f"No alert #{int(args[0])}.")
        return
    caption = await asyncio.to_thread(caption_of, svc.store, found)
    if found.verification and found.verification.get("reason"):
        caption += f"\nWhy: {escape(found.verification['reason'])}"
    keyboard = await asyncio.to_thread(keyboard_of, svc.store, found)
    photo = await asyncio.to_thread(svc.store.read_snapshot, found.snapshot_path)
    if photo is not None:
        await update.effective_message.reply_photo(
            photo, caption=caption, parse_mode=ParseMode.HTML, reply_markup=keyboard)
    else:
        await update.effective_message.reply_text(
            caption + "\n(snapshot no longer available)", parse_mode=ParseMode.HTML)


@members_only
async def snapshot(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/snapshot [camera]: the camera's latest frame with its boxes and ignore zones; without a
    name, the only camera, or every camera in turn."""
    svc = services(context)
    name = " ".join(context.args or []).strip()
    if name and name not in svc.pipelines:
        known = ", ".join(svc.pipelines) or "none"
        await update.effective_message.reply_text(f"No camera {name!r}. Cameras: {known}.")
        return
    cameras = [svc.pipelines[name]] if name else list(svc.pipelines.values())
    if not cameras:
        await update.effective_message.reply_text("No camera pipeline running.")
    for pipeline in cameras:
        shot = await asyncio.to_thread(pipeline.zoned_snapshot)
        if shot is None:
            await update.effective_message.reply_text(f"No frame from {pipeline.camera} yet.")
            continue
        jpeg = await asyncio.to_thread(encode_jpeg, shot.image)
        taken = datetime.fromtimestamp(shot.wall, timezone.utc)
        await update.effective_message.reply_photo(
            jpeg, caption=f"{pipeline.camera} at {local_time(taken)} ({age(time.time() - shot.wall)})")


def query_handlers() -> list:  # type: ignore[type-arg]
    return [
        CommandHandler("help", help_command),
        CommandHandler("start", start),
        CommandHandler("status", status),
        CommandHandler("history", history),
        CommandHandler("alert", alert),
        CommandHandler("snapshot", snapshot),
        CallbackQueryHandler(history_page, pattern=r"^hist:"),
    ]
