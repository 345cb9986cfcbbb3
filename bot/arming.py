"""/arm and /disarm by selfie: a short conversation, one photo captioned /arm, or a bare
selfie, after which the bot asks "Arm or disarm?" with two buttons. Selfies are taken in
private chats only: in a group every member would see the face."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from html import escape
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, PhotoSize, Update, User
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.access import Handler, members_only
from bot.render import local_time
from bot.services import services

log = logging.getLogger(__name__)

WAITING_SELFIE, CHOOSING = 1, 2
SELFIE_TIMEOUT_S = 120
MAX_PHOTO_BYTES = 20 * 1024 * 1024  # what the Bot API lets a bot download

# "/arm", "arm", "/arm please", "Disarm": people caption photos loosely.
_ACTION_WORD = re.compile(r"^\s*/?(arm|disarm)(@\w+)?\b", re.IGNORECASE)
CAPTION_COMMAND = filters.CaptionRegex(_ACTION_WORD)
PRIVATE = filters.ChatType.PRIVATE
PRIVATE_ONLY = "Selfies are accepted in private chats only: write to me directly, not in the group."
PICK = "pick"


def _action(text: str | None) -> str | None:
    match = _ACTION_WORD.match(text or "")
    return match.group(1).lower() if match else None


async def _locked_out(message: Message, context: ContextTypes.DEFAULT_TYPE, user_id: int) -> bool:
    until = await asyncio.to_thread(services(context).gate.locked_until, user_id)
    if until is not None:
        await message.reply_text(f"Arm/disarm is locked after repeated failed selfies until {local_time(until)}.")
    return until is not None


def private_only(handler: Handler) -> Handler:
    """End the conversation with a pointer to the private chat when used in a group."""
    @functools.wraps(handler)
    async def wrapper(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Any:
        if update.effective_chat.type != "private":
            await update.effective_message.reply_text(PRIVATE_ONLY)
            return ConversationHandler.END
        return await handler(update, context)

    return wrapper


@members_only
@private_only
async def ask_for_selfie(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    message = update.effective_message
    if await _locked_out(message, context, update.effective_user.id):
        return ConversationHandler.END
    action = _action(message.text) or "arm"
    context.user_data["action"] = action
    await message.reply_text(
        f"Send a selfie to {action} the system (or /cancel). Face the camera in good light."
    )
    return WAITING_SELFIE


@members_only
@private_only
async def selfie_received(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    message = update.effective_message
    action = context.user_data.pop("action", None) or _action(message.caption)
    if action is None:  # a bare selfie: ask what it is for, then use this photo
        context.user_data["photo"] = (message.photo[-1], message.forward_origin is not None)
        await message.reply_text("Arm or disarm?", reply_markup=InlineKeyboardMarkup([[
            InlineKeyboardButton("Arm", callback_data=f"{PICK}:arm"),
            InlineKeyboardButton("Disarm", callback_data=f"{PICK}:disarm")]]))
        return CHOOSING
    if await _locked_out(message, context, update.effective_user.id):
        return ConversationHandler.END
    await judge(message, update.effective_user, context, action, message.photo[-1],
                forwarded=message.forward_origin is not None)
    return ConversationHandler.END


@members_only
async def action_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    query = update.callback_query
    pending = context.user_data.pop("photo", None)
    action = query.data.partition(":")[2]
    if pending is None or action not in {"arm", "disarm"}:
        await query.answer("Expired: send the selfie again.")
        return ConversationHandler.END
    await query.answer()
    await query.edit_message_text(f"Arm or disarm? {action.capitalize()}.")
    if not await _locked_out(query.message, context, update.effective_user.id):
        await judge(query.message, update.effective_user, context, action, pending[0], forwarded=pending[1])
    return ConversationHandler.END


async def judge(reply_to: Message, user: User, context: ContextTypes.DEFAULT_TYPE, action: str,
                photo: PhotoSize, *, forwarded: bool) -> None:
    svc = services(context)
    if photo.file_size and photo.file_size > MAX_PHOTO_BYTES:
        await reply_to.reply_text("That photo is too large. Send a normal selfie.")
        return
    data = bytes(await (await photo.get_file()).download_as_bytearray())
    decision = await asyncio.to_thread(svc.gate.attempt, user.id, action, data, forwarded=forwarded)
    await reply_to.reply_text(decision.reply)
    name = escape(user.full_name)
    if decision.success:
        await _tell_others(context, user.id, f"{name} {action}ed the system by selfie.")
    if decision.locked_now:
        await _tell_admins(
            context, f"⚠️ {name} ({user.id}) is locked out of arm/disarm after repeated failed selfies."
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


@members_only
@private_only
async def document_with_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """A file captioned /disarm: ask for the same as a photo and wait for it."""
    message = update.effective_message
    context.user_data["action"] = _action(message.caption) or "arm"
    await message.reply_text("Send the selfie as a photo, not as a file. Or /cancel.")
    return WAITING_SELFIE


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    context.user_data.pop("action", None)
    context.user_data.pop("photo", None)
    await update.effective_message.reply_text("Cancelled.")
    return ConversationHandler.END


async def timed_out(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    context.user_data.pop("action", None)
    context.user_data.pop("photo", None)
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


def arming_handler() -> ConversationHandler:
    return ConversationHandler(
        entry_points=[
            CommandHandler(["arm", "disarm"], ask_for_selfie),
            MessageHandler(filters.PHOTO & CAPTION_COMMAND, selfie_received),
            MessageHandler(filters.PHOTO & PRIVATE, selfie_received),
            MessageHandler(filters.Document.ALL & CAPTION_COMMAND, document_with_command),
        ],
        states={
            WAITING_SELFIE: [
                MessageHandler(filters.PHOTO, selfie_received),
                MessageHandler(~filters.COMMAND, not_a_photo),
            ],
            CHOOSING: [
                CallbackQueryHandler(action_chosen, pattern=rf"^{PICK}:"),
                MessageHandler(filters.PHOTO, selfie_received),  # another selfie: ask again for it
            ],
            ConversationHandler.TIMEOUT: [MessageHandler(filters.ALL, timed_out)],
        },
        fallbacks=[CommandHandler("cancel", cancel)],
        conversation_timeout=SELFIE_TIMEOUT_S,
        name="arming",
    )
