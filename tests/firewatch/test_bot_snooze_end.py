"""A snooze that runs out, end to end: ``firewatch run`` against the fake Bot API (real PTB
over HTTP), with a fire burning in view.

Disarmed, the fire is recorded and not pushed. An operator snoozes the camera for a minute
with /snooze, then arms by selfie: the fire stays held back, since its camera is snoozed, and
/status shows the snooze once, under its camera. When the minute is up every operator's chat
is told, and the fire, still burning, is pushed to every chat.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.bot_harness import TOKEN, run_cli
from tests.support.botapi import BotApiServer, Message
from tests.support.daemon_rig import ADMIN_ID, Rig
from tests.support.data import FIRE2, KNN, SHIPPED_DETECTOR, link_sequence

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(len(FIRE2) != 51 or not SHIPPED_DETECTOR.is_file() or not KNN.is_dir(),
                       reason="needs the shared fire2_mp4 frames, faces and the shipped detector"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    root = tmp_path_factory.mktemp("snooze")
    camera = root / "camera"
    # The clip, then its flames forwards and back for two minutes: a fire that keeps moving
    # like one (a still frame would be cleared by the temporal verification).
    flames = FIRE2[28:]
    link_sequence(camera, FIRE2 + (flames[::-1][1:] + flames[1:]) * 28)
    async with BotApiServer(token=TOKEN) as srv:
        r = Rig.create(srv, root, camera, detector_model=SHIPPED_DETECTOR)
        try:
            yield r
        finally:
            await r.close()


async def reply_to(rig: Rig, send) -> Message:  # type: ignore[no-untyped-def]
    """Do ``send()`` as Ada; the bot's next answer in her chat (not a notice to every chat)."""
    before = len(rig.srv.sent_messages(rig.admin))
    send()
    found = await rig.srv.wait_for(lambda s: [m for m in s.sent_messages(rig.admin)[before:]
                                              if not (m.text or "").startswith(("🔕", "🔔"))], 20)
    return found[0]


async def ask(rig: Rig, text: str) -> str:
    return (await reply_to(rig, lambda: rig.srv.send_text(rig.admin, text))).text or ""


async def test_a_snooze_that_runs_out_tells_everyone_and_pushes_the_fire(rig: Rig) -> None:
    for args in (["operators", "add", "--user-id", str(ADMIN_ID), "--name", "Ada", "--admin"],
                 ["enroll", "--user-id", str(ADMIN_ID), "--name", "Ada", str(KNN / "train" / "obama" / "obama.jpg")]):
        done = await run_cli(args, rig.env, rig.root)
        assert done.returncode == 0, done.output
    rig.store.set_armed(False, user_id=None, method="cli")
    await rig.start()
    alert = (await rig.srv.wait_for(lambda s: rig.store.open_alerts(), 90))[0]

    assert (await ask(rig, "/snooze yard 1m")).startswith("yard snoozed until ")
    await rig.srv.wait_for(lambda s: all(any(t.startswith("🔕 Ada snoozed yard until") for t in rig.texts(c))
                                         for c in rig.chats), 20)
    armed = await reply_to(rig, lambda: rig.srv.send_photo(
        rig.admin, (KNN / "train" / "obama" / "obama2.jpg").read_bytes(), caption="arm"))
    assert armed.text == "✅ Armed. Alerts will be pushed."
    status = await ask(rig, "/status")
    assert status.count("snoozed") == 1, status  # once, under its camera
    lines = status.splitlines()
    camera = next(i for i, line in enumerate(lines) if line.startswith("📷 yard: live"))
    assert lines[camera + 1].startswith("🔕 yard snoozed by Ada until") and "min left)" in lines[camera + 1]
    await asyncio.sleep(2)
    assert rig.alert_messages(rig.admin) == rig.alert_messages(rig.group) == []  # armed, but snoozed
    assert rig.store.get_alert(alert.id).cleared_at is None  # type: ignore[union-attr]

    # The minute runs out (the job looks every 15 s): everyone is told, the fire is pushed.
    await rig.srv.wait_for(lambda s: all(any(t.startswith("🔔 The snooze on yard is over") for t in rig.texts(c))
                                         for c in rig.chats), 90)
    await rig.srv.wait_for(lambda s: all(alert.id in rig.alert_ids(c) for c in rig.chats), 20)
    for chat in rig.chats:
        assert "Cleared" not in (rig.alert_messages(chat)[0].caption or "")
    assert rig.store.get_alert(alert.id).pushed  # type: ignore[union-attr]
    assert "snoozed" not in await ask(rig, "/status")
