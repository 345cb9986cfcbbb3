"""Who may use the bot: admins (from configuration or the admin role) and active operators.

Anyone else gets one short reply and learns nothing: no state, no history, no hint of
what exists. Members are answered in private and in the configured alert chats only.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.services import services
from storage import Store
from storage.models import Role

log = logging.getLogger(__name__)

NOT_AUTHORISED = "Not authorised."

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[Any]]


class Access:
    def __init__(self, store: Store, admin_ids: list[int]) -> None:
        self.store = store
        self.admin_ids = set(admin_ids)

    def is_admin(self, user_id: int) -> bool:
        if user_id in self.admin_ids:
            return True
        op = self.store.get_operator(user_id)
        return op is not None and op.role is Role.ADMIN

    def is_member(self, user_id: int) -> bool:
        return user_id in self.admin_ids or self.store.get_operator(user_id) is not None

    def is_alert_chat(self, chat_id: int) -> bool:
        return chat_id in self.store.alert_chat_ids()

    def admin_chat_ids(self) -> list[int]:
        ids = set(self.admin_ids)
        ids.update(op.telegram_user_id for op in self.store.list_operators() if op.role is Role.ADMIN)
        return sorted(ids)


def _guard(check: Callable[[Access, int], bool]) -> Callable[[Handler], Handler]:
    def decorator(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Any:
            access = services(context).access
            user = update.effective_user
            chat = update.effective_chat
            # In a group that is not an alert chat the bot says nothing at all: a member there
            # would show its members the system's state, and a refusal is noise to the others.
            if chat is not None and chat.type != ChatType.PRIVATE and not await asyncio.to_thread(
                    access.is_alert_chat, chat.id):
                log.info("ignored %s from user %s in chat %s: not an alert chat", handler.__name__,
                         user.id if user else None, chat.id)
                return None
            if user is None or not await asyncio.to_thread(check, access, user.id):
                log.info("refused %s from user %s", handler.__name__, user.id if user else None)
                await refuse(update)
                return None
            return await handler(update, context)

        return wrapper

    return decorator


members_only = _guard(Access.is_member)
admins_only = _guard(Access.is_admin)


async def refuse(update: Update) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer(NOT_AUTHORISED)
    elif update.effective_message is not None:
        await update.effective_message.reply_text(NOT_AUTHORISED)
