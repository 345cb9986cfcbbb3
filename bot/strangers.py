"""What someone who is not (yet) an operator learns from /start: who they are to the
admins, and the exact command that gives them access. Admins hear that someone asked, at
most once per person per day."""

from __future__ import annotations

import asyncio
import logging
import shlex
from datetime import date
from html import escape

from telegram import Update
from telegram.constants import ChatType, ParseMode
from telegram.ext import ContextTypes

from bot.services import services

log = logging.getLogger(__name__)


def access_hint(user_id: int, name: str) -> str:
    return (
        f"Not authorised. To get access, send this to an admin:\n"
        f"your Telegram user id is <code>{user_id}</code> ({escape(name)}).\n"
        f"An admin runs <code>firewatch operators add --user-id {user_id} --name {escape(shlex.quote(name))}</code> "
        f"or sends me <code>/enroll {user_id} {escape(name)}</code> with your photo."
    )


async def introduce(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start from someone unknown, in private (in groups the guard stays silent)."""
    user = update.effective_user
    if update.effective_chat.type != ChatType.PRIVATE:
        return
    await update.effective_message.reply_text(access_hint(user.id, user.full_name), parse_mode=ParseMode.HTML)
    asked: dict[int, date] = context.bot_data.setdefault("access_asked", {})
    if asked.get(user.id) == date.today():
        return
    asked[user.id] = date.today()
    svc = services(context)
    admins = await asyncio.to_thread(svc.access.admin_chat_ids)
    await asyncio.to_thread(
        svc.store.queue_text, admins,
        f"👤 {escape(user.full_name)} (id <code>{user.id}</code>) asked for access. "
        f"<code>/enroll {user.id} {escape(user.first_name)}</code> and their photo gives it.")
    log.info("user %d asked for access", user.id)
    if svc.outbox:
        svc.outbox.wake()
