"""The configuration file: YAML or TOML, where it is found, what wins over it, and one line
naming the file and the key for each mistake in it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firewatch.config import ConfigError, load_settings

TWO_CAMERAS_YAML = """\
detect_confidence: 0.3
cameras:
  - name: kitchen
    source: rtsp://10.0.0.5/stream
    fps: 5
    detect_confidence: 0.5
    zones:
      - name: fireplace
        points: [[0.1, 0.5], [0.3, 0.5], [0.3, 0.9], [0.1, 0.9]]
  - name: porch
    source: 0
"""

TWO_CAMERAS_TOML = """\
detect_confidence = 0.3

[[cameras]]
name = "kitchen"
source = "rtsp://10.0.0.5/stream"
fps = 5
detect_confidence = 0.5

[[cameras.zones]]
name = "fireplace"
points = [[0.1, 0.5], [0.3, 0.5], [0.3, 0.9], [0.1, 0.9]]

[[cameras]]
name = "porch"
source = 0
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("FIREWATCH_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no firewatch.yaml of the checkout's is found


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(**kwargs: object) -> str:
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None, **kwargs)  # type: ignore[arg-type]
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("name", "text"), [("firewatch.yaml", TWO_CAMERAS_YAML),
                                            ("firewatch.toml", TWO_CAMERAS_TOML)])
def test_yaml_and_toml_give_the_same_cameras(tmp_path: Path, name: str, text: str) -> None:
    settings = load_settings(env_file=None, config_file=write(tmp_path, name, text))
    kitchen, porch = settings.camera_configs
    assert (kitchen.name, kitchen.source, kitchen.fps, kitchen.detect_confidence) == (
        "kitchen", "rtsp://10.0.0.5/stream", 5, 0.5)
    (zone,) = kitchen.zone_values()
    assert zone.name == "fireplace" and zone.points[2] == (0.3, 0.9)
    # no fps of its own: FIREWATCH_SOURCE_FPS, the rate the verification is fitted at
    assert (porch.name, porch.source, porch.fps, porch.zones) == ("porch", "0", 10.0, [])
    assert settings.detect_confidence == 0.3


def test_file_in_the_working_directory_is_found_and_firewatch_config_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "firewatch.yaml", TWO_CAMERAS_YAML)
    assert [c.name for c in load_settings(env_file=None).camera_configs] == ["kitchen", "porch"]
    other = write(tmp_path, "other.toml", '[[cameras]]\nname = "attic"\nsource = "/dev/video2"\n')
    monkeypatch.setenv("FIREWATCH_CONFIG", str(other))
    assert [c.name for c in load_settings(env_file=None).camera_configs] == ["attic"]
    monkeypatch.setenv("FIREWATCH_CONFIG", str(tmp_path / "missing.yaml"))
    assert error_of() == f"FIREWATCH_CONFIG: no such file: {tmp_path / 'missing.yaml'}"


def test_firewatch_config_from_the_env_file(tmp_path: Path) -> None:
    config = write(tmp_path, "cams.yml", "cameras: [{name: attic, source: /dev/video2}]\n")
    env = write(tmp_path, ".env", f"FIREWATCH_CONFIG={config}\n")
    assert [c.name for c in load_settings(env_file=env).camera_configs] == ["attic"]


def test_no_cameras_in_the_file_falls_back_to_the_environment_camera(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, "firewatch.yaml", "confirm_hits: 2\n")
    monkeypatch.setenv("FIREWATCH_CAMERA_SOURCE", "rtsp://10.0.0.9/live")
    monkeypatch.setenv("FIREWATCH_CAMERA_NAME", "garage")
    monkeypatch.setenv("FIREWATCH_SOURCE_FPS", "4")
    settings = load_settings(env_file=None, config_file=config)
    (camera,) = settings.camera_configs
    assert (camera.name, camera.source, camera.fps, camera.zones) == ("garage", "rtsp://10.0.0.9/live", 4, [])
    assert settings.confirm_hits == 2


def test_the_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, "firewatch.yaml", TWO_CAMERAS_YAML)
    monkeypatch.setenv("FIREWATCH_DETECT_CONFIDENCE", "0.4")
    settings = load_settings(env_file=None, config_file=config)
    assert settings.detect_confidence == 0.4
    # A per-camera value is the camera's own: the global setting does not replace it.
    assert [c.detect_confidence for c in settings.camera_configs] == [0.5, None]
    # A bad value from the environment is blamed on the environment, not on the file.
    monkeypatch.setenv("FIREWATCH_DETECT_CONFIDENCE", "2")
    assert error_of(config_file=config).startswith("FIREWATCH_DETECT_CONFIDENCE: ")


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("bad.yaml", "cameras:\n  - name: kitchen\n   source: x\n", "{path}: not valid YAML: "),
    ("bad.toml", "cameras = [\n", "{path}: not valid TOML: "),
    ("list.yaml", "- kitchen\n", "{path}: expected keys and values at the top, found list"),
    ("typo.yaml", "detect_confidance: 0.3\n", "{path}: unknown key 'detect_confidance' (keys are"),
    ("nested.yaml", "cameras:\n  - name: kitchen\n    sorce: /dev/video0\n", "{path}: cameras[0].sorce: unknown key"),
    ("zone.yaml", "cameras:\n  - {name: k, source: '0', zones: [{name: z, points: [[0, 0], [2, 0], [0, 1]]}]}\n",
     "{path}: cameras[0].zones[0].points: point (2.0, 0.0) is outside 0-1"),
    ("twice.toml", '[[cameras]]\nname = "k"\nsource = "0"\n[[cameras]]\nname = "k"\nsource = "1"\n',
     "{path}: cameras: camera names must be unique: k given twice"),
    ("value.yaml", "confirm_window: none\n", "{path}: confirm_window: Input should be a valid integer"),
])
def test_each_mistake_is_one_line_naming_the_file_and_key(tmp_path: Path, name: str, text: str,
                                                           expected: str) -> None:
    path = write(tmp_path, name, text)
    assert error_of(config_file=path).startswith(expected.format(path=path))
