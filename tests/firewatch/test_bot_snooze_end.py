"""A snooze that runs out, end to end: ``firewatch run`` against the fake Bot API (real PTB
over HTTP), a fire coming into view while its camera is snoozed.

An operator snoozes the camera for a minute with /snooze before the fire starts: /status
shows the snooze once, under its camera; the fire is recorded, not pushed. When the minute is
up every operator's chat is told, and the fire, still burning, is pushed to every chat.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.bot_harness import TOKEN, run_cli
from tests.support.botapi import BotApiServer
from tests.support.daemon_rig import ADMIN_ID, Rig, fire_clip, repeat_frame
from tests.support.data import FIRE2, SHIPPED_DETECTOR, link_sequence

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(len(FIRE2) != 51 or not SHIPPED_DETECTOR.is_file(),
                       reason="needs the shared fire2_mp4 frames and the shipped detector"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    root = tmp_path_factory.mktemp("snooze")
    camera = root / "camera"
    # ~8 s of the clip's fire-free start, forwards and back (a still frame would read as
    # frozen), then the clip, whose fire then stays in view ~90 s.
    quiet = FIRE2[:28]
    link_sequence(camera, quiet + quiet[::-1] + quiet)
    repeat_frame(camera, FIRE2[30], fire_clip(camera, start=3 * len(quiet)), 900)
    async with BotApiServer(token=TOKEN) as srv:
        r = Rig.create(srv, root, camera, detector_model=SHIPPED_DETECTOR)
        try:
            yield r
        finally:
            await r.close()


async def ask(rig: Rig, text: str) -> str:
    before = len(rig.srv.sent_messages(rig.admin))
    rig.srv.send_text(rig.admin, text)
    found = await rig.srv.wait_for(lambda s: [m for m in s.sent_messages(rig.admin)[before:]
                                              if not (m.text or "").startswith(("🔕", "🔔"))], 20)
    return found[0].text or ""


async def test_a_snooze_that_runs_out_tells_everyone_and_pushes_the_fire(rig: Rig) -> None:
    added = await run_cli(["operators", "add", "--user-id", str(ADMIN_ID), "--name", "Ada", "--admin"],
                          rig.env, rig.root)
    assert added.returncode == 0, added.output
    await rig.start()
    assert (await ask(rig, "/snooze yard 1m")).startswith("yard snoozed until ")
    await rig.srv.wait_for(lambda s: all(any(t.startswith("🔕 Ada snoozed yard until") for t in rig.texts(c))
                                         for c in rig.chats), 20)
    status = await ask(rig, "/status")
    assert status.count("snoozed") == 1, status  # once, under its camera
    lines = status.splitlines()
    camera = next(i for i, line in enumerate(lines) if line.startswith("📷 yard: "))
    assert lines[camera + 1].startswith("🔕 yard snoozed by Ada until") and "min left)" in lines[camera + 1]

    # The fire starts while the camera is snoozed: recorded, not pushed.
    (alert,) = await rig.srv.wait_for(lambda s: rig.store.open_alerts(), 60)
    assert not alert.pushed and rig.alert_messages(rig.admin) == rig.alert_messages(rig.group) == []

    # The minute runs out (the job looks every 15 s): everyone is told, the fire is pushed.
    await rig.srv.wait_for(lambda s: all(any(t.startswith("🔔 The snooze on yard is over") for t in rig.texts(c))
                                         for c in rig.chats), 90)
    await rig.srv.wait_for(lambda s: all(rig.alert_ids(c) == [alert.id] for c in rig.chats), 20)
    for chat in rig.chats:
        assert "Cleared" not in (rig.alert_messages(chat)[0].caption or "")
    assert rig.store.get_alert(alert.id).pushed  # type: ignore[union-attr]
    assert "snoozed" not in await ask(rig, "/status")
