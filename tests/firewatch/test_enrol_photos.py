"""Enrolling several photos of one operator, end to end: ``firewatch enroll`` with several
photos, then ``/enroll`` in the bot (``firewatch run`` against the fake Bot API, real PTB
over HTTP). Both report each new photo's distance to the operator's others and the spread of
them all, and warn about a photo far from all the others (here: someone else's face)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.bot_harness import TOKEN, run_cli
from tests.support.botapi import BotApiServer, Message
from tests.support.daemon_rig import ADMIN_ID, Rig
from tests.support.data import KNN, SHIPPED_DETECTOR, fire_free_cctv, link_sequence

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not KNN.is_dir() or not SHIPPED_DETECTOR.is_file(),
                       reason="needs the shared faces and the shipped detector"),
]
OBAMA = [KNN / "train" / "obama" / "obama.jpg", KNN / "train" / "obama" / "obama2.jpg", KNN / "test" / "obama1.jpg"]
BIDEN = [KNN / "train" / "biden" / "biden.jpg", KNN / "train" / "biden" / "biden2.jpg"]
KIT, ROSE = KNN / "train" / "kit_harington" / "john1.jpeg", KNN / "train" / "rose_leslie" / "img1.jpg"
JOE = 2002
SPREAD = r"(\d) photos, (0\.\d\d)–(0\.\d\d) apart \(median (0\.\d\d)\)"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    root = tmp_path_factory.mktemp("enrol")
    camera = link_sequence(root / "camera", fire_free_cctv(10))
    async with BotApiServer(token=TOKEN) as srv:
        r = Rig.create(srv, root, camera, detector_model=SHIPPED_DETECTOR, verify="false")
        try:
            yield r
        finally:
            await r.close()


async def test_cli_enrolls_several_photos_and_reports_their_spread(rig: Rig) -> None:
    result = await run_cli(["enroll", "--create", "--user-id", str(ADMIN_ID), "--name", "Ada",
                            *map(str, OBAMA), str(KIT)], rig.env, rig.root)
    assert result.returncode == 0, result.output
    lines = result.output.splitlines()
    assert f"{OBAMA[0]}: Enrolled a face for Ada ({ADMIN_ID}); 1 on file." in lines
    second = next(line for line in lines if line.startswith(f"{OBAMA[1]}: "))
    assert re.search(r"2 on file\. Nearest of their other photos: 0\.\d\d; " + SPREAD, second), second
    stray = lines.index(next(line for line in lines if line.startswith(f"{KIT}: ")))
    assert lines[stray + 1].startswith("⚠️ This photo is far from all their others (above 0.45)")
    assert sum("⚠️" in line for line in lines) == 1  # the three photos of Ada are not flagged
    (summary,) = [line for line in lines if line.startswith(f"On file for Ada ({ADMIN_ID}): ")]
    count, smallest, largest, median = re.search(SPREAD, summary).groups()  # type: ignore[union-attr]
    assert count == "4" and float(smallest) < 0.45 < float(largest), summary
    assert len(rig.store.face_templates(ADMIN_ID)) == 4


async def enrol(rig: Rig, photo) -> Message:  # type: ignore[no-untyped-def]
    before = len(rig.srv.sent_messages(rig.admin))
    rig.srv.send_text(rig.admin, f"/enroll {JOE} Joe")
    await rig.srv.wait_for(lambda s: s.sent_messages(rig.admin)[before:], 20)
    before = len(rig.srv.sent_messages(rig.admin))
    rig.srv.send_photo(rig.admin, photo.read_bytes())
    return (await rig.srv.wait_for(lambda s: s.sent_messages(rig.admin)[before:], 30))[0]


async def test_enroll_in_the_bot_one_photo_after_another(rig: Rig) -> None:
    await rig.start()
    first = (await enrol(rig, BIDEN[0])).text or ""
    assert first == (f"Enrolled a face for Joe ({JOE}); 1 on file.\nSelfies match surer with 3 or more "
                     f"photos in different light: /enroll {JOE} for the next.")
    second = (await enrol(rig, BIDEN[1])).text or ""
    assert re.match(rf"Enrolled a face for Joe \({JOE}\); 2 on file\. Nearest of their other photos: "
                    rf"(0\.\d\d); 2 photos, \1–\1 apart \(median \1\)\.\nSelfies match surer", second), second
    third = (await enrol(rig, ROSE)).text or ""  # not Joe
    assert "3 on file" in third and "\n⚠️ This photo is far from all their others" in third, third
    assert "/enroll" not in third  # three photos: no call for more
    assert len(rig.store.face_templates(JOE)) == 3
    # The conversation ended with the photo: the admin's next photo is not taken for Joe's.
    before = len(rig.srv.sent_messages(rig.admin))
    rig.srv.send_photo(rig.admin, OBAMA[2].read_bytes())
    (reply,) = await rig.srv.wait_for(lambda s: s.sent_messages(rig.admin)[before:], 20)
    assert reply.text == "Arm or disarm?" and len(rig.store.face_templates(JOE)) == 3
