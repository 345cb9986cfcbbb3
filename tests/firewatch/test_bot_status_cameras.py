"""/status per camera, end to end: ``firewatch run`` with three cameras from a configuration
file, against the fake Bot API (real PTB over HTTP).

``clip`` is a video file that plays to its end, ``porch`` a network camera that keeps
streaming (real frames as MJPEG over HTTP, tests/support/mjpeg_camera.py), ``gate`` one whose
cable is pulled. /status must say "ended" for the first, the measured frame rate for the
second and "lost since" for the third; none of them "ok".
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

import pytest
import pytest_asyncio

from tests.support.bot_harness import TOKEN
from tests.support.botapi import BotApiServer
from tests.support.daemon_rig import Rig
from tests.support.data import DATA, SHIPPED_DETECTOR, fire_free_cctv
from tests.support.mjpeg_camera import MjpegCamera

CLIP = DATA / "videos" / "intel__car-detection.mp4"  # 302 frames at 10 FPS, no fire
CAMERA_FPS = 5.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not CLIP.is_file() or not SHIPPED_DETECTOR.is_file(),
                       reason="needs the shared videos and the shipped detector"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("status")
    frames = fire_free_cctv(12)
    with MjpegCamera(frames, fps=CAMERA_FPS) as porch, MjpegCamera(frames, fps=CAMERA_FPS) as gate:
        config = root / "firewatch.yaml"
        config.write_text(f"""\
cameras:
  - name: clip
    source: {CLIP}
    fps: 2
  - name: porch
    source: {porch.url}
  - name: gate
    source: {gate.url}
""")
        async with BotApiServer(token=TOKEN) as srv:
            # A high threshold and no temporal verification: these tests are about the feeds.
            rig = Rig.create(srv, root, CLIP, config=config, detector_model=SHIPPED_DETECTOR,
                             detect_confidence=0.9, verify="false")
            try:
                await rig.start()
                yield rig, porch, gate
            finally:
                await rig.close()


async def status(rig: Rig) -> str:
    before = len(rig.srv.sent_messages(rig.admin))
    rig.srv.send_text(rig.admin, "/status")
    return (await rig.srv.wait_for(lambda s: s.sent_messages(rig.admin)[before:], 20))[0].text or ""


def line_of(reply: str, camera: str) -> str:
    return next((line for line in reply.splitlines() if line.startswith(f"📷 {camera}: ")), "")


async def status_until(rig: Rig, done, timeout: float = 90) -> str:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done(reply := await status(rig)):
        assert loop.time() < deadline, reply
        await asyncio.sleep(1.0)
    return reply


async def test_an_ended_file_and_a_live_camera(world) -> None:  # type: ignore[no-untyped-def]
    rig, _, _ = world
    reply = await status_until(rig, lambda r: line_of(r, "clip").startswith("📷 clip: ended at ")
                               and line_of(r, "porch").startswith("📷 porch: live, ")
                               and line_of(r, "gate").startswith("📷 gate: live, "))
    clip, porch = line_of(reply, "clip"), line_of(reply, "porch")
    assert "(played to its end)" in clip and "FPS" not in clip and "last frame " in clip, clip
    assert 55 <= int(re.search(r"(\d+) frames", clip).group(1)) <= 65, clip  # type: ignore[union-attr]
    fps = float(re.search(r"live, (\d+\.\d) FPS, last frame ", porch).group(1))  # type: ignore[union-attr]
    assert 0 < fps <= CAMERA_FPS * 1.3, porch
    assert " ok" not in reply


async def test_a_camera_whose_cable_is_pulled_is_lost_since_then(world) -> None:  # type: ignore[no-untyped-def]
    rig, _, gate = world
    cut = datetime.now().astimezone().replace(microsecond=0)
    gate.online = False
    reply = await status_until(rig, lambda r: line_of(r, "gate").startswith("📷 gate: lost since "))
    gate_line = line_of(reply, "gate")
    since = re.search(r"lost since (\d\d:\d\d:\d\d), ", gate_line).group(1)  # type: ignore[union-attr]
    lost_at = datetime.combine(cut.date(), datetime.strptime(since, "%H:%M:%S").time(), cut.tzinfo)
    assert 0 <= (lost_at - cut).total_seconds() <= 60, (cut, gate_line)
    assert "last frame " in gate_line and "FPS" not in gate_line
    assert line_of(reply, "porch").startswith("📷 porch: live, "), reply  # the others go on
    # Back online: live again.
    gate.online = True
    await status_until(rig, lambda r: line_of(r, "gate").startswith("📷 gate: live, "))
