"""Runs the real ``firewatch`` console script as a subprocess for the bot's end-to-end tests.

The daemon talks HTTP to an in-process fake Bot API (tests/support/botapi), so the test's event
loop must stay free while the daemon runs: everything here is asyncio, nothing blocks.
Output goes to a file so that a chatty daemon can never fill a pipe and stall.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from storage import Store

FIREWATCH = Path(sys.executable).parent / "firewatch"  # the console script of this venv
# The end-to-end daemons' bot token: shaped like a real one, so log redaction applies to it.
TOKEN = "987654321:AAF-e2eSecretTokenThatMustNeverBeLogged_x9"


def clean_env(**settings: object) -> dict[str, str]:
    """This process's environment without any FIREWATCH_* value, plus ``settings``.

    Keys are given without the prefix (``bot_token=...`` -> ``FIREWATCH_BOT_TOKEN``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREWATCH_")}
    env.update({f"FIREWATCH_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@dataclass
class CliResult:
    returncode: int
    output: str


async def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> CliResult:
    """Run ``firewatch ARGS`` to completion without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        str(FIREWATCH), *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return CliResult(proc.returncode or 0, out.decode(errors="replace"))


@dataclass
class Daemon:
    """``firewatch run`` in a subprocess; stdout and stderr both go to ``log``."""

    env: dict[str, str]
    cwd: Path
    log: Path
    proc: asyncio.subprocess.Process | None = field(default=None, init=False)

    async def start(self) -> None:
        handle = self.log.open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                str(FIREWATCH), "run", env=self.env, cwd=self.cwd, stdout=handle, stderr=handle,
            )
        finally:
            handle.close()  # the child holds its own copy

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait; returns the exit code (SIGKILL and -9 if it hangs)."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                return -9
        return self.proc.returncode  # type: ignore[return-value]

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def wait_for_log(self, text: str, timeout: float = 60) -> None:
        """Wait until ``text`` appears in the output; fail early if the daemon exits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in self.output():
            if not self.running:
                raise AssertionError(f"daemon exited ({self.proc.returncode if self.proc else None}) "
                                     f"before {text!r}:\n{self.output()[-4000:]}")
            if loop.time() > deadline:
                raise AssertionError(f"{text!r} not logged within {timeout} s:\n{self.output()[-4000:]}")
            await asyncio.sleep(0.1)


class DaemonWorld:
    """A test world whose daemons (latest last) share one database under ``root``."""

    root: Path
    daemons: list[Daemon]

    @property
    def daemon(self) -> Daemon:
        return self.daemons[-1]

    @functools.cached_property
    def store(self) -> Store:
        return Store(f"sqlite:///{self.root / 'data' / 'firewatch.db'}")
