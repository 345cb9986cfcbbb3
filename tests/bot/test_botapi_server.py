"""The fake Bot API server, driven by the real python-telegram-bot client: if PTB parses every
answer and raises the right errors here, the bot's end-to-end tests can trust the fake."""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import warnings
from collections.abc import Callable

import aiohttp
import cv2
import numpy as np
import pytest
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    MessageEntity,
    MessageOriginUser,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from tests.support.botapi import BotApiServer, ControlClient, StandaloneServer
from tests.support.botapi.client import ControlError
from tests.support.data import DATA

TOKEN = "987654321:AAF-fake-token-0123456789abcdefghij"


def val_images(n: int) -> list[bytes]:
    paths = sorted((DATA / "fire" / "images" / "val").glob("*.jpg"))[:n]
    assert len(paths) == n, f"need {n} JPEGs under {DATA}/fire/images/val"
    return [p.read_bytes() for p in paths]


def decoded_size(data: bytes) -> tuple[int, int]:
    """(width, height) decoded with OpenCV, independently of the server's Pillow."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return image.shape[1], image.shape[0]


def seconds(read: Callable[[], int | dtm.timedelta]) -> float:
    """A PTB duration in seconds, whether PTB returns it as int or (opted-in) timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 warns that int durations become timedeltas
        value = read()
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


@pytest.fixture
async def srv():
    async with BotApiServer(token=TOKEN) as server:
        yield server


@pytest.fixture
async def bot(srv: BotApiServer):
    async with Bot(TOKEN, base_url=srv.base_url, base_file_url=srv.base_file_url) as client:
        yield client


async def test_get_me_and_commands(srv: BotApiServer, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.id == 987654321 and me.username == "firewatch_test_bot"

    commands = [BotCommand("arm", "Arm alerts (send a selfie)"), BotCommand("status", "Show status")]
    assert await bot.set_my_commands(commands)
    assert await bot.get_my_commands() == tuple(commands)
    with pytest.raises(BadRequest, match="(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Not Valid", "x")])
    # Bot.initialize() calls getMe first.
    assert [c.method for c in srv.calls] == ["getMe", "getMe", "setMyCommands", "getMyCommands", "setMyCommands"]


async def test_send_message_with_keyboard_and_html(srv: BotApiServer, bot: Bot) -> None:
    alice = srv.add_user("Alice", "alice")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Ack", callback_data="ack:1")]])
    sent = await bot.send_message(alice.id, "<b>Fire</b> at cam 1 🔥 &amp; smoke", parse_mode="HTML", reply_markup=keyboard)

    assert sent.text == "Fire at cam 1 🔥 & smoke"
    assert sent.entities == (MessageEntity(MessageEntity.BOLD, 0, 4),)
    assert sent.reply_markup == keyboard
    assert sent.from_user.is_bot and sent.chat.id == alice.id and sent.chat.type == "private"
    assert [m.text for m in srv.sent_messages(alice)] == ["Fire at cam 1 🔥 & smoke"]
    assert srv.sent_messages(alice)[0].buttons == [{"text": "Ack", "callback_data": "ack:1"}]

    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(alice.id, "<b>unclosed", parse_mode="HTML")
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(42, "nobody")
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(alice.id, "x", reply_markup=too_long)


async def test_send_photo_sizes_come_from_the_real_image(srv: BotApiServer, bot: Bot) -> None:
    jpeg, _ = val_images(2)
    alice = srv.add_user("Alice")
    sent = await bot.send_photo(alice.id, jpeg, caption="cam 1")

    width, height = decoded_size(jpeg)
    largest = sent.photo[-1]
    assert (largest.width, largest.height, largest.file_size) == (width, height, len(jpeg))
    for size in sent.photo[:-1]:  # thumbnails are real, smaller JPEGs
        assert max(size.width, size.height) < max(width, height)
        thumbnail = await (await bot.get_file(size.file_id)).download_as_bytearray()
        assert decoded_size(bytes(thumbnail)) == (size.width, size.height)
    assert srv.sent_messages(alice)[0].photo_bytes == jpeg

    downloaded = await (await bot.get_file(largest.file_id)).download_as_bytearray()
    assert bytes(downloaded) == jpeg

    again = await bot.send_photo(alice.id, largest.file_id)  # by file_id, no upload
    assert [p.file_id for p in again.photo] == [p.file_id for p in sent.photo]

    with pytest.raises(BadRequest, match="(?i)IMAGE_PROCESS_FAILED"):
        await bot.send_photo(alice.id, b"not an image")
    with pytest.raises(BadRequest, match="(?i)wrong file identifier"):
        await bot.send_photo(alice.id, "no-such-file-id")


async def test_edit_media_caption_text_and_markup(srv: BotApiServer, bot: Bot) -> None:
    first, second = val_images(2)
    alice = srv.add_user("Alice")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Ack", callback_data="ack")]])
    photo = await bot.send_photo(alice.id, first, caption="smoke?", reply_markup=keyboard)

    # InputMediaPhoto is uploaded as attach://<name> in a multipart body.
    edited = await bot.edit_message_media(
        InputMediaPhoto(second, caption="fire confirmed"), chat_id=alice.id, message_id=photo.message_id, reply_markup=keyboard
    )
    assert (edited.photo[-1].width, edited.photo[-1].height) == decoded_size(second)
    assert edited.caption == "fire confirmed" and edited.edit_date is not None
    stored = srv.message(alice.id, photo.message_id)
    assert stored.photo_bytes == second and len(stored.history) == 1

    recaptioned = await bot.edit_message_caption(chat_id=alice.id, message_id=photo.message_id, caption="cleared")
    assert recaptioned.caption == "cleared"
    assert recaptioned.reply_markup is None  # like Telegram: an edit without reply_markup drops it
    assert recaptioned.photo == edited.photo

    text = await bot.send_message(alice.id, "armed")
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text("armed", chat_id=alice.id, message_id=text.message_id)
    with_markup = await bot.edit_message_reply_markup(chat_id=alice.id, message_id=text.message_id, reply_markup=keyboard)
    assert with_markup.reply_markup == keyboard
    renamed = await bot.edit_message_text("disarmed", chat_id=alice.id, message_id=text.message_id)
    assert renamed.text == "disarmed"
    assert [h.get("text") for h in srv.message(alice.id, text.message_id).history] == ["armed", "armed"]
    with pytest.raises(BadRequest, match="(?i)no text in the message"):
        await bot.edit_message_text("x", chat_id=alice.id, message_id=photo.message_id)


async def test_get_updates_long_poll_returns_when_a_message_arrives(srv: BotApiServer, bot: Bot) -> None:
    alice = srv.add_user("Alice", "alice")
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await srv.wait_for(lambda s: s.calls_to("getUpdates"))
    await asyncio.sleep(0.2)
    assert not poll.done()  # nothing to deliver yet: the poll is held open

    srv.send_text(alice, "/arm now")
    updates = await asyncio.wait_for(poll, 10)  # far less than the 30 s poll timeout

    [update] = updates
    assert update.message.text == "/arm now"
    assert update.message.from_user.id == alice.id and not update.message.from_user.is_bot
    assert update.message.entities == (MessageEntity(MessageEntity.BOT_COMMAND, 0, 4),)
    assert update.message.date.tzinfo is not None  # dates are parsed from Unix seconds

    # Unconfirmed updates are delivered again; offset confirms them.
    assert [u.update_id for u in await bot.get_updates()] == [update.update_id]
    assert await bot.get_updates(offset=update.update_id + 1) == ()
    assert srv.updates == []


async def test_second_bot_instance_gets_conflict(srv: BotApiServer, bot: Bot) -> None:
    """Like Telegram, a new getUpdates ends the one already waiting with 409 Conflict."""
    first = asyncio.create_task(bot.get_updates(timeout=30))
    await srv.wait_for(lambda s: s.calls_to("getUpdates"))
    async with Bot(TOKEN, base_url=srv.base_url) as other_instance:
        second = asyncio.create_task(other_instance.get_updates(timeout=0))
        with pytest.raises(Conflict, match="(?i)terminated by other getUpdates"):
            await asyncio.wait_for(first, 10)
        assert await second == ()


async def test_user_photo_document_sticker_video_parse_and_download(srv: BotApiServer, bot: Bot) -> None:
    selfie, sticker_source = val_images(2)
    alice = srv.add_user("Alice")
    bob = srv.add_user("Bob", "bob")
    srv.send_photo(alice, selfie, caption="/arm")
    srv.send_photo(alice, selfie, forward_origin={"type": "user", "sender_user": bob.to_api()})
    srv.send_document(alice, b"%PDF-1.4 fake", "report.pdf", "application/pdf")
    webp = cv2.imencode(".webp", cv2.imdecode(np.frombuffer(sticker_source, np.uint8), cv2.IMREAD_COLOR)[:512, :512])[1]
    srv.send_sticker(alice, webp.tobytes())
    srv.send_video(alice, b"\x00\x00\x00\x18ftypmp42", width=320, height=240, duration=3)

    selfie_msg, forwarded, document, sticker, video = [u.message for u in await bot.get_updates()]
    assert selfie_msg.caption == "/arm"
    assert selfie_msg.caption_entities == (MessageEntity(MessageEntity.BOT_COMMAND, 0, 4),)
    assert (selfie_msg.photo[-1].width, selfie_msg.photo[-1].height) == decoded_size(selfie)
    downloaded = await (await bot.get_file(selfie_msg.photo[-1].file_id)).download_as_bytearray()
    assert bytes(downloaded) == selfie

    assert isinstance(forwarded.forward_origin, MessageOriginUser)
    assert forwarded.forward_origin.sender_user.id == bob.id

    assert document.document.file_name == "report.pdf" and document.document.mime_type == "application/pdf"
    assert bytes(await (await bot.get_file(document.document.file_id)).download_as_bytearray()) == b"%PDF-1.4 fake"
    assert sticker.sticker.emoji == "🔥" and sticker.sticker.width == min(512, decoded_size(sticker_source)[0])
    assert (video.video.width, video.video.height) == (320, 240)
    assert seconds(lambda: video.video.duration) == 3


async def test_group_chat_delete_and_chat_action(srv: BotApiServer, bot: Bot) -> None:
    alice = srv.add_user("Alice")
    group = srv.add_group("Operators")
    srv.send_text(alice, "/status@firewatch_test_bot", chat=group)
    [update] = await bot.get_updates()
    assert update.message.chat.type == "group" and update.message.chat.title == "Operators"
    assert update.message.chat.id < 0

    assert await bot.send_chat_action(group.id, "upload_photo")
    assert srv.chat_actions == [(group.id, "upload_photo")]
    sent = await bot.send_message(group.id, "ok")
    assert await bot.delete_message(group.id, sent.message_id)
    assert srv.sent_messages(group) == [] and srv.sent_messages(group, include_deleted=True)[0].deleted
    with pytest.raises(BadRequest, match="(?i)message to delete not found"):
        await bot.delete_message(group.id, sent.message_id)


async def test_blocked_user_is_forbidden(srv: BotApiServer, bot: Bot) -> None:
    alice = srv.add_user("Alice")
    srv.set_blocked(alice)
    with pytest.raises(Forbidden, match="(?i)bot was blocked by the user"):
        await bot.send_message(alice.id, "alert")


async def test_application_polling_with_callback_button(srv: BotApiServer) -> None:
    """A real PTB Application polls the fake; a pressed button carries the bot's real message."""

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Arm", callback_data="arm"), InlineKeyboardButton("Disarm", callback_data="disarm")]])
        await update.message.reply_text("Choose", reply_markup=keyboard)

    seen: list[Update] = []

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update)
        await update.callback_query.answer("Armed")
        await update.callback_query.edit_message_text(f"State: {update.callback_query.data}")

    app = Application.builder().token(TOKEN).base_url(srv.base_url).base_file_url(srv.base_file_url).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(button))
    alice = srv.add_user("Alice", "alice")
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=10)
        try:
            srv.send_text(alice, "/start")
            [menu] = await srv.wait_for(lambda s: s.sent_messages(alice), timeout=10)
            assert menu.text == "Choose" and [b["text"] for b in menu.buttons] == ["Arm", "Disarm"]

            srv.press_button(alice, menu, text="Arm")
            await srv.wait_for(lambda s: s.message(alice.id, menu.message_id).text == "State: arm", timeout=10)
        finally:
            await app.updater.stop()
            await app.stop()

    query = seen[0].callback_query
    assert query.from_user.id == alice.id and query.data == "arm"
    assert query.message.message_id == menu.message_id and query.message.text == "Choose"
    assert query.message.reply_markup.inline_keyboard[0][1].callback_data == "disarm"
    assert [a.text for a in srv.callback_answers] == ["Armed"]
    assert srv.message(alice.id, menu.message_id).reply_markup is None


async def test_error_shapes_match_telegram(srv: BotApiServer, bot: Bot) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{srv.base_url}123:wrong/getMe") as response:
            assert response.status == 401
            assert await response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.post(f"{srv.base_url}{TOKEN}/noSuchMethod") as response:
            assert response.status == 404
            assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with http.get(f"{srv.base_url}{TOKEN}/GETME") as response:  # names are case-insensitive
            assert (await response.json())["result"]["is_bot"] is True

    # Bot.initialize() calls getMe, so a bot with a bad token fails at startup.
    with pytest.raises(InvalidToken, match="(?i)rejected by the server"):
        async with Bot("123:wrong", base_url=srv.base_url):
            pass
    with pytest.raises(InvalidToken):
        async with Bot("malformed", base_url=srv.base_url):
            pass
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")
    assert [c.outcome for c in srv.calls_to("nosuchmethod")] == ["unknown_method", "unknown_method"]


async def test_faults_rate_limit_server_error_drop_and_stall(srv: BotApiServer, bot: Bot) -> None:
    alice = srv.add_user("Alice")

    srv.faults.rate_limit(1, retry_after=7, methods=["sendMessage"])
    assert (await bot.get_me()).is_bot  # other methods are not affected
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(alice.id, "x")
    assert seconds(lambda: flood.value.retry_after) == 7

    srv.faults.fail_next(2, status=502)
    for _ in range(2):
        with pytest.raises(NetworkError, match="(?i)Bad Gateway"):
            await bot.send_message(alice.id, "x")
    assert srv.sent_messages(alice) == []  # failed calls do nothing
    assert (await bot.send_message(alice.id, "through")).text == "through"

    srv.faults.drop(1, methods="sendMessage")
    with pytest.raises(NetworkError, match="(?i)disconnected"):
        await bot.send_message(alice.id, "lost")
    srv.faults.drop(1, methods="sendMessage", after_execute=True)
    with pytest.raises(NetworkError):
        await bot.send_message(alice.id, "sent but unconfirmed")
    assert [m.text for m in srv.sent_messages(alice)] == ["through", "sent but unconfirmed"]

    srv.faults.stall(1, seconds=1.5, methods="sendMessage")
    with pytest.raises(TimedOut):
        await bot.send_message(alice.id, "slow", read_timeout=0.3)
    await srv.wait_for(lambda s: len(s.sent_messages(alice)) == 3, timeout=10)  # it still went out

    srv.faults.drop(1, methods="file")
    with pytest.raises(NetworkError):
        photo = await bot.send_photo(alice.id, val_images(1)[0])
        await (await bot.get_file(photo.photo[-1].file_id)).download_as_bytearray()
    assert srv.faults.pending == []
    assert [c.outcome for c in srv.calls_to("sendMessage")] == [
        "fault:retry_after", "fault:error", "fault:error", "ok", "fault:drop", "fault:drop", "fault:stall"
    ]


async def test_wait_for_times_out(srv: BotApiServer) -> None:
    with pytest.raises(TimeoutError):
        await srv.wait_for(lambda s: s.sent_messages(), timeout=0.2)


async def test_token_is_never_logged(srv: BotApiServer, bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    alice = srv.add_user("Alice")
    srv.faults.fail_next(1)
    with pytest.raises(NetworkError):
        await bot.get_me()
    await bot.send_message(alice.id, "hello")
    with pytest.raises(InvalidToken):
        async with Bot("123:wrong", base_url=srv.base_url):
            pass
    server_records = [r for r in caplog.records if r.name.startswith(("tests.support.botapi", "aiohttp"))]
    assert server_records  # the server does log its calls ...
    assert all(TOKEN not in r.getMessage() and "123:wrong" not in r.getMessage() for r in server_records)


def test_standalone_subprocess_with_control_client() -> None:
    """The subprocess mode used when the bot under test is itself a subprocess."""
    jpeg = val_images(1)[0]

    async def bot_side(base_url: str, base_file_url: str, user_id: int) -> bytes:
        async with Bot(TOKEN, base_url=base_url, base_file_url=base_file_url) as bot:
            [update] = await bot.get_updates(timeout=5)
            photo = update.message.photo[-1]
            data = bytes(await (await bot.get_file(photo.file_id)).download_as_bytearray())
            keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Ack", callback_data="ack")]])
            await bot.send_photo(user_id, data, caption="echo", reply_markup=keyboard)
            with pytest.raises(RetryAfter):
                await bot.send_message(user_id, "flood")
            return data

    with StandaloneServer(TOKEN) as server:
        control: ControlClient = server.control
        alice = control.add_user("Alice", "alice")
        control.send_photo(alice["id"], jpeg, caption="/arm")
        control.add_fault("retry_after", methods=["sendMessage"], retry_after=3)
        assert control.faults()[0]["retry_after"] == 3

        echoed = asyncio.run(bot_side(server.base_url, server.base_file_url, alice["id"]))
        assert echoed == jpeg

        [sent] = control.sent(chat_id=alice["id"], min_count=1, timeout=5)
        assert sent["caption"] == "echo" and sent["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ack"
        assert control.file_bytes(sent["media_file_id"]) == jpeg
        assert [c["method"] for c in control.calls()] == ["getMe", "getUpdates", "getFile", "sendPhoto", "sendMessage"]

        query_id = control.press_button(alice["id"], alice["id"], sent["message_id"], text="Ack")
        photo_update, button_update = control.pending_updates()  # the bot never confirmed the photo
        assert photo_update["message"]["caption"] == "/arm"
        assert button_update["callback_query"]["id"] == query_id
        assert button_update["callback_query"]["message"]["message_id"] == sent["message_id"]
        with pytest.raises(ControlError) as timeout:
            control.sent(chat_id=alice["id"], min_count=2, timeout=0.2)
        assert timeout.value.status == 408
    assert TOKEN not in server.stderr and "READY" not in server.stderr


async def test_an_outage_drops_every_call_for_its_seconds_and_cuts_a_waiting_poll(srv: BotApiServer, bot: Bot) -> None:
    alice = srv.add_user("Alice")
    waiting = asyncio.create_task(bot.get_updates(timeout=2, read_timeout=5))
    await asyncio.sleep(0.3)
    srv.faults.outage(2.5)
    with pytest.raises(NetworkError):
        await bot.send_message(alice.id, "during")
    with pytest.raises(NetworkError):  # began before the outage, answered during it
        await waiting
    await asyncio.sleep(2.5)
    assert (await bot.send_message(alice.id, "after")).text == "after"
    assert srv.faults.pending == []
    assert [m.text for m in srv.sent_messages(alice)] == ["after"]
