"""The fake Telegram's state: users, chats, messages, files, updates, and the user-side actions.

Everything here runs on the server's event loop thread; it is not locked. Values serialise to
the exact JSON shapes of the Bot API (``to_api``) so python-telegram-bot parses them strictly.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cv2
import numpy as np

T = TypeVar("T")

# Telegram keeps a few downscaled copies of every photo; the largest entry is the original here,
# so a test can compare downloaded bytes with what was uploaded.
_THUMBNAIL_SIDES = (90, 320, 800)


def now() -> int:
    """Bot API dates are Unix seconds."""
    return int(time.time())


@dataclass
class User:
    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    # A user who blocked the bot makes sends to their private chat fail with 403.
    blocked_bot: bool = False

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass
class Chat:
    id: int
    type: str  # "private", "group" or "supergroup"
    title: str | None = None
    user: User | None = None  # the other party of a private chat

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title is not None:
            data["title"] = self.title
        if self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.username:
                data["username"] = self.user.username
        return data


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None  # seconds, for videos

    def photo_size(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width,
            "height": self.height,
            "file_size": len(self.data),
        }

    def get_file(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


@dataclass
class Message:
    """One message; ``content`` holds its Bot API fields besides ids, sender and dates."""

    chat: Chat
    message_id: int
    date: int
    sender: User
    content: dict[str, Any]
    from_bot: bool
    # The file a test most likely wants back: the original photo, the document, ...
    media: StoredFile | None = None
    edit_date: int | None = None
    deleted: bool = False
    # Earlier versions of ``content`` (oldest first), one per edit.
    history: list[dict[str, Any]] = field(default_factory=list)
    # Reply/force-reply keyboards never appear in Message JSON, but tests may want to see them.
    reply_keyboard: dict[str, Any] | None = None

    @property
    def text(self) -> str | None:
        return self.content.get("text")

    @property
    def caption(self) -> str | None:
        return self.content.get("caption")

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.content.get("reply_markup")

    @property
    def photo_bytes(self) -> bytes | None:
        """Bytes of the largest photo size (the uploaded file), or None if not a photo."""
        return self.media.data if self.media is not None and "photo" in self.content else None

    @property
    def video_bytes(self) -> bytes | None:
        """Bytes of the video (sent, or edited in with editMessageMedia), or None if not a video."""
        return self.media.data if self.media is not None and "video" in self.content else None

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Inline keyboard buttons, row by row flattened."""
        markup = self.reply_markup or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "from": self.sender.to_api(),
            "chat": self.chat.to_api(),
            "date": self.date,
        }
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        data.update(copy.deepcopy(self.content))
        return data

    def to_control(self) -> dict[str, Any]:
        """The API shape plus what only a test needs (deleted flag, edit history, media id)."""
        return {
            **self.to_api(),
            "deleted": self.deleted,
            "history": copy.deepcopy(self.history),
            "media_file_id": self.media.file_id if self.media else None,
        }


@dataclass
class ApiCall:
    """One Bot API request as the server saw it; files appear as ``<file name, N bytes>``."""

    method: str
    params: dict[str, Any]
    time: float
    status: int | None = None  # None while the call is still being answered
    outcome: str = "pending"  # "ok", "error", or "fault:<kind>"

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "params": self.params,
            "time": self.time,
            "status": self.status,
            "outcome": self.outcome,
        }


@dataclass
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    time: float

    def to_json(self) -> dict[str, Any]:
        return {
            "callback_query_id": self.callback_query_id,
            "text": self.text,
            "show_alert": self.show_alert,
            "url": self.url,
            "time": self.time,
        }


def command_entities(text: str | None) -> list[dict[str, Any]]:
    """A leading ``/command`` (optionally ``@botname``) is a bot_command entity in Telegram."""
    if not text or not text.startswith("/"):
        return []
    word = text.split(maxsplit=1)[0]
    return [{"type": "bot_command", "offset": 0, "length": len(word.encode("utf-16-le")) // 2}]


def _decode(data: bytes) -> np.ndarray:
    # OpenCV, not Pillow: ultralytics (imported by other tests in the same process) patches
    # PIL.Image.open globally and breaks it for some files.
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not an image")
    return image


def image_size(data: bytes) -> tuple[int, int]:
    """Return (width, height); raise ValueError for bytes that are not an image."""
    height, width = _decode(data).shape[:2]
    return width, height


def _thumbnail(data: bytes, side: int) -> tuple[bytes, int, int]:
    image = _decode(data)
    height, width = image.shape[:2]
    scale = min(1.0, side / max(height, width))
    small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                       interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return jpeg.tobytes(), small.shape[1], small.shape[0]


class World:
    """All state of the fake Telegram plus the actions of the simulated users."""

    def __init__(self, token: str, bot_username: str = "firewatch_test_bot") -> None:
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.token = token
        self.bot = User(id=bot_id, first_name="Firewatch Test", username=bot_username, is_bot=True)
        self.users: dict[int, User] = {}
        self.chats: dict[int, Chat] = {}
        self.messages: dict[tuple[int, int], Message] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        # Photo file_id -> all sizes, so re-sending by file_id yields the same sizes.
        self.photo_sets: dict[str, list[StoredFile]] = {}
        self.updates: list[dict[str, Any]] = []
        self.calls: list[ApiCall] = []
        self.callback_queries: dict[str, Message] = {}
        self.callback_answers: list[CallbackAnswer] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.chat_actions: list[tuple[int, str]] = []
        self._next_update_id = 700_000_001
        self._next_message_id: dict[int, int] = {}
        self._user_ids = itertools.count(5_000_001)
        self._group_ids = itertools.count(-1_000_001, -1)
        self._file_serial = itertools.count(1)
        self._changed = asyncio.Event()
        self.closing = False
        # Telegram answers the older of two concurrent getUpdates with 409 Conflict.
        self.poll_generation = 0

    # ---- change notification -------------------------------------------------------------

    def notify(self) -> None:
        """Wake every waiter (long polls, wait_for, control long-polls)."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_changed(self, timeout: float) -> None:
        """Wait until the next state change or ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass

    async def wait_for(self, predicate: Callable[[Any], T], timeout: float = 5.0) -> T:
        """Wait until ``predicate(self)`` is truthy and return its value; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            event = self._changed
            value = predicate(self)
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass

    # ---- users and chats -----------------------------------------------------------------

    def add_user(
        self,
        first_name: str,
        username: str | None = None,
        user_id: int | None = None,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> User:
        """Create a user who has started the bot (their private chat exists)."""
        user = User(
            id=user_id if user_id is not None else next(self._user_ids),
            first_name=first_name,
            username=username,
            last_name=last_name,
            language_code=language_code,
        )
        self.users[user.id] = user
        self.chats[user.id] = Chat(id=user.id, type="private", user=user)
        self.notify()
        return user

    def add_group(self, title: str, chat_type: str = "group", chat_id: int | None = None) -> Chat:
        if chat_type not in ("group", "supergroup"):
            raise ValueError(f"chat_type must be group or supergroup, not {chat_type!r}")
        chat = Chat(id=chat_id if chat_id is not None else next(self._group_ids), type=chat_type, title=title)
        self.chats[chat.id] = chat
        self.notify()
        return chat

    def private_chat(self, user: User | int) -> Chat:
        return self.chats[user if isinstance(user, int) else user.id]

    def set_blocked(self, user: User | int, blocked: bool = True) -> None:
        """Simulate the user blocking the bot: sends to them get 403 Forbidden."""
        self._user(user).blocked_bot = blocked

    def _user(self, user: User | int) -> User:
        return self.users[user] if isinstance(user, int) else user

    def _chat_for(self, user: User, chat: Chat | int | None) -> Chat:
        if chat is None:
            return self.chats[user.id]
        return self.chats[chat] if isinstance(chat, int) else chat

    # ---- files ---------------------------------------------------------------------------

    def store_file(
        self,
        data: bytes,
        folder: str,
        extension: str,
        mime_type: str | None = None,
        file_name: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> StoredFile:
        serial = next(self._file_serial)
        stored = StoredFile(
            file_id=f"AgAC{serial:06d}{secrets.token_urlsafe(24)}",
            file_unique_id=f"AQAD{serial:06d}{secrets.token_urlsafe(6)}",
            file_path=f"{folder}/file_{serial}.{extension}",
            data=data,
            mime_type=mime_type,
            file_name=file_name,
            width=width,
            height=height,
        )
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    def store_photo(self, data: bytes) -> list[StoredFile]:
        """Store an image as Telegram photo sizes (smallest first); ValueError if not an image."""
        width, height = image_size(data)
        sizes = []
        for side in _THUMBNAIL_SIDES:
            if max(width, height) > side:
                thumb, w, h = _thumbnail(data, side)
                sizes.append(self.store_file(thumb, "photos", "jpg", "image/jpeg", width=w, height=h))
        sizes.append(self.store_file(data, "photos", "jpg", "image/jpeg", width=width, height=height))
        for size in sizes:
            self.photo_sets[size.file_id] = sizes
        return sizes

    def file_bytes(self, file_id: str) -> bytes:
        return self.files[file_id].data

    # ---- messages and updates ------------------------------------------------------------

    def new_message(
        self,
        chat: Chat,
        sender: User,
        content: dict[str, Any],
        from_bot: bool,
        media: StoredFile | None = None,
    ) -> Message:
        message_id = self._next_message_id.get(chat.id, 1)
        self._next_message_id[chat.id] = message_id + 1
        message = Message(
            chat=chat,
            message_id=message_id,
            date=now(),
            sender=sender,
            content=content,
            from_bot=from_bot,
            media=media,
        )
        self.messages[(chat.id, message_id)] = message
        return message

    def push_update(self, kind: str, payload: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        self.updates.append({"update_id": update_id, kind: payload})
        self.notify()
        return update_id

    def confirm_updates(self, offset: int) -> None:
        """getUpdates ``offset`` semantics: forget updates before it (negative: keep the last -offset)."""
        if offset < 0:
            self.updates = self.updates[offset:]
        else:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

    def message(self, chat: Chat | int, message_id: int) -> Message:
        chat_id = chat if isinstance(chat, int) else chat.id
        return self.messages[(chat_id, message_id)]

    def sent_messages(self, chat: Chat | User | int | None = None, include_deleted: bool = False) -> list[Message]:
        """Messages the bot sent (current state after edits), oldest first, optionally for one chat."""
        chat_id = chat if isinstance(chat, int) or chat is None else chat.id
        return [
            m
            for m in self.messages.values()
            if m.from_bot and (chat_id is None or m.chat.id == chat_id) and (include_deleted or not m.deleted)
        ]

    def calls_to(self, method: str | None = None) -> list[ApiCall]:
        """Logged API calls, optionally of one method (case-insensitive)."""
        if method is None:
            return list(self.calls)
        return [c for c in self.calls if c.method.lower() == method.lower()]

    # ---- what users do -------------------------------------------------------------------

    def _user_message(
        self,
        user: User | int,
        chat: Chat | int | None,
        content: dict[str, Any],
        media: StoredFile | None = None,
        forward_origin: dict[str, Any] | None = None,
    ) -> Message:
        sender = self._user(user)
        target = self._chat_for(sender, chat)
        if forward_origin is not None:
            content = {"forward_origin": {"date": now(), **forward_origin}, **content}
        message = self.new_message(target, sender, content, from_bot=False, media=media)
        self.push_update("message", message.to_api())
        return message

    def send_text(self, user: User | int, text: str, chat: Chat | int | None = None) -> Message:
        """The user writes ``text``; a leading /command gets its bot_command entity."""
        content: dict[str, Any] = {"text": text}
        if entities := command_entities(text):
            content["entities"] = entities
        return self._user_message(user, chat, content)

    def send_photo(
        self,
        user: User | int,
        image: bytes,
        chat: Chat | int | None = None,
        caption: str | None = None,
        forward_origin: dict[str, Any] | None = None,
    ) -> Message:
        """The user sends a photo; ``forward_origin`` is Bot API MessageOrigin JSON (date optional)."""
        sizes = self.store_photo(image)
        content: dict[str, Any] = {"photo": [s.photo_size() for s in sizes]}
        if caption is not None:
            content["caption"] = caption
            if entities := command_entities(caption):
                content["caption_entities"] = entities
        return self._user_message(user, chat, content, media=sizes[-1], forward_origin=forward_origin)

    def send_document(
        self,
        user: User | int,
        data: bytes,
        file_name: str,
        mime_type: str = "application/octet-stream",
        chat: Chat | int | None = None,
        caption: str | None = None,
    ) -> Message:
        extension = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        stored = self.store_file(data, "documents", extension, mime_type, file_name=file_name)
        content: dict[str, Any] = {"document": document_json(stored)}
        if caption is not None:
            content["caption"] = caption
        return self._user_message(user, chat, content, media=stored)

    def send_sticker(self, user: User | int, image: bytes, chat: Chat | int | None = None, emoji: str = "🔥") -> Message:
        width, height = image_size(image)
        stored = self.store_file(image, "stickers", "webp", "image/webp", width=width, height=height)
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": width,
            "height": height,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": len(image),
        }
        return self._user_message(user, chat, {"sticker": sticker}, media=stored)

    def send_video(
        self,
        user: User | int,
        data: bytes,
        width: int = 640,
        height: int = 480,
        duration: int = 1,
        chat: Chat | int | None = None,
        caption: str | None = None,
    ) -> Message:
        stored = self.store_file(data, "videos", "mp4", "video/mp4", width=width, height=height)
        video = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": width,
            "height": height,
            "duration": duration,
            "mime_type": "video/mp4",
            "file_size": len(data),
        }
        content: dict[str, Any] = {"video": video}
        if caption is not None:
            content["caption"] = caption
        return self._user_message(user, chat, content, media=stored)

    def press_button(
        self,
        user: User | int,
        message: Message,
        callback_data: str | None = None,
        text: str | None = None,
    ) -> str:
        """Press an inline button of a bot message (chosen by data or label); return the query id."""
        presser = self._user(user)
        if callback_data is None:
            matches = [b for b in message.buttons if b.get("text") == text and "callback_data" in b]
            if not matches:
                raise LookupError(f"no callback button labelled {text!r} on message {message.message_id}")
            callback_data = matches[0]["callback_data"]
        elif not any(b.get("callback_data") == callback_data for b in message.buttons):
            raise LookupError(f"no button with callback_data {callback_data!r} on message {message.message_id}")
        query_id = str(secrets.randbits(62))
        self.callback_queries[query_id] = message
        query = {
            "id": query_id,
            "from": presser.to_api(),
            "message": message.to_api(),
            "chat_instance": str(abs(hash((message.chat.id, self.bot.id)))),
            "data": callback_data,
        }
        self.push_update("callback_query", query)
        return query_id


def document_json(stored: StoredFile) -> dict[str, Any]:
    data: dict[str, Any] = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
    }
    if stored.file_name:
        data["file_name"] = stored.file_name
    if stored.mime_type:
        data["mime_type"] = stored.mime_type
    return data



def video_json(stored: StoredFile) -> dict[str, Any]:
    return {**document_json(stored), "width": stored.width, "height": stored.height, "duration": stored.duration}


def video_info(data: bytes) -> tuple[int, int, int]:
    """(width, height, whole seconds) of a video file's bytes; ValueError if it does not play."""
    import tempfile

    import cv2

    with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
        f.write(data)
        f.flush()
        capture = cv2.VideoCapture(f.name)
        try:
            ok, frame = capture.read()
            if not ok:
                raise ValueError("not a video")
            frames = capture.get(cv2.CAP_PROP_FRAME_COUNT)
            fps = capture.get(cv2.CAP_PROP_FPS) or 1.0
            return frame.shape[1], frame.shape[0], max(1, round(frames / fps))
        finally:
            capture.release()
