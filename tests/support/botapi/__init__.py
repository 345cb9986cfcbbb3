"""Fake Telegram Bot API server for the bot's end-to-end and fault-injection tests.

In-process (the test acts as users and reads what the bot did)::

    async with BotApiServer(token=TOKEN) as srv:
        alice = srv.add_user("Alice", "alice")
        # point the bot at srv.base_url / srv.base_file_url, start it, then:
        srv.send_text(alice, "/start")
        [menu] = await srv.wait_for(lambda s: s.sent_messages(alice), timeout=10)
        srv.press_button(alice, menu, text="Arm")
        srv.faults.rate_limit(1, retry_after=3, methods="sendPhoto")

From another process: ``with StandaloneServer(TOKEN) as server:`` and ``server.control``
(a :class:`ControlClient` over the ``/_control/`` HTTP endpoints).
"""

from .client import ControlClient, StandaloneServer
from .faults import Fault, FaultKind, FaultPlan
from .server import BotApiServer
from .world import ApiCall, CallbackAnswer, Chat, Message, StoredFile, User

__all__ = [
    "ApiCall",
    "BotApiServer",
    "CallbackAnswer",
    "Chat",
    "ControlClient",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "Message",
    "StandaloneServer",
    "StoredFile",
    "User",
]
