"""The deployment files: the systemd unit is valid and runs the daemon as documented, the
TensorRT options in docs/deploy.md are what the detector really passes, and the daemon stops
on SIGTERM well within the unit's TimeoutStopSec."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from tests.support.data import REPO

UNIT = REPO / "deploy" / "firewatch.service"
DOC = REPO / "docs" / "deploy.md"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """systemd's unit syntax: sections of ``Key=value`` lines; a key may repeat (kept in order)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a Key=value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


def _seconds(value: str) -> float:
    """systemd time spans as used here: ``45``, ``45s``, ``10min``, ``1min 30s``."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    # verify also checks that ExecStart's binary exists; /opt/firewatch is not installed here,
    # so that one line points at a real executable (its value is checked in the next test).
    text = re.sub(r"(?m)^ExecStart=.*$", f"ExecStart={sys.executable} -c pass", UNIT.read_text())
    copy = tmp_path / "firewatch.service"
    copy.write_text(text)
    out = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    # Unknown keys and bad values are only warnings (exit 0): any line about our file fails.
    ours = [line for line in (out.stdout + out.stderr).splitlines() if "firewatch.service" in line]
    assert out.returncode == 0 and not ours, out.stdout + out.stderr


def test_unit_runs_the_console_script_as_documented(unit):
    service = unit["Service"]
    (exec_start,) = service["ExecStart"]
    binary, *args = exec_start.split()
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert Path(binary).name in scripts and scripts[Path(binary).name] == "firewatch.cli:main"
    assert args == ["run"]
    assert Path(binary).is_absolute()

    assert service["Restart"] == ["on-failure"]
    assert _seconds(service["RestartSec"][0]) >= 1
    assert int(unit["Unit"]["StartLimitBurst"][0]) >= 2
    assert _seconds(unit["Unit"]["StartLimitIntervalSec"][0]) > _seconds(service["RestartSec"][0])
    assert service["EnvironmentFile"] == ["/etc/firewatch/firewatch.env"]
    assert service["User"][0] not in ("root", "0")
    assert service["StateDirectory"] == ["firewatch"]
    assert service["WorkingDirectory"] == ["/var/lib/firewatch"]
    assert "/var/lib/firewatch" in service["ReadWritePaths"][0].split()
    assert service["ProtectSystem"] == ["strict"]
    assert service["NoNewPrivileges"] == ["yes"] and service["PrivateTmp"] == ["yes"]
    assert service["KillSignal"] == ["SIGTERM"]
    # These would hide /dev/video* and the Jetson GPU nodes (ProtectClock implies DeviceAllow).
    for hiding in ("PrivateDevices", "ProtectClock", "DeviceAllow", "DevicePolicy"):
        assert hiding not in service


def test_unit_and_docs_name_only_real_settings(unit):
    from firewatch.config import Settings

    known = {f"FIREWATCH_{name.upper()}" for name in Settings.model_fields}
    known.add("FIREWATCH_DATA")  # the dataset location for the benchmarks, not a daemon setting
    in_unit = {value.split("=", 1)[0] for value in unit["Service"].get("Environment", [])}
    in_docs = set(re.findall(r"FIREWATCH_[A-Z_]+", DOC.read_text()))
    assert {k for k in in_unit if k.startswith("FIREWATCH_")} <= known
    assert in_docs - known == set()
    example = set(re.findall(r"(?m)^(FIREWATCH_[A-Z_]+)=", (REPO / ".env.example").read_text()))
    assert example <= known


def documented_provider_args(cache_dir: Path) -> list:
    """The JSON block after ``<!-- provider-args -->`` in docs/deploy.md, cache dir filled in."""
    match = re.search(r"<!-- provider-args -->\s*```json\n(.*?)```", DOC.read_text(), re.S)
    assert match, "docs/deploy.md lost its provider-args block"
    args = json.loads(match.group(1).replace("$TRT_CACHE_DIR", str(cache_dir)))
    return [tuple(a) if isinstance(a, list) else a for a in args]


@pytest.mark.filterwarnings("ignore:Specified provider .* is not in available provider names")
def test_documented_tensorrt_options_are_what_the_detector_passes(tiny_onnx, tmp_path, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    from vision.detectors import Detector

    # Pretend this onnxruntime has TensorRT and CUDA; record what the detector asks the real
    # session for (this CPU build ignores the providers it lacks, with a warning).
    monkeypatch.setattr(ort, "get_available_providers", lambda: [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider",
    ])
    asked: list = []
    real_session = ort.InferenceSession

    class RecordingSession(real_session):  # type: ignore[misc, valid-type]
        def __init__(self, *args, providers=None, **kwargs):
            asked.append(providers)
            super().__init__(*args, providers=providers, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", RecordingSession)
    cache = tmp_path / "trt-cache"
    Detector(tiny_onnx, trt_cache_dir=cache, threads=1)
    assert asked == [documented_provider_args(cache)]

    asked.clear()
    Detector(tiny_onnx, threads=1)  # no cache dir: TensorRT keeps FP16, loses the cache keys
    assert asked == [[("TensorrtExecutionProvider", {"trt_fp16_enable": True}),
                      "CUDAExecutionProvider", "CPUExecutionProvider"]]


@pytest.mark.slow
def test_daemon_stops_on_sigterm_within_the_units_timeout(tiny_onnx, unit):
    """`firewatch run`, headless over a replayed folder, as systemd would start and stop it."""
    pytest.importorskip("psutil")
    from bench.memory import main as memory_bench

    result = memory_bench(tiny_onnx, duration_s=8.0, threads=1, poll_s=0.25)
    assert result["exit_code"] == 0, result["log_tail"]
    assert result["samples"] > 0 and result["peak_rss_mb"] > 50  # a real Python + onnxruntime process
    assert result["stop_s"] is not None
    assert result["stop_s"] < _seconds(unit["Service"]["TimeoutStopSec"][0]) / 2
