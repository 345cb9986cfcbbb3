"""HTTP control API under ``/_control/``: the test acting as users, reading what the bot did,
and scripting faults, for tests whose server runs in another process.

Answers are ``{"ok": true, "result": ...}``; errors ``{"ok": false, "description": ...}`` with
400 (bad request), 404 (unknown user/chat/message/file) or 408 (a wait timed out).
Listing endpoints accept ``min_count`` and ``timeout`` to wait server-side for enough items.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .faults import FaultPlan

if TYPE_CHECKING:
    from .world import World


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _fail(status: int, description: str) -> web.Response:
    return web.json_response({"ok": False, "description": description}, status=status)


async def _wait_list(world: World, request: web.Request, items: Callable[[], list[Any]]) -> web.Response:
    """Answer ``items()`` once it has ``min_count`` entries, or 408 after ``timeout`` seconds."""
    min_count = int(request.query.get("min_count", 0))
    deadline = time.monotonic() + float(request.query.get("timeout", 0))
    while True:
        result = items()
        if len(result) >= min_count:
            return _ok(result)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or world.closing:
            return web.json_response(
                {"ok": False, "description": f"only {len(result)} of {min_count} items", "result": result}, status=408
            )
        await world.wait_changed(remaining)


class ControlApi:
    def __init__(self, world: World, faults: FaultPlan) -> None:
        self.world = world
        self.faults = faults

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_control/health", self.health),
            web.post("/_control/users", self.add_user),
            web.post("/_control/users/{user_id}/blocked", self.set_blocked),
            web.post("/_control/groups", self.add_group),
            web.post("/_control/send_text", self.send_text),
            web.post("/_control/send_photo", self.send_photo),
            web.post("/_control/send_document", self.send_document),
            web.post("/_control/send_sticker", self.send_sticker),
            web.post("/_control/send_video", self.send_video),
            web.post("/_control/press_button", self.press_button),
            web.get("/_control/sent", self.sent),
            web.get("/_control/messages/{chat_id}/{message_id}", self.message),
            web.get("/_control/files/{file_id}", self.file),
            web.get("/_control/calls", self.calls),
            web.get("/_control/callback_answers", self.callback_answers),
            web.get("/_control/commands", self.commands),
            web.get("/_control/updates", self.updates),
            web.get("/_control/faults", self.list_faults),
            web.post("/_control/faults", self.add_fault),
            web.delete("/_control/faults", self.clear_faults),
        ]

    @web.middleware
    async def errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Turn lookup and argument mistakes of the test into readable 4xx answers."""
        if not request.path.startswith("/_control/"):
            return await handler(request)
        try:
            return await handler(request)
        except KeyError as exc:
            return _fail(404, f"not found: {exc}")
        except LookupError as exc:
            return _fail(404, str(exc))
        except (ValueError, TypeError) as exc:
            return _fail(400, str(exc))

    async def health(self, request: web.Request) -> web.Response:
        return _ok({"bot": self.world.bot.to_api()})

    async def add_user(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self.world.add_user(
            first_name=body["first_name"],
            username=body.get("username"),
            user_id=body.get("user_id"),
            last_name=body.get("last_name"),
            language_code=body.get("language_code", "en"),
        )
        return _ok(user.to_api())

    async def set_blocked(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.world.set_blocked(int(request.match_info["user_id"]), bool(body.get("blocked", True)))
        return _ok(True)

    async def add_group(self, request: web.Request) -> web.Response:
        body = await request.json()
        chat = self.world.add_group(body["title"], body.get("type", "group"), body.get("chat_id"))
        return _ok(chat.to_api())

    def _user_message_result(self, message: Any) -> web.Response:
        return _ok(message.to_control())

    async def send_text(self, request: web.Request) -> web.Response:
        body = await request.json()
        message = self.world.send_text(int(body["user_id"]), body["text"], body.get("chat_id"))
        return self._user_message_result(message)

    async def send_photo(self, request: web.Request) -> web.Response:
        body = await request.json()
        message = self.world.send_photo(
            int(body["user_id"]),
            base64.b64decode(body["data_b64"]),
            chat=body.get("chat_id"),
            caption=body.get("caption"),
            forward_origin=body.get("forward_origin"),
        )
        return self._user_message_result(message)

    async def send_document(self, request: web.Request) -> web.Response:
        body = await request.json()
        message = self.world.send_document(
            int(body["user_id"]),
            base64.b64decode(body["data_b64"]),
            file_name=body["file_name"],
            mime_type=body.get("mime_type", "application/octet-stream"),
            chat=body.get("chat_id"),
            caption=body.get("caption"),
        )
        return self._user_message_result(message)

    async def send_sticker(self, request: web.Request) -> web.Response:
        body = await request.json()
        message = self.world.send_sticker(
            int(body["user_id"]), base64.b64decode(body["data_b64"]), chat=body.get("chat_id"), emoji=body.get("emoji", "🔥")
        )
        return self._user_message_result(message)

    async def send_video(self, request: web.Request) -> web.Response:
        body = await request.json()
        message = self.world.send_video(
            int(body["user_id"]),
            base64.b64decode(body["data_b64"]),
            width=int(body.get("width", 640)),
            height=int(body.get("height", 480)),
            duration=int(body.get("duration", 1)),
            chat=body.get("chat_id"),
            caption=body.get("caption"),
        )
        return self._user_message_result(message)

    async def press_button(self, request: web.Request) -> web.Response:
        body = await request.json()
        message = self.world.message(int(body["chat_id"]), int(body["message_id"]))
        query_id = self.world.press_button(
            int(body["user_id"]), message, callback_data=body.get("callback_data"), text=body.get("text")
        )
        return _ok({"callback_query_id": query_id})

    async def sent(self, request: web.Request) -> web.Response:
        chat_id = int(request.query["chat_id"]) if "chat_id" in request.query else None
        include_deleted = request.query.get("include_deleted", "0") in ("1", "true")
        return await _wait_list(
            self.world,
            request,
            lambda: [m.to_control() for m in self.world.sent_messages(chat_id, include_deleted=include_deleted)],
        )

    async def message(self, request: web.Request) -> web.Response:
        message = self.world.message(int(request.match_info["chat_id"]), int(request.match_info["message_id"]))
        return _ok(message.to_control())

    async def file(self, request: web.Request) -> web.Response:
        stored = self.world.files[request.match_info["file_id"]]
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

    async def calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        return await _wait_list(self.world, request, lambda: [c.to_json() for c in self.world.calls_to(method)])

    async def callback_answers(self, request: web.Request) -> web.Response:
        return await _wait_list(self.world, request, lambda: [a.to_json() for a in self.world.callback_answers])

    async def commands(self, request: web.Request) -> web.Response:
        return _ok([{"key": key, "commands": commands} for key, commands in self.world.commands.items()])

    async def updates(self, request: web.Request) -> web.Response:
        """Updates not yet confirmed by the bot (an empty list means it consumed everything)."""
        return _ok(list(self.world.updates))

    async def list_faults(self, request: web.Request) -> web.Response:
        return _ok([f.to_json() for f in self.faults.pending])

    async def add_fault(self, request: web.Request) -> web.Response:
        fault = self.faults.add_json(await request.json())
        return _ok(fault.to_json())

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return _ok(True)
