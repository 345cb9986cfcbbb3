"""Two cameras from a configuration file, end to end: ``firewatch run`` as a real subprocess
against the fake Bot API (tests/support/botapi), playing two shared videos at once.

The kitchen plays a clip with fire in every frame, the hall a fire-free one. The story runs
in file order like the bot's other end-to-end suite: one alert, for the kitchen only;
/status and /snapshot per camera; "False alarm", then "Ignore this area"; a restart on the
same database, after which /zones still lists the zone and the same fire no longer alerts.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import pytest_asyncio

from tests.support.bot_harness import TOKEN
from tests.support.botapi import BotApiServer, Message
from tests.support.daemon_rig import ALERT_RE, Rig
from tests.support.data import DATA, SHIPPED_DETECTOR

VIDEOS = DATA / "videos"
FIRE_VIDEO = VIDEOS / "navid__fire4.mp4"  # 101 frames at 10 FPS, fire in every one
QUIET_VIDEO = VIDEOS / "intel__one-by-one-person-detection.mp4"  # 1394 frames, people, no fire
FIRE_CAMERA, QUIET_CAMERA = "kitchen", "hall"
# At the default 0.25 detector v1 sees this clip's flames as three fires (three alerts); at
# 0.45 as one, so the kitchen's own threshold makes exactly one alert (and exercises a
# per-camera override). The hall keeps the global threshold. These tests are about cameras,
# zones and restarts, so they run v1, whose boxes the numbers were chosen on: v2 splits the
# clip into six fires at 0.25, two at 0.3, one at 0.35 and none at 0.4, no margin for a test.
CONFIG = f"""\
cameras:
  - name: {FIRE_CAMERA}
    source: {FIRE_VIDEO}
    detect_confidence: 0.45
  - name: {QUIET_CAMERA}
    source: {QUIET_VIDEO}
    fps: 2  # one frame in five of the 10 FPS file: 279 frames
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not (FIRE_VIDEO.is_file() and QUIET_VIDEO.is_file()), reason=f"no shared videos at {DATA}"),
    pytest.mark.skipif(not SHIPPED_DETECTOR.is_file(), reason=f"{SHIPPED_DETECTOR} not exported"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cameras")
    config = root / "firewatch.yaml"
    config.write_text(CONFIG)
    async with BotApiServer(token=TOKEN) as srv:
        # FIREWATCH_CAMERA_SOURCE is set too: the file's cameras must replace it. The daemon's
        # defaults otherwise (the rig lowers the threshold and turns the classifier off).
        r = Rig.create(srv, root, FIRE_VIDEO, config=config, detect_confidence=0.25, classifier_model="",
                       detector_model="v1")
        yield r
        await r.close()


async def ask(rig: Rig, text: str, timeout: float = 20) -> Message:
    before = len(rig.srv.sent_messages(rig.admin))
    rig.srv.send_text(rig.admin, text)
    return (await rig.srv.wait_for(lambda s: s.sent_messages(rig.admin)[before:], timeout))[0]


async def wait_both_played(rig: Rig, timeout: float = 180) -> str:
    """Poll /status until both file cameras have reached their end; returns the last reply."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        reply = (await ask(rig, "/status")).text or ""
        if all(_line_of(reply, camera).startswith(f"📷 {camera}: ended at ")
               for camera in (FIRE_CAMERA, QUIET_CAMERA)):
            return reply
        assert loop.time() < deadline, f"the cameras did not play to the end: {reply}"
        await asyncio.sleep(1.0)


def _line_of(status: str, camera: str) -> str:
    return next((line for line in status.splitlines() if line.startswith(f"📷 {camera}: ")), "")


async def press(rig: Rig, message: Message, label: str) -> str | None:
    seen = len(rig.srv.callback_answers)
    rig.srv.press_button(rig.admin, message, text=label)
    await rig.srv.wait_for(lambda s: len(s.callback_answers) > seen, 15)
    return rig.srv.callback_answers[seen].text


def decoded(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def last_frame(video: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, capture.get(cv2.CAP_PROP_FRAME_COUNT) - 1)
    ok, frame = capture.read()
    capture.release()
    assert ok, video
    return frame


async def test_two_cameras_at_once_alert_only_for_the_fire(rig: Rig) -> None:
    daemon = await rig.start()
    status = await wait_both_played(rig)
    assert "cameras 'kitchen', 'hall'" in daemon.output()
    assert _line_of(status, FIRE_CAMERA) and _line_of(status, QUIET_CAMERA), status
    played = int(re.search(r"(\d+) frames", _line_of(status, QUIET_CAMERA)).group(1))  # type: ignore[union-attr]
    assert 270 <= played <= 280, status  # the fps cap analyses one frame in five of 1394
    await rig.srv.wait_for(lambda s: rig.alert_messages(rig.admin), 30)
    await asyncio.sleep(2.0)  # a second alert would be pushed by now
    alerts, total = rig.store.recent_alerts(limit=10)
    assert total == 1 and alerts[0].camera == FIRE_CAMERA and alerts[0].pushed, alerts
    for chat in rig.chats:
        (message,) = rig.alert_messages(chat)
        assert FIRE_CAMERA in (message.caption or "") and QUIET_CAMERA not in (message.caption or "")


async def test_snapshot_of_the_second_camera_is_its_frame(rig: Rig) -> None:
    reply = await ask(rig, f"/snapshot {QUIET_CAMERA}")
    assert reply.photo_bytes and (reply.caption or "").startswith(f"{QUIET_CAMERA} at ")
    image = decoded(reply.photo_bytes)
    hall, kitchen = last_frame(QUIET_VIDEO), last_frame(FIRE_VIDEO)
    assert image.shape == hall.shape
    # The caption bar and boxes cover part of it: closer to the hall than to the kitchen is enough.
    to_hall = float(np.abs(image.astype(np.int16) - hall).mean())
    to_kitchen = float(np.abs(image.astype(np.int16) - kitchen).mean())
    assert to_hall < to_kitchen / 2, (to_hall, to_kitchen)
    assert (await ask(rig, "/snapshot attic")).text == f"No camera 'attic'. Cameras: {FIRE_CAMERA}, {QUIET_CAMERA}."


async def test_false_alarm_then_ignore_this_area_stores_a_zone(rig: Rig) -> None:
    (alert,) = rig.alert_messages(rig.admin)
    alert_id = int(ALERT_RE.search(alert.caption or "").group(1))  # type: ignore[union-attr]
    assert await press(rig, alert, "False alarm") == "Sure? Confirm below."
    confirm = await rig.srv.wait_for(lambda s: [m for m in rig.alert_messages(rig.admin) if any(
        b["text"] == "Yes, it is a false alarm" for b in m.buttons)], 15)
    assert await press(rig, confirm[0], "Yes, it is a false alarm") == "Marked as false alarm."
    offers = await rig.srv.wait_for(lambda s: [m for m in s.sent_messages(rig.admin) if any(
        b["text"] == "Ignore this area" for b in m.buttons)], 15)
    assert f"Alert #{alert_id} on {FIRE_CAMERA} was a false alarm" in (offers[0].text or "")
    assert await press(rig, offers[0], "Ignore this area") == f"Ignoring this area of {FIRE_CAMERA}."
    (zone,) = rig.store.zones()
    assert (zone.camera, zone.alert_id, zone.created_by) == (FIRE_CAMERA, alert_id, rig.admin.id)
    await rig.srv.wait_for(lambda s: "Ignoring this area" in (s.message(rig.admin.id, offers[0].message_id).text or ""), 15)
    assert "1 ignore zone" in _line_of((await ask(rig, "/status")).text or "", FIRE_CAMERA)


async def test_after_a_restart_the_zone_is_listed_and_silences_that_fire(rig: Rig) -> None:
    assert await rig.daemon.stop() == 0
    (zone,) = rig.store.zones()
    await rig.start()  # the same database and configuration file: both clips play again
    await wait_both_played(rig)
    listed = (await ask(rig, "/zones")).text or ""
    assert f"📷 {FIRE_CAMERA}\n  • #{zone.id} added by Ada at " in listed, listed
    assert f"from alert #{zone.alert_id}" in listed and f"📷 {QUIET_CAMERA}: none" in listed, listed
    await asyncio.sleep(2.0)  # an alert from the replay would be recorded and pushed by now
    alerts, total = rig.store.recent_alerts(limit=10)
    assert total == 1, f"the zone let the replayed fire through: {alerts}"
    assert len(rig.alert_messages(rig.admin)) == 1
    errors = [line for line in rig.all_output().splitlines() if " ERROR " in line or "Traceback" in line]
    assert not errors, "\n".join(errors)
