"""/audit [N]: the last arm/disarm attempts for admins (who, when, how, result, distance)."""

from __future__ import annotations

import asyncio
from html import escape

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import CommandHandler, ContextTypes

from bot.access import admins_only
from bot.outbox import display_name
from bot.render import local_time
from bot.services import services
from storage.models import ArmAudit

DEFAULT_ROWS, MAX_ROWS = 10, 50


def audit_line(entry: ArmAudit, name: str) -> str:
    """'2026-12-01 00:12:03 UTC Barack disarm by selfie: ✅ (distance 0.41)'."""
    result = "✅" if entry.success else f"❌ {escape(entry.detail)}"
    distance = f" (distance {entry.face_distance:.2f})" if entry.face_distance is not None else ""
    return f"{local_time(entry.at)} {escape(name)} {entry.action} by {entry.method}: {result}{distance}"


@admins_only
async def audit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    args = context.args or []
    if len(args) > 1 or (args and not (args[0].isascii() and args[0].isdigit() and 1 <= int(args[0]) <= MAX_ROWS)):
        await update.effective_message.reply_text(f"Usage: /audit [N], N from 1 to {MAX_ROWS}.")
        return
    svc = services(context)
    entries = await asyncio.to_thread(svc.store.audit_log, int(args[0]) if args else DEFAULT_ROWS)
    if not entries:
        await update.effective_message.reply_text("No arm/disarm attempts yet.")
        return
    lines = [f"Last {len(entries)} arm/disarm attempts, newest first:"]
    for entry in entries:
        who = "system" if entry.telegram_user_id is None else await asyncio.to_thread(
            display_name, svc.store, entry.telegram_user_id)
        lines.append(audit_line(entry, who))
    await update.effective_message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)


def audit_handlers() -> list:  # type: ignore[type-arg]
    return [CommandHandler("audit", audit)]
