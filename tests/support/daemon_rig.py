"""A fresh ``firewatch run`` world per test for the fault and security suites.

Each rig has its own database, fake Bot API and camera folder, so a test may kill, lock
or starve its daemon without touching the others. The daemon is the real console script
(tests/support/bot_harness.py); only Telegram's cloud is the in-process fake (tests/support/botapi).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tests.support.bot_harness import TOKEN, Daemon, DaemonWorld, clean_env
from tests.support.botapi import BotApiServer, Chat, Message, User
from tests.support.data import FIRE2, SHIPPED_DETECTOR

ADMIN_ID = 1001
ALERT_RE = re.compile(r"Alert #(\d+)")
# Below the default 0.25: the epoch-10 detector alerted on this clip only at 0.15; kept so that
# a weaker checkpoint still exercises the rig (see tests/firewatch/test_bot_e2e.py).
DETECT_CONFIDENCE = "0.15"


def fire_clip(folder: Path, start: int = 0) -> int:
    """Symlink the 51 fire2_mp4 frames into ``folder`` in playing order from number ``start``."""
    for i, frame in enumerate(FIRE2):
        (folder / f"{start + i:04d}.jpg").symlink_to(frame)
    return start + len(FIRE2)


def repeat_frame(folder: Path, frame: Path, start: int, count: int) -> int:
    for i in range(start, start + count):
        (folder / f"{i:04d}.jpg").symlink_to(frame)
    return start + count


def black_frames(folder: Path, start: int, count: int, size: tuple[int, int] = (640, 480)) -> int:
    black = folder.parent / f"{folder.name}-black.png"  # outside: not a frame itself
    cv2.imwrite(str(black), np.zeros((size[1], size[0], 3), np.uint8))
    for i in range(start, start + count):
        (folder / f"{i:04d}.png").symlink_to(black)
    return start + count


@dataclass
class Rig(DaemonWorld):
    srv: BotApiServer
    root: Path
    env: dict[str, str]
    admin: User
    group: Chat
    daemons: list[Daemon] = field(default_factory=list)

    @classmethod
    def create(cls, srv: BotApiServer, root: Path, camera: Path, **settings: object) -> Rig:
        group = srv.add_group("ops")
        values: dict[str, object] = {
            "bot_token": TOKEN, "api_base_url": srv.base_url, "api_file_url": srv.base_file_url,
            "data_dir": root / "data", "admin_ids": ADMIN_ID, "alert_chat_ids": group.id,
            "camera_source": camera, "source_fps": 10, "camera_name": "yard",
            "detect_confidence": DETECT_CONFIDENCE, "inference_threads": 1,
            # A loaded CI machine can pause the feed: keep stall warnings out of the chats.
            "stall_after_s": 3600, "classifier_model": "off",
        }
        env = clean_env(**{**values, **settings})
        return cls(srv, root, env, srv.add_user("Ada", user_id=ADMIN_ID), group)

    @property
    def chats(self) -> list[Chat | User]:
        return [self.admin, self.group]

    async def start(self, wait: bool = True, **overrides: object) -> Daemon:
        env = {**self.env, **{f"FIREWATCH_{k.upper()}": str(v) for k, v in overrides.items()}}
        daemon = Daemon(env, self.root, self.root / f"daemon-{len(self.daemons)}.log")
        self.daemons.append(daemon)
        await daemon.start()
        if wait:
            await daemon.wait_for_log("bot started", timeout=90)
        return daemon

    def alert_messages(self, chat: Chat | User) -> list[Message]:
        """The bot's alert messages in ``chat`` (photo, or text when the snapshot is missing)."""
        return [m for m in self.srv.sent_messages(chat) if ALERT_RE.search(m.caption or m.text or "")]

    def alert_ids(self, chat: Chat | User) -> list[int]:
        return [int(ALERT_RE.search(m.caption or m.text or "").group(1))  # type: ignore[union-attr]
                for m in self.alert_messages(chat)]

    def texts(self, chat: Chat | User) -> list[str]:
        return [m.text or m.caption or "" for m in self.srv.sent_messages(chat)]

    def all_output(self) -> str:
        return "\n".join(d.output() for d in self.daemons)

    async def close(self) -> None:
        for daemon in self.daemons:
            if daemon.running:
                await daemon.stop()
        if "store" in self.__dict__:
            self.store.close()


@contextlib.asynccontextmanager
async def fire_rig(root: Path, **settings: object) -> AsyncIterator[Rig]:
    """A rig with its own fake Bot API whose camera plays the fire2_mp4 frames once."""
    camera = root / "camera"
    camera.mkdir()
    fire_clip(camera)
    async with BotApiServer(token=TOKEN) as srv:
        rig = Rig.create(srv, root, camera, detector_model=SHIPPED_DETECTOR, **settings)
        try:
            yield rig
        finally:
            await rig.close()
