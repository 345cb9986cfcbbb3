"""The roles of ``firewatch run``: an edge names its cameras for its site, a bad edge name or
heartbeat setting is one line, the bot refuses to start without a token, and each role
carries over only its own cameras' alerts."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from firewatch.cli import main
from firewatch.config import ConfigError, load_settings
from firewatch.roles import owned_cameras, queues_deliveries

CONFIG = """\
cameras:
  - name: kitchen
    source: 0
  - name: hall
    source: rtsp://127.0.0.1/hall
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("FIREWATCH_"):
            monkeypatch.delenv(key)


def test_an_edge_names_its_cameras_site_slash_camera(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "firewatch.yaml"
    config.write_text(CONFIG)
    edge = load_settings(env_file=None, config_file=config, role="edge", edge_name="barn-3")
    assert [c.name for c in edge.camera_configs] == ["barn-3/kitchen", "barn-3/hall"]
    assert [c.source for c in edge.camera_configs] == ["0", "rtsp://127.0.0.1/hall"]
    # A single box keeps the names it always had; the edge name is its own business.
    box = load_settings(env_file=None, config_file=config, edge_name="barn-3")
    assert (box.role, [c.name for c in box.camera_configs]) == ("all", ["kitchen", "hall"])


def test_an_edge_without_a_name_is_named_for_its_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "pi 4.local")
    monkeypatch.setenv("FIREWATCH_ROLE", "edge")
    monkeypatch.setenv("FIREWATCH_CAMERA_NAME", "porch")
    settings = load_settings(env_file=None)
    assert settings.site == "pi-4.local"
    assert [c.name for c in settings.camera_configs] == ["pi-4.local/porch"]


@pytest.mark.parametrize(("env", "message"), [
    ({"FIREWATCH_ROLE": "central"}, "FIREWATCH_ROLE: Input should be 'all', 'edge' or 'bot'"),
    ({"FIREWATCH_EDGE_NAME": "north/barn"}, "FIREWATCH_EDGE_NAME: must be 1-48 letters, digits"),
    ({"FIREWATCH_HEARTBEAT_S": "30", "FIREWATCH_EDGE_QUIET_AFTER_S": "45"},
     "FIREWATCH_EDGE_QUIET_AFTER_S (45) must be at least twice FIREWATCH_HEARTBEAT_S (30)"),
])
def test_fleet_settings_are_checked_in_one_line(monkeypatch: pytest.MonkeyPatch, env: dict, message: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value), caught.value


def test_the_bot_role_needs_a_token(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FIREWATCH_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(main, ["run", "--role", "bot"])
    assert result.exit_code == 1
    assert result.output.strip().endswith(
        "configuration error: FIREWATCH_ROLE: the bot role needs FIREWATCH_BOT_TOKEN"), result.output
    assert not (tmp_path / "data" / "firewatch.db").exists()  # refused before touching anything


def test_each_role_carries_over_only_its_own_cameras_alerts() -> None:
    edge = load_settings(env_file=None, role="edge", edge_name="site-a")
    box = load_settings(env_file=None)
    bot = load_settings(env_file=None, role="bot", bot_token="1:x")
    cameras = ["site-a/kitchen", "site-b/kitchen", "kitchen", "site-ab/hall"]
    assert [c for c in cameras if owned_cameras(edge)(c)] == ["site-a/kitchen"]
    assert [c for c in cameras if owned_cameras(box)(c)] == ["kitchen"]
    assert [c for c in cameras if owned_cameras(bot)(c)] == []
    # An edge queues the alert's messages for the bot; a box without a token has no one to send them.
    assert (queues_deliveries(edge), queues_deliveries(box), queues_deliveries(bot)) == (True, False, True)


def test_firewatch_edges_lists_and_forgets(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from storage import Store, upgrade

    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    monkeypatch.setenv("FIREWATCH_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    runner = CliRunner()
    assert runner.invoke(main, ["edges"]).output.strip() == "no edge has checked in"
    upgrade(url)
    store = Store(url)
    try:
        store.beat("site-b", [{"camera": "site-b/garage"}])
        store.beat("site-a", [{"camera": "site-a/kitchen"}, {"camera": "site-a/hall"}])
    finally:
        store.close()
    listed = runner.invoke(main, ["edges"]).output.splitlines()
    assert [line.split()[0] for line in listed] == ["site-a", "site-b"], listed
    assert listed[0].endswith("site-a/kitchen, site-a/hall") and " checked in " in listed[0], listed
    assert runner.invoke(main, ["edges", "forget", "site-a"]).output.strip() == "edge site-a forgotten"
    gone = runner.invoke(main, ["edges", "forget", "site-a"])
    assert (gone.exit_code, gone.output.strip()) == (1, "Error: no edge named 'site-a'")
    assert [line.split()[0] for line in runner.invoke(main, ["edges"]).output.splitlines()] == ["site-b"]
