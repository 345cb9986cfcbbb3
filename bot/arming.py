"""/arm and /disarm by selfie: a short conversation, or one photo captioned /arm."""

from __future__ import annotations

import asyncio
import logging

from telegram import Message, Update
from telegram.ext import (
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.access import members_only
from bot.services import services

log = logging.getLogger(__name__)

WAITING_SELFIE = 1
SELFIE_TIMEOUT_S = 120
MAX_PHOTO_BYTES = 20 * 1024 * 1024  # what the Bot API lets a bot download

CAPTION_COMMAND = filters.CaptionRegex(r"^/(arm|disarm)(@\w+)?\s*$")


@members_only
async def ask_for_selfie(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    action = "arm" if update.effective_message.text.lstrip("/").startswith("arm") else "disarm"
    context.user_data["action"] = action
    await update.effective_message.reply_text(
        f"Send a selfie to {action} the system (or /cancel). Face the camera in good light."
    )
    return WAITING_SELFIE


@members_only
async def selfie_received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    message = update.effective_message
    action = context.user_data.pop("action", None)
    if action is None and message.caption:  # a photo captioned /arm or /disarm
        action = "arm" if message.caption.lstrip("/").startswith("arm") else "disarm"
    await judge(message, context, action or "arm")
    return ConversationHandler.END


async def judge(message: Message, context: ContextTypes.DEFAULT_TYPE, action: str) -> None:
    svc = services(context)
    user = message.from_user
    photo = message.photo[-1]  # the largest size Telegram made
    if photo.file_size and photo.file_size > MAX_PHOTO_BYTES:
        await message.reply_text("That photo is too large. Send a normal selfie.")
        return
    data = bytes(await (await photo.get_file()).download_as_bytearray())
    decision = await asyncio.to_thread(
        svc.gate.attempt, user.id, action, data, forwarded=message.forward_origin is not None
    )
    await message.reply_text(decision.reply)
    if decision.success:
        await _tell_others(context, user.id, f"{_name(message)} {action}ed the system by selfie.")
    if decision.locked_now:
        await _tell_admins(
            context, f"⚠️ {_name(message)} ({user.id}) is locked out of arm/disarm after "
                     "repeated failed selfies."
        )


@members_only
async def not_a_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    message = update.effective_message
    if message.document is not None:
        hint = "Send the selfie as a photo, not as a file."
    else:
        hint = "I need a selfie photo."
    await message.reply_text(f"{hint} Or /cancel.")
    return WAITING_SELFIE


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    context.user_data.pop("action", None)
    await update.effective_message.reply_text("Cancelled.")
    return ConversationHandler.END


async def timed_out(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    context.user_data.pop("action", None)
    if update.effective_message is not None:
        await update.effective_message.reply_text("No selfie received; cancelled. Send /arm or /disarm again.")


async def _tell_admins(context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    svc = services(context)
    admins = await asyncio.to_thread(svc.access.admin_chat_ids)
    await asyncio.to_thread(svc.store.queue_text, admins, text)
    if svc.outbox:
        svc.outbox.wake()


async def _tell_others(context: ContextTypes.DEFAULT_TYPE, actor: int, text: str) -> None:
    svc = services(context)
    chats = [c for c in await asyncio.to_thread(svc.store.alert_chat_ids) if c != actor]
    await asyncio.to_thread(svc.store.queue_text, chats, text)
    if svc.outbox:
        svc.outbox.wake()


def _name(message: Message) -> str:
    from html import escape

    return escape(message.from_user.full_name if message.from_user else "someone")


def arming_handler() -> ConversationHandler:
    return ConversationHandler(
        entry_points=[
            CommandHandler(["arm", "disarm"], ask_for_selfie),
            MessageHandler(filters.PHOTO & CAPTION_COMMAND, selfie_received),
        ],
        states={
            WAITING_SELFIE: [
                MessageHandler(filters.PHOTO, selfie_received),
                MessageHandler(~filters.COMMAND, not_a_photo),
            ],
            ConversationHandler.TIMEOUT: [MessageHandler(filters.ALL, timed_out)],
        },
        fallbacks=[CommandHandler("cancel", cancel)],
        conversation_timeout=SELFIE_TIMEOUT_S,
        name="arming",
    )
