"""Security and bad input against one real ``firewatch run`` daemon (table-driven).

Strangers get "Not authorised." for every command and button and nothing for other
messages; operators sending odd commands, forged button data or odd selfie files get a
clear reply and the daemon carries on; 3 failed selfies (configured here, default 5) lock
a user out; the token appears in no log, reply or database row.

Every selfie case is sent by its own operator (same face template: Barack's, enrolled
with the CLI), so that one failure each never reaches the lockout threshold.
The camera is an empty folder: no vision work, the tests are about the bot.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image

from tests.support.bot_harness import TOKEN, run_cli
from tests.support.botapi import BotApiServer, Message, User
from tests.support.data import FACES, KNN, NO_FACE, SHIPPED_DETECTOR, identity_photos
from tests.support.daemon_rig import ADMIN_ID, Rig

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not FACES.is_dir() or not SHIPPED_DETECTOR.is_file(), reason="shared data missing"),
]

OBAMA = KNN / "train" / "obama" / "obama.jpg"
STRANGER_ID, GROUP_STRANGER_ID, LOCK_ID, REPLAY_ID = 6666, 6667, 7000, 7001
NOT_AUTHORISED = "Not authorised."
LOCKOUT_FAILURES = 3
QUIET_S = 1.5  # no reply within this long: nothing is coming (the bot answers in ~0.1 s)


@dataclass
class World:
    rig: Rig
    stranger: User
    op_ids: list[int]


def _selfie_user(i: int) -> int:
    return 5000 + i


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("security")
    camera = root / "camera"
    camera.mkdir()
    async with BotApiServer(token=TOKEN) as srv:
        rig = Rig.create(srv, root, camera, detector_model=SHIPPED_DETECTOR,
                         lockout_failures=LOCKOUT_FAILURES)
        enrolled = await run_cli(["enroll", "--create", "--user-id", str(LOCK_ID), "--name", "Lock", str(OBAMA)],
                                 rig.env, root)
        assert enrolled.returncode == 0, enrolled.output
        # More operators with the same face template, straight into the database.
        (template,) = rig.store.face_templates(LOCK_ID)
        ids = [_selfie_user(i) for i in range(len(SELFIE_CASES))] + [REPLAY_ID]
        for uid in ids:
            rig.store.add_operator(uid, f"Op{uid}")
            rig.store.add_face_template(uid, template, photo_hash=f"copied-{uid}")
            srv.add_user(f"Op{uid}", user_id=uid)
        srv.add_user("Lock", user_id=LOCK_ID)
        stranger = srv.add_user("Eve", user_id=STRANGER_ID)
        srv.add_user("Mallory", user_id=GROUP_STRANGER_ID)
        await rig.start()
        try:
            yield World(rig, stranger, ids)
        finally:
            await rig.close()


def bot_messages(w: World, chat_id: int) -> list[Message]:
    return w.rig.srv.sent_messages(chat_id)


async def replies_to(w: World, chat_id: int, act: Callable[[], object], expect: int = 1) -> list[str]:
    """Do ``act`` and return the bot's new messages in ``chat_id`` (``expect`` 0: wait QUIET_S)."""
    before = len(bot_messages(w, chat_id))
    act()
    if expect:
        await w.rig.srv.wait_for(lambda s: len(bot_messages(w, chat_id)) >= before + expect, 20)
    await asyncio.sleep(QUIET_S if not expect else 0.3)
    return [m.text or m.caption or "" for m in bot_messages(w, chat_id)[before:]]


def forge_callback(w: World, user: User | int, message: Message, data: str) -> None:
    """A callback query with any data, as a modified client could send it."""
    srv = w.rig.srv
    presser = srv.users[user] if isinstance(user, int) else user
    srv.callback_queries[qid := f"forged{len(srv.callback_answers)}{data[:8]}"] = message
    srv.push_update("callback_query", {
        "id": qid, "from": presser.to_api(), "message": message.to_api(),
        "chat_instance": "1", "data": data,
    })


async def callback_answer(w: World, user: User | int, data: str) -> str | None:
    srv = w.rig.srv
    target = bot_messages(w, w.rig.admin.id) or bot_messages(w, user if isinstance(user, int) else user.id)
    assert target, "no bot message to press a button on"
    seen = len(srv.callback_answers)
    forge_callback(w, user, target[-1], data)
    await srv.wait_for(lambda s: len(s.callback_answers) > seen, 15)
    return srv.callback_answers[seen].text


# -- images made here ---------------------------------------------------------------------


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _jpeg(image: Image.Image, quality: int = 75) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def alex() -> Path:
    return identity_photos("alex_lacamoire")[0]


# -- strangers ----------------------------------------------------------------------------

STRANGER_COMMANDS = ["/start", "/help", "/status", "/history", "/history 7d fire", "/alert 1", "/alert abc",
                     "/snapshot", "/arm", "/disarm", "/cancel", f"/enroll {STRANGER_ID} Eve", "/nonsense",
                     "/enroll 1001 Ada"]


@pytest.mark.parametrize("text", STRANGER_COMMANDS)
async def test_stranger_command_is_refused(world: World, text: str) -> None:
    got = await replies_to(world, STRANGER_ID, lambda: world.rig.srv.send_text(world.stranger, text))
    if text == "/start":  # it also says how to get access, and nothing about the system
        assert len(got) == 1 and got[0].startswith(f"{NOT_AUTHORISED} To get access") and str(STRANGER_ID) in got[0]
    else:
        assert got == [NOT_AUTHORISED]


STRANGER_MEDIA: dict[str, Callable[[BotApiServer, User], object]] = {
    "photo captioned /arm": lambda s, u: s.send_photo(u, OBAMA.read_bytes(), caption="/arm"),
    "photo captioned /disarm": lambda s, u: s.send_photo(u, OBAMA.read_bytes(), caption="/disarm"),
}


@pytest.mark.parametrize("case", list(STRANGER_MEDIA))
async def test_stranger_selfie_is_refused(world: World, case: str) -> None:
    got = await replies_to(world, STRANGER_ID, lambda: STRANGER_MEDIA[case](world.rig.srv, world.stranger))
    assert got == [NOT_AUTHORISED]
    assert world.rig.store.arm_state().armed


STRANGER_SILENT: dict[str, Callable[[BotApiServer, User], object]] = {
    "text": lambda s, u: s.send_text(u, "hello, arm please"),
    "photo": lambda s, u: s.send_photo(u, OBAMA.read_bytes()),
    "document": lambda s, u: s.send_document(u, OBAMA.read_bytes(), "me.jpg", "image/jpeg"),
    "sticker": lambda s, u: s.send_sticker(u, _png(Image.new("RGBA", (64, 64)))),
    "video": lambda s, u: s.send_video(u, b"\x00\x00\x00\x18ftypmp42" + bytes(1000)),
}


@pytest.mark.parametrize("case", list(STRANGER_SILENT))
async def test_stranger_other_messages_get_one_refusal(world: World, case: str) -> None:
    # Every private message is answered (a silent bot looks broken), and with nothing more.
    got = await replies_to(world, STRANGER_ID, lambda: STRANGER_SILENT[case](world.rig.srv, world.stranger))
    assert got == [NOT_AUTHORISED]
    assert world.rig.store.arm_state().armed


@pytest.mark.parametrize("text", ["/status", "/history", "/arm", "/snapshot"])
async def test_stranger_in_an_unknown_group_gets_nothing(world: World, text: str) -> None:
    srv = world.rig.srv
    group = srv.add_group(f"strangers {text}")
    got = await replies_to(world, group.id, lambda: srv.send_text(GROUP_STRANGER_ID, text, chat=group), expect=0)
    assert got == []


async def test_a_member_is_answered_only_in_private_and_alert_chats(world: World) -> None:
    srv = world.rig.srv
    elsewhere = srv.add_group("family chat")
    got = await replies_to(world, elsewhere.id, lambda: srv.send_text(ADMIN_ID, "/status", chat=elsewhere),
                           expect=0)
    assert got == []  # the group's members would otherwise see the system's state
    group = world.rig.group  # configured in FIREWATCH_ALERT_CHAT_IDS
    got = await replies_to(world, group.id, lambda: srv.send_text(ADMIN_ID, "/status", chat=group))
    assert NOT_AUTHORISED not in got and any("yard" in text for text in got), got


@pytest.mark.parametrize("data", ["ack:1", "fa:1", "snooze:1", "hist:0:5:0:", "ack:999999", "bogus"])
async def test_stranger_button_press_is_refused(world: World, data: str) -> None:
    answer = await callback_answer(world, world.stranger, data)
    assert answer in (NOT_AUTHORISED, "Unknown button.")  # an unknown button says nothing either
    assert world.rig.store.snoozed_until("yard") is None


# -- operators: odd commands and forged buttons -----------------------------------------------

OPERATOR_COMMANDS = [
    ("/alert abc", "Usage: /alert ID (a number, see /history)."),
    ("/alert -5", "Usage: /alert ID (a number, see /history)."),
    ("/alert 99999999999999999999999", "Usage: /alert ID (a number, see /history)."),
    ("/alert ١٢", "Usage: /alert ID (a number, see /history)."),  # Arabic-Indic digits
    ("/alert 1 2", "Usage: /alert ID (a number, see /history)."),
    ("/alert " + "9" * 4000, "Usage: /alert ID (a number, see /history)."),
    ("/alert 0", "No alert #0."),
    ("/alert 999999999999", "No alert #999999999999."),
    ("/history -5", "Usage: /history"),
    ("/history 0", "N must be between"),
    ("/history 99999999999999999999", "N must be between"),
    ("/history 99999d", "out of range"),
    ("/history 🔥", "Usage: /history"),
    ("/history 7d fire extra", "too many arguments"),
    ("/history 7D SMOKE", "No alerts."),
    ("/frobnicate", "Unknown command. /help lists what I can do."),
    ("/enroll 1234 Bob", NOT_AUTHORISED),  # operators are not admins
]


@pytest.mark.parametrize(("text", "expected"), OPERATOR_COMMANDS)
async def test_operator_odd_command_gets_a_clear_reply(world: World, text: str, expected: str) -> None:
    uid = world.op_ids[-1]
    (got,) = await replies_to(world, uid, lambda: world.rig.srv.send_text(uid, text))
    assert expected in got, got


FORGED = [
    ("ack:999999", "Unknown or expired alert."),
    ("fa:0", "Unknown or expired alert."),
    ("snooze:-1", "Unknown or expired alert."),
    ("ack:1:2", "Unknown or expired alert."),
    ("ack:9999999999999", "Unknown or expired alert."),
    ("ack:١", "Unknown or expired alert."),
    ("bogus", "Unknown button."),
    ("hist:x", "Unknown button."),
    ("hist:0:5:99999999999999999999:", "Unknown button."),
]


@pytest.mark.parametrize(("data", "expected"), FORGED)
async def test_forged_button_data_is_answered_and_ignored(world: World, data: str, expected: str) -> None:
    answer = await callback_answer(world, world.op_ids[-1], data)
    assert answer == expected
    assert world.rig.daemon.running


# -- selfies: odd files ------------------------------------------------------------------------


def _corrupt_photo(s: BotApiServer, uid: int) -> object:
    """JPEG magic then garbage, as photo sizes (Telegram would not accept it; the fake stores bytes)."""
    data = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
    stored = s.store_file(data, "photos", "jpg", "image/jpeg", width=640, height=480)
    s.photo_sets[stored.file_id] = [stored]
    return s._user_message(uid, None, {"photo": [stored.photo_size()]}, media=stored)


SELFIE_CASES: dict[str, tuple[Callable[[BotApiServer, int], object], str]] = {
    "document": (lambda s, u: s.send_document(u, OBAMA.read_bytes(), "me.jpg", "image/jpeg"),
                 "Send the selfie as a photo, not as a file. Or /cancel."),
    "sticker": (lambda s, u: s.send_sticker(u, _png(Image.new("RGBA", (64, 64)))),
                "I need a selfie photo. Or /cancel."),
    "video": (lambda s, u: s.send_video(u, b"\x00\x00\x00\x18ftypmp42" + bytes(1000)),
              "I need a selfie photo. Or /cancel."),
    "text": (lambda s, u: s.send_text(u, "here I am"), "I need a selfie photo. Or /cancel."),
    "corrupt bytes": (_corrupt_photo, "I couldn't read that image"),
    "50 megapixels": (lambda s, u: s.send_photo(u, _jpeg(Image.new("RGB", (8660, 5780), (90, 90, 90)), 30)),
                      "No face found"),
    "1x1": (lambda s, u: s.send_photo(u, _png(Image.new("RGB", (1, 1)))), "That image is too small (1×1 px)"),
    "32-bit PNG": (lambda s, u: s.send_photo(u, _png(Image.open(alex()).convert("RGBA"))),
                   "Your face does not match"),
    "grayscale": (lambda s, u: s.send_photo(u, _jpeg(Image.open(alex()).convert("L"), 90)),
                  "Your face does not match"),
    "no face": (lambda s, u: s.send_photo(u, NO_FACE.read_bytes()), "No face found"),
    "two faces": (lambda s, u: s.send_photo(u, (FACES / "examples" / "two_people.jpg").read_bytes()),
                  "I see 2 faces"),
    "another operator's face": (lambda s, u: s.send_photo(u, (KNN / "train" / "biden" / "biden.jpg").read_bytes()),
                                "Your face does not match"),
    "forwarded own face": (lambda s, u: s.send_photo(u, (KNN / "test" / "obama1.jpg").read_bytes(),
                                                     forward_origin={"type": "hidden_user",
                                                                     "sender_user_name": "x"}),
                           "Forwarded photos are not accepted"),
}


@pytest.mark.parametrize("case", list(SELFIE_CASES))
async def test_odd_selfie_gets_a_clear_reply(world: World, case: str) -> None:
    uid = world.op_ids[list(SELFIE_CASES).index(case)]
    srv = world.rig.srv
    prompt = await replies_to(world, uid, lambda: srv.send_text(uid, "/disarm"))
    assert prompt[0].startswith("Send a selfie to disarm")
    send, expected = SELFIE_CASES[case]
    (got,) = await replies_to(world, uid, lambda: send(srv, uid))
    assert got.startswith(expected), got
    assert world.rig.store.arm_state().armed
    assert world.rig.daemon.running


# -- replay and lockout ------------------------------------------------------------------------


async def test_same_photo_twice_is_refused(world: World) -> None:
    srv = world.rig.srv
    photo = (KNN / "train" / "obama" / "obama2.jpg").read_bytes()
    await replies_to(world, REPLAY_ID, lambda: srv.send_text(REPLAY_ID, "/disarm"))
    (first,) = await replies_to(world, REPLAY_ID, lambda: srv.send_photo(REPLAY_ID, photo))
    assert first.startswith("🔕 Disarmed.")
    await replies_to(world, REPLAY_ID, lambda: srv.send_text(REPLAY_ID, "/arm"))
    (again,) = await replies_to(world, REPLAY_ID, lambda: srv.send_photo(REPLAY_ID, photo))
    assert again == "This photo was already used. Take a new selfie."
    assert not world.rig.store.arm_state().armed
    fresh = (FACES / "tests" / "test_images" / "obama3.jpg").read_bytes()
    (armed,) = await replies_to(world, REPLAY_ID, lambda: srv.send_photo(REPLAY_ID, fresh, caption="/arm"))
    assert armed == "✅ Armed. Alerts will be pushed."


async def test_repeated_failures_lock_out_audit_and_tell_the_admins(world: World) -> None:
    srv = world.rig.srv
    wrong = identity_photos("kit_harington")[:LOCKOUT_FAILURES]
    replies = []
    for photo in wrong:
        await replies_to(world, LOCK_ID, lambda: srv.send_text(LOCK_ID, "/disarm"))
        data = photo.read_bytes()
        replies += await replies_to(world, LOCK_ID, lambda: srv.send_photo(LOCK_ID, data))  # noqa: B023 - called at once
    assert all(r.startswith("Your face does not match") for r in replies)
    assert "Too many failed attempts: arm/disarm is locked until" in replies[-1]
    assert not any("locked" in r for r in replies[:-1])
    await srv.wait_for(lambda s: any(f"({LOCK_ID}) is locked out" in (m.text or "")
                                     for m in bot_messages(world, ADMIN_ID)), 15)
    # Locked out, /disarm says so (with the end) before asking for any selfie, and even the
    # right face sent with the command is refused.
    (told,) = await replies_to(world, LOCK_ID, lambda: srv.send_text(LOCK_ID, "/disarm"))
    assert told.startswith("Arm/disarm is locked after repeated failed selfies until")
    (locked,) = await replies_to(world, LOCK_ID, lambda: srv.send_photo(
        LOCK_ID, (FACES / "tests" / "test_images" / "obama_partial_face.jpg").read_bytes(), caption="/disarm"))
    assert locked.startswith("Arm/disarm is locked")
    audit = [a for a in world.rig.store.audit_log() if a.telegram_user_id == LOCK_ID]
    assert [a.detail for a in audit][::-1][:LOCKOUT_FAILURES] == ["face does not match"] * LOCKOUT_FAILURES
    assert world.rig.store.arm_state().armed


# -- secrets ------------------------------------------------------------------------------------


async def test_token_in_no_log_reply_or_database(world: World) -> None:
    rig = world.rig
    assert await rig.daemon.stop() == 0
    secret = TOKEN.split(":", 1)[1]
    assert secret not in rig.all_output()
    assert not [m for m in rig.srv.sent_messages() if secret in (m.text or m.caption or "")]
    assert secret.encode() not in (rig.root / "data" / "firewatch.db").read_bytes()
    for log in (rig.root / "data").rglob("*.log"):
        assert secret not in log.read_text(errors="replace")
    errors = [line for line in rig.all_output().splitlines() if "Traceback" in line]
    assert not errors, rig.all_output()[-3000:]
