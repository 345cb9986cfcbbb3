"""The whole bot end to end: ``firewatch run`` as a real subprocess against the fake Bot API.

Nothing inside the daemon is replaced: real settings from the environment, real SQLite,
real python-telegram-bot over HTTP, real dlib faces (shared data faces/), real vision
pipeline on real frames. Only Telegram's cloud is tests/support/botapi, in this process.

One daemon serves the whole module (starting one costs ~6 s), so the tests run in file
order and build on each other like a day of use: CLI enrolment before the start, a fire
in the camera's first seconds, buttons on that alert, queries, bot enrolment, arm and
disarm by selfie, and a restart while disarmed. A second daemon (same database) plays the
fire again while disarmed. The last test stops everything and greps all output for the token.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import pytest_asyncio

from storage.models import AlertStatus
from tests.support.bot_harness import TOKEN, CliResult, Daemon, DaemonWorld, clean_env, run_cli
from tests.support.botapi import BotApiServer, Chat, Message, User
from tests.support.data import DATA, FACES, FIRE2, KNN, NO_FACE, SHIPPED_DETECTOR, identity_photos
# The daemon's default threshold; E2E_DETECT_CONFIDENCE tries another model or threshold.
DETECT_CONFIDENCE = float(os.environ.get("E2E_DETECT_CONFIDENCE", "0.25"))
CAMERA = "yard"

ADMIN_ID, OBAMA_ID, BIDEN_ID, STRANGER_ID = 1001, 2002, 3003, 6666

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not FACES.is_dir() or len(FIRE2) != 51, reason=f"shared data missing at {DATA}"),
]


@dataclass
class Scene(DaemonWorld):
    srv: BotApiServer
    root: Path
    env: dict[str, str]
    admin: User
    obama: User
    biden: User
    stranger: User
    group: Chat
    real_model: bool
    daemons: list[Daemon] = field(default_factory=list)
    cli_output: list[str] = field(default_factory=list)

    async def cli(self, *args: str) -> CliResult:
        result = await run_cli(list(args), self.env, self.root)
        self.cli_output.append(result.output)
        return result

    def replies(self, user: User) -> list[Message]:
        return self.srv.sent_messages(user)

    def answers(self, user: User, before: int) -> list[Message]:
        """The bot's messages in ``user``'s chat after the first ``before``, notices left out.

        Notices (someone else armed, a lockout) are queued for everyone and may land
        between a question and its answer.
        """
        return [m for m in self.replies(user)[before:] if not _is_notice(m)]

    async def ask(self, user: User, text: str, timeout: float = 15) -> Message:
        """Send ``text`` and return the bot's next message in that user's chat."""
        before = len(self.replies(user))
        self.srv.send_text(user, text)
        return (await self.srv.wait_for(lambda s: self.answers(user, before), timeout))[0]

    async def send_photo(self, user: User, path: Path, caption: str | None = None,
                         forward_origin: dict | None = None, timeout: float = 30) -> Message:
        before = len(self.replies(user))
        self.srv.send_photo(user, path.read_bytes(), caption=caption, forward_origin=forward_origin)
        return (await self.srv.wait_for(lambda s: self.answers(user, before), timeout))[0]

    def alert_photos(self, chat: Chat | User) -> list[Message]:
        return [m for m in self.srv.sent_messages(chat) if m.photo_bytes and "Alert #" in (m.caption or "")]


def _is_notice(message: Message) -> bool:
    text = message.text or ""
    return (text.endswith("the system by selfie.") or " is locked out of arm/disarm" in text
            or "asked for access" in text or (text.startswith(("🔕", "🔔")) and "snooze" in text))


@pytest.fixture(scope="module")
def fire_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 51 consecutive fire2_mp4 frames as a camera: symlinks named in playing order."""
    folder = tmp_path_factory.mktemp("camera")
    for i, frame in enumerate(FIRE2):
        (folder / f"{i:03d}.jpg").symlink_to(frame)
    return folder


@pytest.fixture(scope="module")
def detector(request: pytest.FixtureRequest) -> tuple[Path, bool]:
    """The shipped detector when exported, else an untrained one (no fire tests then)."""
    if SHIPPED_DETECTOR.is_file():
        return SHIPPED_DETECTOR, True
    return request.getfixturevalue("tiny_onnx"), False


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scene(tmp_path_factory: pytest.TempPathFactory, fire_folder: Path, detector):
    root = tmp_path_factory.mktemp("firewatch")
    async with BotApiServer(token=TOKEN) as srv:
        env = clean_env(
            bot_token=TOKEN, api_base_url=srv.base_url, api_file_url=srv.base_file_url,
            data_dir=root / "data", admin_ids=ADMIN_ID, camera_source=fire_folder, source_fps=10,
            camera_name=CAMERA, detector_model=detector[0], detect_confidence=DETECT_CONFIDENCE,
            inference_threads=1,
            # A loaded CI machine can pause the feed: keep stall warnings out of the chats.
            stall_after_s=3600,
        )
        group = srv.add_group("ops")
        env["FIREWATCH_ALERT_CHAT_IDS"] = str(group.id)
        s = Scene(srv, root, env, srv.add_user("Ada", user_id=ADMIN_ID),
                  srv.add_user("Barack", user_id=OBAMA_ID), srv.add_user("Joe", user_id=BIDEN_ID),
                  srv.add_user("Eve", user_id=STRANGER_ID), group, detector[1])
        yield s
        for daemon in s.daemons:
            if daemon.running:
                await daemon.stop()
        if "store" in s.__dict__:
            s.store.close()


async def start_daemon(scene: Scene, **overrides: str) -> Daemon:
    env = {**scene.env, **{f"FIREWATCH_{k.upper()}": v for k, v in overrides.items()}}
    daemon = Daemon(env, scene.root, scene.root / f"daemon-{len(scene.daemons)}.log")
    scene.daemons.append(daemon)
    await daemon.start()
    await daemon.wait_for_log("bot started", timeout=90)
    return daemon


# -- before the daemon: enrolment from the command line ------------------------------------


async def test_cli_enroll_accepts_one_face_and_refuses_two(scene: Scene) -> None:
    obama = KNN / "train" / "obama" / "obama.jpg"
    two = FACES / "examples" / "two_people.jpg"
    result = await scene.cli("enroll", "--create", "--user-id", str(OBAMA_ID), "--name", "Barack", str(obama), str(two))
    assert result.returncode == 1, result.output  # one photo of the two failed
    assert f"{obama}: Enrolled a face for Barack ({OBAMA_ID}); 1 on file." in result.output
    assert f"{two}: I see 2 faces" in result.output
    listed = await scene.cli("operators", "list")
    assert re.search(rf"{OBAMA_ID}\s+operator\s+faces=1\s+Barack", listed.output), listed.output


async def test_daemon_starts_and_registers_commands(scene: Scene) -> None:
    await start_daemon(scene)
    commands = await scene.srv.wait_for(lambda s: s.commands, timeout=10)
    (registered,) = commands.values()
    from bot.queries import COMMANDS

    assert [c["command"] for c in registered] == [c.command for c in COMMANDS]
    assert {"status", "arm", "disarm", "history", "alert", "snapshot", "help", "cancel", "unsnooze"} <= {
        c["command"] for c in registered}
    assert len(scene.srv.calls_to("setMyCommands")) == 1


# -- strangers ------------------------------------------------------------------------------


async def test_stranger_gets_one_short_refusal_per_command_and_nothing_else(scene: Scene) -> None:
    commands = ["/start", "/help", "/status", "/history", "/history 7d fire", "/alert 1", "/snapshot",
                "/arm", "/disarm", "/cancel", f"/enroll {STRANGER_ID} Eve", "/nonsense"]
    for text in commands:
        scene.srv.send_text(scene.stranger, text)
    scene.srv.send_photo(scene.stranger, (KNN / "train" / "obama" / "obama2.jpg").read_bytes(),
                         caption="/arm")
    await scene.srv.wait_for(lambda s: len(scene.replies(scene.stranger)) >= len(commands), timeout=20)
    await asyncio.sleep(1.0)  # anything more would arrive by now
    replies = [m.text for m in scene.replies(scene.stranger)]
    # /start says how to get access; everything else is refused.
    assert replies[0].startswith("Not authorised. To get access") and str(STRANGER_ID) in replies[0]
    assert replies[1:] == ["Not authorised."] * len(commands), replies
    assert scene.store.get_operator(STRANGER_ID, active_only=False) is None
    assert STRANGER_ID not in scene.store.alert_chat_ids()


# -- a fire on the camera ---------------------------------------------------------------------


async def wait_source_played(scene: Scene, timeout: float = 90) -> str:
    """Poll /status until the camera has played all 51 frames; returns the last reply."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        reply = (await scene.ask(scene.admin, "/status")).text or ""
        if f"{len(FIRE2)} frames" in reply:
            return reply
        assert loop.time() < deadline, f"camera did not play its frames: {reply}"
        await asyncio.sleep(1.0)


async def test_fire_gives_one_alert_photo_per_chat_edited_then_cleared(scene: Scene) -> None:
    status = await wait_source_played(scene)
    assert "🟢 Armed" in status and f"📷 {CAMERA}:" in status
    if not scene.real_model:
        pytest.skip(f"{SHIPPED_DETECTOR} not exported yet: only an untrained detector to run")
    chats = [scene.admin, scene.obama, scene.group]  # configured admin, CLI operator, alert group

    def all_cleared_everywhere(_: BotApiServer) -> bool:
        alerts, total = scene.store.recent_alerts(limit=50)
        return total > 0 and all(a.cleared_at for a in alerts) and all(
            len(photos := scene.alert_photos(c)) == total
            and all("Cleared" in (m.caption or "") for m in photos) for c in chats)

    try:
        await scene.srv.wait_for(all_cleared_everywhere, timeout=30)
    except TimeoutError:
        if scene.store.recent_alerts()[1] == 0:
            pytest.skip(f"the shipped detector found no confirmed fire in the 51 fire2_mp4 frames "
                        f"at confidence {DETECT_CONFIDENCE} (set E2E_DETECT_CONFIDENCE to lower it)")
        raise
    alerts, total = scene.store.recent_alerts(limit=50)
    assert total >= 1 and all(a.pushed and a.camera == CAMERA for a in alerts)
    for chat in chats:
        photos = scene.alert_photos(chat)
        ids = sorted(int(re.search(r"Alert #(\d+)", m.caption).group(1)) for m in photos)  # type: ignore[arg-type, union-attr]
        assert ids == sorted(a.id for a in alerts), f"one photo per alert in chat {chat.id}: {ids}"
        # The first alert is edited in place as it grows and clears; one that starts in the clip's
        # last frames (v2 boxes the smoke there) may clear before its photo goes out, and is
        # then sent already cleared.
        assert photos[0].history, "the first alert's message was never edited"
        for message in photos:
            assert "Cleared: not seen since" in message.caption  # type: ignore[operator]
            assert [b["text"] for b in message.buttons] == ["Acknowledge", "False alarm", "Snooze 30 min"]
    assert len(scene.srv.calls_to("sendPhoto")) == len(alerts) * len(chats)
    assert not scene.alert_photos(scene.stranger) and not scene.alert_photos(scene.biden)


def first_alert(scene: Scene, chat: Chat | User) -> Message:
    photos = scene.alert_photos(chat)
    if not photos:
        pytest.skip("no alert was raised (see the fire test)")
    return photos[0]


def alert_id_of(message: Message) -> int:
    return int(re.search(r"Alert #(\d+)", message.caption or "").group(1))  # type: ignore[union-attr]


async def answers_after(scene: Scene, count: int, timeout: float = 15) -> list[str | None]:
    await scene.srv.wait_for(lambda s: len(s.callback_answers) > count, timeout)
    return [a.text for a in scene.srv.callback_answers[count:]]


async def test_acknowledge_shows_in_every_chats_copy(scene: Scene) -> None:
    message = first_alert(scene, scene.admin)
    alert_id = alert_id_of(message)
    seen = len(scene.srv.callback_answers)
    scene.srv.press_button(scene.admin, message, text="Acknowledge")
    assert await answers_after(scene, seen) == ["Acknowledged."]
    copies = lambda s: [m for c in (scene.admin, scene.obama, scene.group)  # noqa: E731
                        for m in scene.alert_photos(c) if alert_id_of(m) == alert_id]
    await scene.srv.wait_for(lambda s: all("✅ Acknowledged by Ada" in m.caption for m in copies(s)), 15)
    assert scene.store.get_alert(alert_id).status is AlertStatus.ACKNOWLEDGED  # type: ignore[union-attr]


async def test_stranger_pressing_a_button_changes_nothing(scene: Scene) -> None:
    message = first_alert(scene, scene.group)
    seen = len(scene.srv.callback_answers)
    scene.srv.press_button(scene.stranger, message, text="False alarm")
    assert await answers_after(scene, seen) == ["Not authorised."]
    assert scene.store.get_alert(alert_id_of(message)).status is AlertStatus.ACKNOWLEDGED  # type: ignore[union-attr]


async def test_false_alarm_by_another_operator_edits_every_copy_and_keeps_the_frame(scene: Scene) -> None:
    message = first_alert(scene, scene.group)
    alert_id = alert_id_of(message)
    seen = len(scene.srv.callback_answers)
    scene.srv.press_button(scene.obama, message, text="False alarm")
    assert await answers_after(scene, seen) == ["Sure? Confirm below."]
    assert not list((scene.root / "data" / "hard-negatives").glob(f"alert-{alert_id}.*"))  # asked first
    confirm = await scene.srv.wait_for(lambda s: [m for m in scene.alert_photos(scene.group) if alert_id_of(m) == alert_id
                                                  and any(b["text"] == "Yes, it is a false alarm" for b in m.buttons)], 15)
    seen = len(scene.srv.callback_answers)
    scene.srv.press_button(scene.obama, confirm[0], text="Yes, it is a false alarm")
    assert await answers_after(scene, seen) == ["Marked as false alarm."]
    await scene.srv.wait_for(
        lambda s: all("🚫 Marked as false alarm by Barack" in m.caption
                      for c in (scene.admin, scene.obama, scene.group)
                      for m in scene.alert_photos(c) if alert_id_of(m) == alert_id), 15)
    kept = list((scene.root / "data" / "hard-negatives").glob(f"alert-{alert_id}.*"))
    assert len(kept) == 1 and kept[0].stat().st_size > 1000
    from storage import Store
    from vision.annotate import raw_frame_path

    store = Store(f"sqlite:///{scene.root / 'data' / 'firewatch.db'}")
    snapshot = Path(store.get_alert(alert_id).snapshot_path)
    store.close()
    # the clean frame, without boxes drawn on it, is what training can use
    assert kept[0].read_bytes() == raw_frame_path(snapshot).read_bytes() != snapshot.read_bytes()


async def test_snooze_silences_the_camera(scene: Scene) -> None:
    message = first_alert(scene, scene.obama)
    seen = len(scene.srv.callback_answers)
    scene.srv.press_button(scene.obama, message, text="Snooze 30 min")
    (answer,) = await answers_after(scene, seen)
    assert answer is not None and answer.startswith(f"{CAMERA} snoozed until ")
    assert scene.store.snoozed_until(CAMERA) is not None
    # Everyone is told, and the snooze shows in /status with its time left until /unsnooze.
    for chat in (scene.admin, scene.group):
        await scene.srv.wait_for(lambda s: any((m.text or "").startswith(f"🔕 Barack snoozed {CAMERA} until")
                                               for m in scene.srv.sent_messages(chat)), 15)
    assert f"🔕 {CAMERA} snoozed by Barack until" in (await scene.ask(scene.admin, "/status")).text  # type: ignore[operator]
    assert (await scene.ask(scene.admin, "/unsnooze")).text == f"Snooze ended: {CAMERA}."
    assert scene.store.snoozed_until(CAMERA) is None
    assert (await scene.ask(scene.admin, "/unsnooze")).text == "Nothing is snoozed."


# -- queries ------------------------------------------------------------------------------------


async def test_history_and_alert(scene: Scene) -> None:
    alerts, total = scene.store.recent_alerts(limit=50)
    history = (await scene.ask(scene.obama, "/history")).text
    if total == 0:
        assert history == "No alerts."
    else:
        assert history.startswith(f"Alerts 1–{min(total, 5)} of {total}, newest first:")  # type: ignore[union-attr]
        assert f"#{alerts[0].id} " in history and CAMERA in history  # type: ignore[operator]
        # Class and severity said once: "yard: fire 87%", "yard: starting fire 40%".
        assert re.search(rf"{CAMERA}: (starting fire|fire|smoke) \d+%", history)  # type: ignore[arg-type]
        assert "fire fire" not in history and "start-fire" not in history  # type: ignore[operator]
        acked = await scene.ask(scene.obama, f"/alert {alert_id_of(first_alert(scene, scene.admin))}")
        assert "✅ Acknowledged by Ada at " in (acked.caption or acked.text or "")  # as on the pushed alert
        reply = await scene.ask(scene.obama, f"/alert {alerts[-1].id}")
        assert reply.photo_bytes and f"Alert #{alerts[-1].id}" in reply.caption  # type: ignore[operator]
        # The daemon verifies fires by default: the alert says why it was confirmed.
        assert "\nWhy: " in reply.caption  # type: ignore[operator]
        second = "It is a real fire" if alerts[-1].status is AlertStatus.FALSE_ALARM else "False alarm"
        assert [b["text"] for b in reply.buttons] == ["Acknowledge", second, "Snooze 30 min"]
    assert (await scene.ask(scene.obama, "/alert 999999")).text == "No alert #999999."
    assert (await scene.ask(scene.obama, "/alert x")).text == "Usage: /alert ID (a number, see /history)."
    bad = (await scene.ask(scene.obama, "/history 1y")).text
    assert "Usage: /history" in bad  # type: ignore[operator]
    assert (await scene.ask(scene.obama, "/history 24h smoke")).text.startswith(("No alerts.", "Alerts 1"))  # type: ignore[union-attr]


async def test_snapshot_is_a_camera_frame(scene: Scene) -> None:
    await wait_source_played(scene)
    await asyncio.sleep(3)
    reply = await scene.ask(scene.admin, "/snapshot")
    assert reply.photo_bytes and reply.photo_bytes[:2] == b"\xff\xd8"
    # The folder has ended: the last frame is captioned with its own time and age, not now.
    caption = re.fullmatch(rf"{CAMERA} at (\S+ \S+) \S+ \((\d+) (s|min) ago\)", reply.caption or "")
    assert caption, reply.caption
    assert int(caption[2]) >= 3 or caption[3] == "min"
    taken = datetime.strptime(caption[1], "%Y-%m-%d %H:%M:%S")
    assert (datetime.now() - taken).total_seconds() >= 3


# -- enrolment in the bot -----------------------------------------------------------------------


async def test_enroll_in_the_bot_is_for_admins_and_takes_one_face(scene: Scene) -> None:
    assert (await scene.ask(scene.obama, f"/enroll {BIDEN_ID} Joe")).text == "Not authorised."
    assert (await scene.ask(scene.admin, "/enroll")).text.startswith("Usage: /enroll USER_ID")  # type: ignore[union-attr]
    prompt = await scene.ask(scene.admin, f"/enroll {BIDEN_ID} Joe")
    assert prompt.text == f"Send a photo of user {BIDEN_ID}'s face (exactly one face), or /cancel."
    assert (await scene.ask(scene.admin, "hello")).text == "Send the face as a photo, or /cancel."
    two = await scene.send_photo(scene.admin, FACES / "examples" / "two_people.jpg")
    assert two.text.startswith("I see 2 faces")  # type: ignore[union-attr]
    done = await scene.send_photo(scene.admin, KNN / "train" / "biden" / "biden.jpg")
    assert done.text.startswith(f"Enrolled a face for Joe ({BIDEN_ID}); 1 on file.\n")  # type: ignore[union-attr]
    assert done.text.endswith(f"/enroll {BIDEN_ID} for the next.")  # type: ignore[union-attr]
    assert len(scene.store.face_templates(BIDEN_ID)) == 1
    assert BIDEN_ID in scene.store.alert_chat_ids()
    # The new operator may use the bot at once.
    assert (await scene.ask(scene.biden, "/status")).text.startswith("🟢 Armed")  # type: ignore[union-attr]


# -- arm and disarm by selfie -------------------------------------------------------------------


async def selfie(scene: Scene, user: User, command: str, photo: Path, **kwargs) -> str:  # type: ignore[no-untyped-def]
    prompt = await scene.ask(user, command)
    assert prompt.text.startswith(f"Send a selfie to {command[1:]} the system")  # type: ignore[union-attr]
    return (await scene.send_photo(user, photo, **kwargs)).text or ""


async def test_refusals_no_match_no_face_two_faces_forwarded(scene: Scene) -> None:
    alex = identity_photos("alex_lacamoire")[0]
    prompt = await scene.ask(scene.obama, "/disarm")
    assert prompt.text.startswith("Send a selfie to disarm the system")  # type: ignore[union-attr]
    before = len(scene.replies(scene.obama))
    scene.srv.send_document(scene.obama, alex.read_bytes(), file_name="me.jpg", mime_type="image/jpeg")
    as_file = (await scene.srv.wait_for(lambda s: scene.answers(scene.obama, before), 15))[0]
    assert as_file.text == "Send the selfie as a photo, not as a file. Or /cancel."
    assert (await scene.ask(scene.obama, "/cancel")).text == "Cancelled."
    assert (await selfie(scene, scene.obama, "/disarm", alex)).startswith("Your face does not match")
    assert (await selfie(scene, scene.obama, "/disarm", NO_FACE)).startswith("No face found")
    assert (await selfie(scene, scene.obama, "/disarm", FACES / "examples" / "two_people.jpg")).startswith(
        "I see 2 faces")
    forwarded = await selfie(scene, scene.biden, "/arm", KNN / "train" / "biden" / "biden2.jpg",
                             forward_origin={"type": "user", "sender_user": scene.biden.to_api()})
    assert forwarded.startswith("Forwarded photos are not accepted")
    assert scene.store.arm_state().armed
    failures = [a for a in scene.store.audit_log() if a.telegram_user_id == OBAMA_ID]
    assert [a.detail for a in failures][::-1] == ["face does not match", "no_face", "many_faces"]
    assert failures[-1].face_distance is not None and failures[-1].face_distance > 0.5


async def test_disarm_and_arm_with_own_face(scene: Scene) -> None:
    reply = await selfie(scene, scene.obama, "/disarm", KNN / "train" / "obama" / "obama2.jpg")
    assert reply.startswith("🔕 Disarmed. Alerts are recorded but not pushed.")
    await scene.srv.wait_for(
        lambda s: any(m.text == "Barack disarmed the system by selfie." for m in scene.replies(scene.admin)), 15)
    state = scene.store.arm_state()
    assert not state.armed and state.changed_by == OBAMA_ID and state.rearm_at is not None
    assert "🔕 Disarmed, re-arms at" in (await scene.ask(scene.biden, "/status")).text  # type: ignore[operator]

    # The same photo again is a replay, whoever sends it.
    again = await selfie(scene, scene.obama, "/arm", KNN / "train" / "obama" / "obama2.jpg")
    assert again == "This photo was already used. Take a new selfie."
    # Joe's own face arms; Barack's face does not work for Joe.
    assert (await selfie(scene, scene.biden, "/arm", KNN / "test" / "obama1.jpg")).startswith(
        "Your face does not match")
    assert (await selfie(scene, scene.biden, "/arm", KNN / "train" / "biden" / "biden2.jpg")) == (
        "✅ Armed. Alerts will be pushed.")
    assert scene.store.arm_state().armed
    # A photo captioned /disarm does it in one message.
    one_shot = await scene.send_photo(scene.obama, FACES / "tests" / "test_images" / "obama3.jpg",
                                      caption="/disarm")
    assert one_shot.text.startswith("🔕 Disarmed.")  # type: ignore[union-attr]
    assert not scene.store.arm_state().armed


async def test_fifth_failure_locks_out_and_tells_the_admins(scene: Scene) -> None:
    # Barack failed 4 times within the window above (3 refusals and the replayed photo).
    reply = await selfie(scene, scene.obama, "/arm", identity_photos("alex_lacamoire")[1])
    assert "Too many failed attempts: arm/disarm is locked until" in reply
    await scene.srv.wait_for(lambda s: any(
        (m.text or "").startswith(f"⚠️ Barack ({OBAMA_ID}) is locked out") for m in scene.replies(scene.admin)), 15)
    # The lockout is said at /arm, with its end, before any selfie is asked for.
    locked = (await scene.ask(scene.obama, "/arm")).text
    assert locked.startswith("Arm/disarm is locked after repeated failed selfies until")  # type: ignore[union-attr]
    # A selfie captioned /arm during the lockout is refused the same way.
    one_shot = await scene.send_photo(scene.obama, FACES / "examples" / "knn_examples" / "test" / "obama1.jpg",
                                      caption="/arm")
    assert one_shot.text.startswith("Arm/disarm is locked")  # type: ignore[union-attr]
    assert not scene.store.arm_state().armed


# -- disarmed: recorded, not pushed -------------------------------------------------------------


async def test_restart_while_disarmed_records_the_fire_without_pushing(scene: Scene) -> None:
    assert await scene.daemon.stop() == 0
    photos_before = len(scene.srv.calls_to("sendPhoto"))
    alerts_before = scene.store.recent_alerts()[1]
    # Another camera name: the snooze pressed above is per camera and must not be the reason.
    await start_daemon(scene, camera_name="porch")
    status = await wait_source_played(scene)
    assert "🔕 Disarmed" in status
    if not scene.real_model:
        pytest.skip(f"{SHIPPED_DETECTOR} not exported yet: only an untrained detector to run")
    if alerts_before == 0:
        pytest.skip("the shipped detector raised no alert on this clip (see the fire test)")
    await scene.srv.wait_for(lambda s: scene.store.recent_alerts()[1] > alerts_before, timeout=20)
    await asyncio.sleep(2.0)  # the outbox would have sent it by now
    new, _ = scene.store.recent_alerts(limit=scene.store.recent_alerts()[1] - alerts_before)
    assert all(a.camera == "porch" and not a.pushed for a in new)
    assert len(scene.srv.calls_to("sendPhoto")) == photos_before
    history = (await scene.ask(scene.admin, "/history")).text
    assert f"#{new[0].id} " in history and "(not pushed)" in history  # type: ignore[operator]


# -- the end ------------------------------------------------------------------------------------


async def test_clean_shutdown_and_token_never_in_any_output(scene: Scene) -> None:
    for daemon in scene.daemons:
        if daemon.running:
            assert await daemon.stop() == 0
    texts = [d.output() for d in scene.daemons] + scene.cli_output
    secret = TOKEN.split(":", 1)[1]
    for text in texts:
        assert TOKEN not in text and secret not in text
    assert "bot stopped" in scene.daemons[-1].output()
    errors = [line for d in scene.daemons for line in d.output().splitlines()
              if " ERROR " in line or "Traceback" in line]
    assert not errors, "\n".join(errors)
