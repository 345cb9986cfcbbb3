"""Issue 19's journeys end to end: ``firewatch run`` against the fake Bot API, real PTB over
HTTP, one daemon after another on one database, a fire held in view for a minute.

In order: a fire starts while disarmed (recorded, not pushed); a selfie captioned "arm"
re-arms and the burning fire is pushed at once; a snooze is visible everywhere and ended by
its button; the daemon is killed with the fire burning and restarted with it still in view:
the alert continues, never "Cleared", no second alert. Around it, every private message
gets an answer and strangers learn how to get access.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.bot_harness import TOKEN, run_cli
from tests.support.botapi import BotApiServer, Message, User
from tests.support.daemon_rig import ADMIN_ID, Rig, fire_clip, repeat_frame
from tests.support.data import FIRE2, KNN, SHIPPED_DETECTOR

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(len(FIRE2) != 51 or not SHIPPED_DETECTOR.is_file() or not KNN.is_dir(),
                       reason="needs the shared fire2_mp4 frames, faces and the shipped detector"),
]
STRANGER_ID = 6666


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    root = tmp_path_factory.mktemp("journeys")
    camera = root / "camera"
    camera.mkdir()
    repeat_frame(camera, FIRE2[30], fire_clip(camera), 900)  # the fire stays in view ~95 s
    async with BotApiServer(token=TOKEN) as srv:
        r = Rig.create(srv, root, camera, detector_model=SHIPPED_DETECTOR)
        r.stranger = srv.add_user("Eve", user_id=STRANGER_ID)  # type: ignore[attr-defined]
        try:
            yield r
        finally:
            await r.close()
            assert TOKEN.split(":", 1)[1] not in r.all_output(), "the bot token was logged"


async def reply_to(rig: Rig, user: User, send, timeout: float = 20) -> Message:  # type: ignore[no-untyped-def]
    """Do ``send()`` as ``user``; the bot's next message in their chat that is not a notice."""
    before = len(rig.srv.sent_messages(user))
    send()
    found = await rig.srv.wait_for(lambda s: [m for m in s.sent_messages(user)[before:] if not _notice(m)], timeout)
    return found[0]


def _notice(m: Message) -> bool:
    text = m.text or ""
    return "Alert #" in (m.caption or text) or text.startswith(("🔕", "🔔", "👤"))


async def ask(rig: Rig, user: User, text: str) -> str:
    return (await reply_to(rig, user, lambda: rig.srv.send_text(user, text))).text or ""


async def test_strangers_learn_their_id_and_admins_hear_once(rig: Rig) -> None:
    await run_cli(["operators", "add", "--user-id", str(ADMIN_ID), "--name", "Ada", "--admin"], rig.env, rig.root)
    enrolled = await run_cli(["enroll", "--user-id", str(ADMIN_ID), "--name", "Ada",
                              str(KNN / "train" / "obama" / "obama.jpg")], rig.env, rig.root)
    assert enrolled.returncode == 0, enrolled.output
    rig.store.set_armed(False, user_id=None, method="cli")
    await rig.start()
    eve = rig.stranger  # type: ignore[attr-defined]
    first = await ask(rig, eve, "/start")
    assert first.startswith("Not authorised. To get access") and str(STRANGER_ID) in first
    assert f"firewatch operators add --user-id {STRANGER_ID} --name Eve" in first
    assert f"/enroll {STRANGER_ID} Eve" in first
    await ask(rig, eve, "/start")
    await asyncio.sleep(1.5)
    asked = [m for m in rig.srv.sent_messages(rig.admin) if "asked for access" in (m.text or "")]
    assert len(asked) == 1 and str(STRANGER_ID) in asked[0].text  # type: ignore[operator]
    # In a group it does not know the bot says nothing; commands for other bots are not its own.
    other = rig.srv.add_group("neighbours")
    for text in ["/start", "/status", "/help@other_bot"]:
        rig.srv.send_text(rig.admin, text, chat=other)
    rig.srv.send_text(rig.admin, "/help@other_bot", chat=rig.group)
    await asyncio.sleep(2)
    assert rig.srv.sent_messages(other) == []
    assert not [m for m in rig.srv.sent_messages(rig.group) if "Unknown command" in (m.text or "")]


async def test_every_private_message_gets_an_answer(rig: Rig) -> None:
    ada = rig.admin
    assert await ask(rig, ada, "/cancel") == "Nothing to cancel."
    assert (await ask(rig, ada, "hello?")).startswith("I did not understand that.")
    doc = await reply_to(rig, ada, lambda: rig.srv.send_document(
        ada, b"\xff\xd8 not really", file_name="me.jpg", mime_type="image/jpeg", caption="/disarm"))
    assert doc.text == "Send the selfie as a photo, not as a file. Or /cancel."
    assert await ask(rig, ada, "/cancel") == "Cancelled."
    bare = await reply_to(rig, ada, lambda: rig.srv.send_photo(ada, (KNN / "test" / "obama1.jpg").read_bytes()))
    assert bare.text == "Arm or disarm?" and [b["text"] for b in bare.buttons] == ["Arm", "Disarm"]
    assert await ask(rig, ada, "/cancel") == "Cancelled."
    # An edited message is not a new command.
    sent = rig.srv.send_text(ada, "/status")
    await rig.srv.wait_for(lambda s: len(s.sent_messages(ada)) and "Armed" in (s.sent_messages(ada)[-1].text or "")
                           or "Disarmed" in (s.sent_messages(ada)[-1].text or ""), 20)
    before = len(rig.srv.sent_messages(ada))
    edited = {**sent.to_api(), "text": "/disarm", "edit_date": sent.date + 1}
    rig.srv.push_update("edited_message", edited)
    await asyncio.sleep(2)
    assert len(rig.srv.sent_messages(ada)) == before


async def test_arming_pushes_the_fire_that_burns(rig: Rig) -> None:
    await rig.srv.wait_for(lambda s: rig.store.open_alerts(), 90)
    assert rig.alert_messages(rig.group) == []  # disarmed: recorded, not pushed
    ada = rig.admin
    armed = await reply_to(rig, ada, lambda: rig.srv.send_photo(
        ada, (KNN / "train" / "obama" / "obama2.jpg").read_bytes(), caption="arm please"))
    assert armed.text == "✅ Armed. Alerts will be pushed."
    await rig.srv.wait_for(lambda s: all(rig.alert_messages(c) for c in rig.chats), 20)
    for chat in rig.chats:
        assert "Cleared" not in (rig.alert_messages(chat)[0].caption or "")


async def test_snooze_is_visible_and_ended_by_its_button(rig: Rig) -> None:
    ada, message = rig.admin, rig.alert_messages(rig.group)[0]
    rig.srv.press_button(ada, message, text="Snooze 30 min")
    await rig.srv.wait_for(lambda s: "Camera snoozed by Ada" in (rig.alert_messages(rig.group)[0].caption or ""), 20)
    await rig.srv.wait_for(lambda s: any((m.text or "").startswith("🔕 Ada snoozed yard until")
                                         for m in s.sent_messages(rig.group)), 20)
    status = await ask(rig, ada, "/status")
    assert "🔕 yard snoozed by Ada until" in status and "min left)" in status
    message = rig.alert_messages(rig.group)[0]
    assert [b["text"] for b in message.buttons][-1] == "End snooze"
    rig.srv.press_button(ada, message, text="End snooze")
    await rig.srv.wait_for(lambda s: "Snooze ended by Ada" in (rig.alert_messages(rig.group)[0].caption or ""), 20)
    await rig.srv.wait_for(lambda s: any("ended the snooze on yard" in (m.text or "")
                                         for m in s.sent_messages(rig.group)), 20)
    assert "snoozed by" not in await ask(rig, ada, "/status")


async def test_false_alarm_asks_first_and_a_real_fire_takes_it_back(rig: Rig) -> None:
    ada = rig.admin
    message = rig.alert_messages(ada)[0]
    rig.srv.press_button(ada, message, text="False alarm")
    await rig.srv.wait_for(lambda s: [b["text"] for b in rig.alert_messages(ada)[0].buttons]
                           == ["Yes, it is a false alarm", "No, keep the alert"], 20)
    rig.srv.press_button(ada, rig.alert_messages(ada)[0], text="Yes, it is a false alarm")
    await rig.srv.wait_for(lambda s: all("false alarm by Ada" in (rig.alert_messages(c)[0].caption or "")
                                         for c in rig.chats), 20)
    negatives = rig.root / "data" / "hard-negatives"
    assert list(negatives.glob("alert-*"))
    rig.srv.press_button(ada, rig.alert_messages(rig.group)[0], text="It is a real fire")
    await rig.srv.wait_for(lambda s: "Confirmed as a real fire by Ada" in (rig.alert_messages(rig.group)[0].caption or ""), 20)
    assert not list(negatives.glob("alert-*"))
    caption = rig.alert_messages(rig.group)[0].caption or ""
    assert caption.index("false alarm by Ada") < caption.index("real fire by Ada")  # the history, in order


async def test_a_crash_during_the_fire_does_not_declare_it_out(rig: Rig) -> None:
    ids = {c.id: rig.alert_ids(c) for c in rig.chats}
    total = rig.store.recent_alerts()[1]
    os.kill(rig.daemon.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
    await rig.daemon.proc.wait()  # type: ignore[union-attr]
    await rig.start()
    await rig.daemon.wait_for_log("continues after the restart", timeout=60)
    await asyncio.sleep(3)
    for chat in rig.chats:
        assert rig.alert_ids(chat) == ids[chat.id], "a second alert for the same fire"
        assert "Cleared" not in (rig.alert_messages(chat)[0].caption or "")
    assert rig.store.recent_alerts()[1] == total
    assert rig.store.open_alerts()


async def test_audit_for_admins(rig: Rig) -> None:
    text = await ask(rig, rig.admin, "/audit 5")
    assert text.startswith("Last ") and "Ada arm by selfie: ✅ (distance" in text
    assert await ask(rig, rig.stranger, "/audit") == "Not authorised."  # type: ignore[attr-defined]


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(rig: Rig) -> None:
    daemon = rig.daemon
    before = len(daemon.output().splitlines())
    # Longer than a long poll (10 s), so that the poll waiting when it began fails too.
    rig.srv.faults.outage(12)
    await daemon.wait_for_log("Telegram reachable again after", timeout=60)
    lines = daemon.output().splitlines()[before:]
    started = [line for line in lines if "Telegram unreachable" in line]
    ended = [line for line in lines if "Telegram reachable again after" in line]
    assert len(started) == 1 and len(ended) == 1, "\n".join(lines)
    assert int(ended[0].rsplit("after ", 1)[1].split(" s")[0]) >= 2
    assert "Traceback" not in "\n".join(lines)
    assert not [line for line in lines if "Exception happened while polling" in line or "handler error" in line]
    assert "Armed" in await ask(rig, rig.admin, "/status")  # polling goes on after it


async def test_selfies_in_the_group_are_refused_and_not_matched(rig: Rig) -> None:
    ada, group = rig.admin, rig.group
    armed = rig.store.arm_state().armed
    attempts = len(rig.store.audit_log(50))
    private_only = "Selfies are accepted in private chats only: write to me directly, not in the group."
    for send in (lambda: rig.srv.send_text(ada, "/disarm", chat=group),
                 lambda: rig.srv.send_photo(ada, (KNN / "train" / "obama" / "obama2.jpg").read_bytes(),
                                            chat=group, caption="/disarm")):
        before = len(rig.srv.sent_messages(group))
        send()
        found = await rig.srv.wait_for(
            lambda s: [m for m in s.sent_messages(group)[before:] if not _notice(m)], 20)
        assert found[0].text == private_only
    await asyncio.sleep(1)
    assert rig.store.arm_state().armed == armed
    assert len(rig.store.audit_log(50)) == attempts  # no face was matched
