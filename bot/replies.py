"""The last handlers: whatever reached none of the others still gets an answer, so that
no operator thinks the bot is broken. Commands meant for other bots in a group are not
ours to answer."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.access import members_only

HINT = ("I did not understand that. Send /arm or /disarm (then a selfie), or just a selfie; "
        "/status shows the system, /help lists everything.")


@members_only
async def nothing_to_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text("Nothing to cancel.")


@members_only
async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text("Unknown command. /help lists what I can do.")


async def command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command no handler took: for another bot ('/help@other_bot') it is none of ours."""
    word = (update.effective_message.text or "").split(maxsplit=1)[0]
    addressee = word.partition("@")[2]
    if addressee and addressee.lower() != (context.bot.username or "").lower():
        return
    await unknown_command(update, context)


@members_only
async def hint(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_text(HINT)


async def unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.callback_query.answer("Unknown button.")


def conversation_fallbacks() -> list[BaseHandler]:  # type: ignore[type-arg]
    """After every other handler, in this order."""
    return [
        CommandHandler("cancel", nothing_to_cancel),
        CallbackQueryHandler(unknown_button),
        MessageHandler(filters.COMMAND & filters.UpdateType.MESSAGE, command),
        MessageHandler(filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE, hint),
    ]
