"""The command line: every command's help, the database commands, and `run`'s lifecycle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from firewatch.cli import main, parse_period
from storage.db import alembic_config

TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"
# The newest migration: each new one must be applied by `db upgrade` and at every start.
HEAD_REVISION = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _commands(group, prefix=()):  # type: ignore[no-untyped-def]
    for name, cmd in group.commands.items():
        yield (*prefix, name)
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key in list(os.environ):
        if key.startswith("FIREWATCH_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env, data/ lands in tmp
    monkeypatch.setenv("FIREWATCH_DATA_DIR", str(tmp_path / "data"))
    return dict(os.environ)


def test_top_level_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("run", "db", "operators", "history", "detect", "train"):
        assert name in result.output


@pytest.mark.parametrize("path", list(_commands(main)), ids=" ".join)
def test_each_subcommand_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: main " + " ".join(path) in result.output


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "firewatch"
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Usage: firewatch" in result.stdout


def test_db_upgrade_operators_and_history(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert f"revision {HEAD_REVISION}" in runner.invoke(main, ["db", "upgrade"]).output
    out = runner.invoke(main, ["operators", "add", "--user-id", "42", "--name", "Ann", "--admin"])
    assert out.exit_code == 0 and "Ann (42, admin)" in out.output
    listed = runner.invoke(main, ["operators", "list"]).output
    assert "42" in listed and "admin" in listed and "faces=0" in listed
    assert runner.invoke(main, ["history"]).output.strip() == "no alerts"

    from datetime import datetime, timezone

    from storage import Store

    store = Store(f"sqlite:///{env['FIREWATCH_DATA_DIR']}/firewatch.db")
    store.record_alert(camera="yard", track_id=3, class_name="fire", severity="fire",
                       confidence=0.87, area=0.12, snapshot_path=None,
                       seen_at=datetime.now(timezone.utc), push=True)
    store.record_alert(camera="yard", track_id=4, class_name="fire", severity="start-fire",
                       confidence=0.5, area=0.01, snapshot_path=None,
                       seen_at=datetime.now(timezone.utc), push=False)
    store.close()
    hist = runner.invoke(main, ["history", "--since", "24h", "--class", "fire"]).output
    assert "yard" in hist and "conf=0.87" in hist and "2 of 2" in hist
    disarmed, pushed = hist.splitlines()[1:3]
    zone = datetime.now().astimezone().strftime("%Z")
    assert "starting fire" in disarmed and disarmed.endswith("new (not pushed)") and f" {zone} " in disarmed
    assert " fire " in pushed and "fire fire" not in pushed and not pushed.endswith("(not pushed)")

    assert runner.invoke(main, ["operators", "remove", "--user-id", "42"]).exit_code == 0
    missing = runner.invoke(main, ["operators", "remove", "--user-id", "42"])
    assert missing.exit_code == 1 and "no operator with user id 42" in missing.output


def test_bad_setting_is_one_line_without_traceback(env: dict[str, str]) -> None:
    env = {**env, "FIREWATCH_CONFIRM_WINDOW": "many", "FIREWATCH_BOT_TOKEN": TOKEN}
    exe = Path(sys.executable).parent / "firewatch"
    result = subprocess.run([str(exe), "history"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: configuration error: FIREWATCH_CONFIRM_WINDOW: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]
    assert TOKEN not in result.stdout + result.stderr


def test_bad_period_is_a_clear_error(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["history", "--since", "5y"])
    assert result.exit_code == 1 and "period '5y' not understood" in result.output
    assert parse_period("7d").days == 7 and parse_period("30m").seconds == 1800


@pytest.mark.parametrize("delay", [0.0, 3.0], ids=["while-starting", "while-running"])
def test_run_migrates_and_stops_cleanly_on_sigterm(env: dict[str, str], tmp_path: Path,
                                                  delay: float) -> None:
    """Headless (no token): the pipeline runs on a camera that does not exist here."""
    env = {**env, "FIREWATCH_CAMERA_SOURCE": "7", "FIREWATCH_LOG_LEVEL": "DEBUG"}
    exe = Path(sys.executable).parent / "firewatch"
    proc = subprocess.Popen([str(exe), "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    db = tmp_path / "data" / "firewatch.db"
    deadline = time.monotonic() + 60
    while not db.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "received SIGTERM" in output and "stopped" in output
    assert "nothing will be pushed" in output
    from storage.db import current_revision

    assert current_revision(f"sqlite:///{db}") == HEAD_REVISION
