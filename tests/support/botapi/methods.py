"""Bot API methods of the fake server: request parameters in, result JSON out, errors as ApiError.

Error texts are Telegram's own, so the bot's error handling meets what it will meet in production.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .html_text import EntityParseError, parse_html
from .world import CallbackAnswer, Chat, Message, StoredFile, World, document_json, now, video_info, video_json

_MAX_TEXT = 4096
_MAX_CAPTION = 1024
_MAX_CALLBACK_DATA = 64
_CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            data["parameters"] = {"retry_after": self.retry_after}
        return data


def bad_request(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}")


@dataclass
class Upload:
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Params:
    """Request parameters: form/query strings (JSON-encoded when not strings, as PTB sends them)
    or already-typed values from a JSON body, plus uploaded files by multipart field name."""

    values: dict[str, Any]
    files: dict[str, Upload]

    def has(self, name: str) -> bool:
        return name in self.values or name in self.files

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name, default)
        return value if value is None or isinstance(value, str) else json.dumps(value)

    def json(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def int(self, name: str, default: int | None = None) -> int | None:
        value = self.json(name)
        if value is None:
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def bool(self, name: str) -> bool:
        return bool(self.json(name, False))

    def require(self, name: str) -> Any:
        if not self.has(name):
            raise bad_request(f"{name} is required" if name != "chat_id" else "chat_id is empty")
        return self.json(name)

    def file(self, reference: str) -> Upload | None:
        """An upload named by an ``attach://name`` reference, or None for file_id/URL references."""
        if reference.startswith("attach://"):
            upload = self.files.get(reference.removeprefix("attach://"))
            if upload is None:
                raise bad_request("wrong remote file identifier specified: can't unserialize it")
            return upload
        return None

    def summary(self) -> dict[str, Any]:
        """Loggable parameters: files reduced to name and size."""
        out: dict[str, Any] = {k: self.json(k) for k in self.values}
        for name, upload in self.files.items():
            out[name] = f"<file {upload.filename or name}, {len(upload.data)} bytes>"
        return out


Handler = Callable[[Params], Awaitable[Any]]


class BotMethods:
    """The Bot API methods, looked up case-insensitively as Telegram does."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.handlers: dict[str, Handler] = {
            name.lower(): getattr(self, name)
            for name in (
                "getMe",
                "getUpdates",
                "deleteWebhook",
                "getWebhookInfo",
                "setMyCommands",
                "getMyCommands",
                "deleteMyCommands",
                "sendMessage",
                "sendPhoto",
                "sendDocument",
                "editMessageText",
                "editMessageCaption",
                "editMessageMedia",
                "editMessageReplyMarkup",
                "answerCallbackQuery",
                "getFile",
                "deleteMessage",
                "sendChatAction",
            )
        }

    def find(self, method: str) -> Handler | None:
        return self.handlers.get(method.lower())

    # ---- helpers ---------------------------------------------------------------------------

    def _chat(self, params: Params) -> Chat:
        chat_id = params.require("chat_id")
        chat: Chat | None = None
        if isinstance(chat_id, int):
            chat = self.world.chats.get(chat_id)
        elif isinstance(chat_id, str) and chat_id.startswith("@"):
            chat = next((c for c in self.world.chats.values() if c.user and c.user.username == chat_id[1:]), None)
        if chat is None:
            raise bad_request("chat not found")
        if chat.user is not None and chat.user.blocked_bot:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _message(self, params: Params) -> Message:
        if params.has("inline_message_id"):
            raise bad_request("inline messages are not supported by the fake server")
        chat = self._chat(params)
        message = self.world.messages.get((chat.id, params.int("message_id") or 0))
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return message

    def _formatted(self, params: Params, text_key: str, entities_key: str, limit: int) -> dict[str, Any]:
        """Text or caption with its entities, applying parse_mode HTML as Telegram would."""
        text = params.str(text_key)
        if text is None:
            return {}
        entities = params.json(entities_key)
        parse_mode = (params.str("parse_mode") or "").lower()
        if parse_mode == "html" and not entities:
            try:
                text, entities = parse_html(text)
            except EntityParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
        # Markdown modes are stored verbatim: the fake server does not render them.
        if len(text) > limit:
            raise bad_request("message is too long" if text_key == "text" else "message caption is too long")
        out: dict[str, Any] = {text_key: text}
        if entities:
            out[entities_key] = entities
        return out

    def _reply_markup(self, params: Params) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Return (inline keyboard for the message JSON, other keyboard kept only for tests)."""
        markup = params.json("reply_markup")
        if not markup:
            return None, None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return None, markup
        for row in markup["inline_keyboard"]:
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= _MAX_CALLBACK_DATA:
                    raise bad_request("BUTTON_DATA_INVALID")
                if "text" not in button:
                    raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
        return {"inline_keyboard": markup["inline_keyboard"]}, None

    def _reply_to(self, params: Params, chat: Chat) -> dict[str, Any]:
        reply = params.json("reply_parameters") or {}
        reply_id = reply.get("message_id") if isinstance(reply, dict) else None
        reply_id = reply_id or params.int("reply_to_message_id")
        if not reply_id:
            return {}
        target = self.world.messages.get((chat.id, reply_id))
        if target is None or target.deleted:
            raise bad_request("message to be replied not found")
        return {"reply_to_message": target.to_api()}

    def _photo(self, params: Params, reference: str | None, field: str) -> list[StoredFile]:
        """Photo sizes for an upload (plain multipart field or attach://) or a known file_id."""
        upload = self.files_param(params, reference, field)
        if upload is not None:
            try:
                return self.world.store_photo(upload.data)
            except ValueError:
                raise bad_request("IMAGE_PROCESS_FAILED") from None
        if reference and reference in self.world.photo_sets:
            return self.world.photo_sets[reference]
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _document(self, params: Params, reference: str | None, field: str) -> StoredFile:
        upload = self.files_param(params, reference, field)
        if upload is not None:
            name = upload.filename or "file"
            extension = name.rsplit(".", 1)[-1] if "." in name else "bin"
            return self.world.store_file(
                upload.data, "documents", extension, upload.content_type or "application/octet-stream", file_name=name
            )
        if reference and reference in self.world.files:
            return self.world.files[reference]
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _video(self, params: Params, reference: str | None, field: str) -> StoredFile:
        """A video upload, read as Telegram would: one that does not play is refused."""
        upload = self.files_param(params, reference, field)
        if upload is None:
            if reference and reference in self.world.files:
                return self.world.files[reference]
            raise bad_request("wrong file identifier/HTTP URL specified")
        try:
            width, height, duration = video_info(upload.data)
        except ValueError:
            raise bad_request("VIDEO_CONTENT_TYPE_INVALID") from None
        stored = self.world.store_file(upload.data, "videos", "mp4", upload.content_type or "video/mp4",
                                       file_name=upload.filename, width=width, height=height)
        stored.duration = duration
        return stored

    @staticmethod
    def files_param(params: Params, reference: str | None, field: str) -> Upload | None:
        if reference:
            return params.file(reference)
        upload = params.files.get(field)
        if upload is None:
            raise bad_request(f"there is no {field} in the request")
        return upload

    def _send(self, chat: Chat, content: dict[str, Any], params: Params, media: StoredFile | None = None) -> dict[str, Any]:
        inline, other = self._reply_markup(params)
        content = {**self._reply_to(params, chat), **content}
        if inline:
            content["reply_markup"] = inline
        message = self.world.new_message(chat, self.world.bot, content, from_bot=True, media=media)
        message.reply_keyboard = other
        self.world.notify()
        return message.to_api()

    def _edit(self, message: Message, new_content: dict[str, Any], params: Params, media: StoredFile | None = None) -> dict[str, Any]:
        for key in ("reply_to_message", "forward_origin"):
            if key in message.content:
                new_content.setdefault(key, message.content[key])
        inline, _ = self._reply_markup(params)
        # An edit without reply_markup removes the inline keyboard, as on real Telegram.
        if inline:
            new_content["reply_markup"] = inline
        if new_content == message.content and media is None:
            raise bad_request(_NOT_MODIFIED)
        message.history.append(message.content)
        message.content = new_content
        if media is not None:
            message.media = media
        message.edit_date = now()
        self.world.notify()
        return message.to_api()

    # ---- methods ----------------------------------------------------------------------------

    async def getMe(self, params: Params) -> Any:
        return {
            **self.world.bot.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def getUpdates(self, params: Params) -> Any:
        world = self.world
        offset = params.int("offset", 0) or 0
        limit = max(1, min(100, params.int("limit", 100) or 100))
        timeout = max(0, params.int("timeout", 0) or 0)
        allowed = params.json("allowed_updates") or None
        if offset:
            world.confirm_updates(offset)
        world.poll_generation += 1
        generation = world.poll_generation
        world.notify()
        deadline = time.monotonic() + timeout
        while True:
            if generation != world.poll_generation:
                raise ApiError(
                    409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
                )
            if allowed:
                world.updates = [u for u in world.updates if any(kind in u for kind in allowed)]
            remaining = deadline - time.monotonic()
            if world.updates or remaining <= 0 or world.closing:
                return world.updates[:limit]
            await world.wait_changed(remaining)

    async def deleteWebhook(self, params: Params) -> Any:
        if params.bool("drop_pending_updates"):
            self.world.updates.clear()
        return True

    async def getWebhookInfo(self, params: Params) -> Any:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self.world.updates)}

    @staticmethod
    def _commands_key(params: Params) -> str:
        scope = params.json("scope") or {"type": "default"}
        return json.dumps([scope, params.str("language_code") or ""], sort_keys=True)

    async def setMyCommands(self, params: Params) -> Any:
        commands = params.require("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            name = command.get("command", "")
            if not (1 <= len(name) <= 32 and name.replace("_", "").isalnum() and name == name.lower()):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.world.commands[self._commands_key(params)] = commands
        self.world.notify()
        return True

    async def getMyCommands(self, params: Params) -> Any:
        return self.world.commands.get(self._commands_key(params), [])

    async def deleteMyCommands(self, params: Params) -> Any:
        self.world.commands.pop(self._commands_key(params), None)
        return True

    async def sendMessage(self, params: Params) -> Any:
        chat = self._chat(params)
        content = self._formatted(params, "text", "entities", _MAX_TEXT)
        if not content.get("text", "").strip():
            raise bad_request("message text is empty")
        return self._send(chat, content, params)

    async def sendPhoto(self, params: Params) -> Any:
        chat = self._chat(params)
        sizes = self._photo(params, params.str("photo"), "photo")
        content = {"photo": [s.photo_size() for s in sizes]}
        content.update(self._formatted(params, "caption", "caption_entities", _MAX_CAPTION))
        return self._send(chat, content, params, media=sizes[-1])

    async def sendDocument(self, params: Params) -> Any:
        chat = self._chat(params)
        stored = self._document(params, params.str("document"), "document")
        content = {"document": document_json(stored)}
        content.update(self._formatted(params, "caption", "caption_entities", _MAX_CAPTION))
        return self._send(chat, content, params, media=stored)

    async def editMessageText(self, params: Params) -> Any:
        message = self._message(params)
        if "text" not in message.content:
            raise bad_request("there is no text in the message to edit")
        content = self._formatted(params, "text", "entities", _MAX_TEXT)
        if not content.get("text", "").strip():
            raise bad_request("message text is empty")
        return self._edit(message, content, params)

    async def editMessageCaption(self, params: Params) -> Any:
        message = self._message(params)
        if "text" in message.content:
            raise bad_request("there is no caption in the message to edit")
        kept = {k: v for k, v in message.content.items() if k not in ("caption", "caption_entities", "reply_markup")}
        content = {**kept, **self._formatted(params, "caption", "caption_entities", _MAX_CAPTION)}
        return self._edit(message, content, params)

    async def editMessageMedia(self, params: Params) -> Any:
        message = self._message(params)
        if "text" in message.content:
            raise bad_request("there is no media in the message to edit")
        media = params.require("media")
        if not isinstance(media, dict) or "media" not in media:
            raise bad_request("can't parse InputMedia: media not found")
        # The caption comes from the InputMedia; the fake server reads its fields like a request's.
        inner = Params({k: v for k, v in media.items() if k not in ("type", "media")}, params.files)
        kind = media.get("type")
        if kind == "photo":
            sizes = self._photo(params, media["media"], "media")
            content: dict[str, Any] = {"photo": [s.photo_size() for s in sizes]}
            stored = sizes[-1]
        elif kind == "document":
            stored = self._document(params, media["media"], "media")
            content = {"document": document_json(stored)}
        elif kind == "video":
            stored = self._video(params, media["media"], "media")
            content = {"video": video_json(stored)}
        else:
            raise bad_request(f"media type {kind!r} is not supported by the fake server")
        content.update(self._formatted(inner, "caption", "caption_entities", _MAX_CAPTION))
        return self._edit(message, content, params, media=stored)

    async def editMessageReplyMarkup(self, params: Params) -> Any:
        message = self._message(params)
        kept = {k: v for k, v in message.content.items() if k != "reply_markup"}
        inline, _ = self._reply_markup(params)
        if inline:
            kept["reply_markup"] = inline
        if kept == message.content:
            raise bad_request(_NOT_MODIFIED)
        message.history.append(message.content)
        message.content = kept
        self.world.notify()
        return message.to_api()

    async def answerCallbackQuery(self, params: Params) -> Any:
        query_id = params.str("callback_query_id") or ""
        if self.world.callback_queries.pop(query_id, None) is None:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        self.world.callback_answers.append(
            CallbackAnswer(query_id, params.str("text"), params.bool("show_alert"), params.str("url"), time.time())
        )
        self.world.notify()
        return True

    async def getFile(self, params: Params) -> Any:
        stored = self.world.files.get(params.str("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        return stored.get_file()

    async def deleteMessage(self, params: Params) -> Any:
        chat = self._chat(params)
        message = self.world.messages.get((chat.id, params.int("message_id") or 0))
        if message is None or message.deleted:
            raise bad_request("message to delete not found")
        message.deleted = True
        self.world.notify()
        return True

    async def sendChatAction(self, params: Params) -> Any:
        chat = self._chat(params)
        action = params.str("action") or ""
        if action not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.world.chat_actions.append((chat.id, action))
        self.world.notify()
        return True
