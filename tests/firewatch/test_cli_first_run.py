"""A newcomer's first run and everyday mistakes, through the installed ``firewatch`` command:
each case runs it as a subprocess on real files and checks what a person would read (one
line, no traceback), what a script would get (exit code, JSON) and what is left on disk."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from firewatch.config import OPERATING_POINTS
from firewatch.paths import SHIPPED_DETECTORS, data_root
from tests.support.terminal import run_on_terminal

EXE = Path(sys.executable).parent / "firewatch"
TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"
TRAIN_HINT = 'pip install -e ".[train]"'
# Hides the train extra from a subprocess: the import system reports it as not installed.
_NO_TRAIN_EXTRA = '''
import sys
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "ultralytics"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Hide())
'''


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh directory with no .env and no FIREWATCH_ settings, as after a clone."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FIREWATCH_")}
    clean["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    clean["COLUMNS"] = "200"
    monkeypatch.chdir(tmp_path)
    return clean


def fw(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env, timeout=timeout)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``Error:`` line a failed command printed, after checking it is the only one."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if not _is_log_line(line)]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("Error: ")
    return errors[0]


def _is_log_line(line: str) -> bool:
    """A logging record ("2026-...") or the note that a first run made the data directory."""
    return (line[:2] == "20" and line[4:5] == "-") or line.startswith("created the data directory")


def test_detect_a_missing_file_is_one_line(env: dict[str, str]) -> None:
    result = fw("detect", "/tmp/no-such-clip.mp4", env=env)
    assert result.returncode == 1
    assert one_error_line(result) == "Error: no such camera, URL, file or folder: /tmp/no-such-clip.mp4"


def test_run_on_a_missing_file_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    result = fw("run", env={**env, "FIREWATCH_CAMERA_SOURCE": str(missing)})
    assert result.returncode == 1
    assert one_error_line(result) == f"Error: no such camera, URL, file or folder: {missing}"


def test_detect_a_file_that_is_not_a_video_names_its_path(env: dict[str, str], tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")
    result = fw("detect", str(notes), env=env)
    assert result.returncode == 1
    assert one_error_line(result) == f"Error: cannot open {notes} (not a video file OpenCV can read)"


@pytest.mark.parametrize("command", [["evaluate", "--data", "."], ["train", "detector"],
                                     ["train", "classifier"]], ids=" ".join)
def test_training_commands_without_the_train_extra(env: dict[str, str], tmp_path: Path,
                                                   command: list[str]) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(_NO_TRAIN_EXTRA)
    result = fw(*command, env={**env, "PYTHONPATH": str(hide)})
    assert result.returncode == 1
    line = one_error_line(result)
    assert "train extra" in line and line.endswith(TRAIN_HINT)


def test_demo_alerts_on_its_synthetic_clip_and_says_where_data_goes(env: dict[str, str],
                                                                    tmp_path: Path) -> None:
    first = fw("demo", env=env)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert f"created the data directory {tmp_path / 'data'}" in first.stderr
    lines = first.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("alert "))
    alert = lines[header + 1].split()
    assert alert[1] == "fire"
    assert float(alert[3]) <= 2.0  # seconds into the clip: the flame shows at 1 s
    assert "after the flame appeared" in lines[header + 1]
    assert lines[-1].startswith("1 alert raised")
    snapshot = Path(alert[-1])
    assert snapshot.is_file() and cv2.imread(str(snapshot)) is not None
    assert (tmp_path / "data" / "demo" / "flame.mp4").is_file()

    again = fw("demo", env=env)
    assert again.returncode == 0 and "created the data directory" not in again.stderr


def test_detect_prints_a_summary_table_or_json(env: dict[str, str], tmp_path: Path) -> None:
    from firewatch.demo_clip import write_clip

    clip = write_clip(tmp_path / "flame.mp4")
    table = fw("detect", str(clip), env=env)
    assert table.returncode == 0 and "ReplaySummary" not in table.stdout
    rows = dict(line.split(None, 1) for line in table.stdout.splitlines() if line.split()[0] in
                {"source", "frames", "alerts"})
    assert rows["source"].strip() == str(clip)
    assert rows["frames"].startswith("60 (5.9 s of video)")
    assert rows["alerts"].startswith("1 started")
    as_json = fw("detect", str(clip), "--json", env=env)
    summary = json.loads(as_json.stdout)
    assert summary["frames"] == 60 and summary["events"]["started"] == 1
    # Not a terminal: no progress bar in what a script or a log captures.
    assert "detect:" not in table.stderr + as_json.stderr


def test_detect_draws_a_progress_bar_on_a_terminal(env: dict[str, str], tmp_path: Path) -> None:
    from firewatch.demo_clip import write_clip

    clip = write_clip(tmp_path / "flame.mp4")
    proc, terminal = run_on_terminal([str(EXE), "detect", str(clip)], env)
    assert proc.returncode == 0
    assert b"detect:" in terminal and b"/60 [" in terminal
    assert b"frames" in proc.stdout  # the summary still goes to stdout
    # The alert's log lines are logged while the bar is drawn: each starts a line of its own
    # (what is left after the bar's last carriage return), never the bar's tail.
    events = [line for line in terminal.split(b"\n") if b"INFO vision.pipeline" in line]
    assert [kind for kind in (b'"started"', b'"cleared"') if any(kind in line for line in events)] == \
        [b'"started"', b'"cleared"'], terminal
    for line in events:
        assert line.rstrip(b"\r").rsplit(b"\r", 1)[-1].startswith(b"20"), line


@pytest.mark.skipif(not (data_root() / "fire").is_dir(), reason="needs the shared fire/ dataset")
def test_bench_draws_a_progress_bar_on_a_terminal_only(env: dict[str, str]) -> None:
    run = ["bench", "pipeline", "--frames", "4", "--rounds", "2", "--fire-free", "0", "--threads", "1",
           "--no-classifier"]
    proc, terminal = run_on_terminal([str(EXE), *run], env, timeout=300)
    assert proc.returncode == 0, terminal
    assert b"bench pipeline:" in terminal and b"/2 [" in terminal
    assert b"full pipeline" in proc.stdout  # the table still goes to stdout, without the bar
    piped = fw(*run, env=env, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "full pipeline" in piped.stdout
    assert "bench pipeline:" not in piped.stdout + piped.stderr


def test_run_without_a_camera_says_once_what_to_set(env: dict[str, str]) -> None:
    proc = subprocess.Popen([str(EXE), "run"], env={**env, "FIREWATCH_CAMERA_SOURCE": "7"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(12)  # the first open and at least two retries (1 s, 2 s, 4 s)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert output.count("camera source '7' (FIREWATCH_CAMERA_SOURCE) is not delivering") == 1, output
    assert output.count("`firewatch demo` plays a fire clip") == 1
    assert output.count("cannot open camera 7; retrying") == 1  # later retries log at debug level
    # OpenCV's own V4L2/FFmpeg chatter is silenced.
    assert "VIDEOIO" not in output and "WARN:" not in output and "cap_v4l" not in output


def test_enroll_refuses_an_unknown_user(env: dict[str, str], tmp_path: Path) -> None:
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), np.zeros((64, 64, 3), np.uint8))
    result = fw("enroll", "--user-id", "999", "--name", "Eve", str(photo), env=env)
    assert result.returncode == 1
    line = one_error_line(result)
    assert "no operator with user id 999" in line and "--create" in line
    listed = fw("operators", "list", env=env)
    assert listed.stdout.strip() == "no operators"  # nobody was added on the way


def test_info_masks_secrets(env: dict[str, str], tmp_path: Path) -> None:
    result = fw("info", env={**env, "FIREWATCH_BOT_TOKEN": TOKEN,
                             "FIREWATCH_CAMERA_SOURCE": "rtsp://bob:s3cret@cam.local/live"})
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout and "s3cret" not in result.stdout
    rows = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert rows["FIREWATCH_BOT_TOKEN"].strip() == "***"
    assert rows["FIREWATCH_CAMERA_SOURCE"].strip() == "rtsp://***@cam.local/live"
    assert rows["FIREWATCH_DATA_DIR"].strip() == str(tmp_path / "data")
    assert not (tmp_path / "data").exists()  # looking is not creating


def test_misspelt_keys_are_named_with_a_suggestion(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FIREWATCH_CONFRIM_HITS=2\nFIREWATCH_CAMERA_NAME=yard\n")
    result = fw("info", env={**env, "FIREWATCH_LOGLEVEL": "DEBUG"})
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: unknown setting FIREWATCH_LOGLEVEL in the environment (did you mean "
        "FIREWATCH_LOG_LEVEL?): ignored",
        "warning: unknown setting FIREWATCH_CONFRIM_HITS in .env (did you mean "
        "FIREWATCH_CONFIRM_HITS?): ignored",
    ]


def test_history_has_column_headers(env: dict[str, str], tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from storage import Store, upgrade

    url = f"sqlite:///{tmp_path / 'data' / 'firewatch.db'}"
    (tmp_path / "data").mkdir()
    upgrade(url)
    store = Store(url)
    store.record_alert(camera="yard", track_id=3, class_name="fire", severity="fire",
                       confidence=0.87, area=0.12, snapshot_path=None,
                       seen_at=datetime.now(timezone.utc), push=True)
    store.close()
    lines = fw("history", env=env).stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "first", "seen", "camera"]
    assert "yard" in lines[1]


def test_bench_help_shows_the_benchmarks_own_options_in_plain_words(env: dict[str, str]) -> None:
    result = fw("bench", "pipeline", "--help", env=env)
    assert result.returncode == 0
    assert "usage: firewatch bench pipeline" in result.stdout
    assert "--frames" in result.stdout and "--alerts" in result.stdout
    description = result.stdout.split("\n\n")[1]
    assert "``" not in result.stdout and ":func:" not in result.stdout
    assert "throughput" in description and len(description) < 400


@pytest.mark.skipif(not (data_root() / "fire").is_dir(), reason="needs the shared fire/ dataset")
def test_evaluate_leaves_the_working_directory_clean(env: dict[str, str], tmp_path: Path) -> None:
    """Images go under --out only; ultralytics' settings neither print nor land here."""
    pytest.importorskip("ultralytics")
    data = tmp_path / "set"
    source = data_root() / "fire"
    labelled = [p for p in sorted((source / "labels" / "val").glob("rf__*.txt")) if p.stat().st_size][:4]
    for sub in ("images/val", "labels/val"):
        (data / sub).mkdir(parents=True)
    for label in labelled:
        shutil.copy(label, data / "labels" / "val" / label.name)
        shutil.copy(source / "images" / "val" / f"{label.stem}.jpg", data / "images" / "val")
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run([str(EXE), "evaluate", "--data", str(data), "--json", "report.json"],
                            capture_output=True, text=True, env=env, cwd=work, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Ultralytics Settings" not in result.stdout + result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["report.json"]
    plots = subprocess.run([str(EXE), "evaluate", "--data", str(data), "--out", "plots"],
                           capture_output=True, text=True, env=env, cwd=work, timeout=300)
    assert plots.returncode == 0, plots.stderr
    assert any(p.suffix == ".png" for p in (work / "plots").iterdir())
    # The operating threshold is the daemon's for the detector evaluated, each its own.
    v1 = subprocess.run([str(EXE), "evaluate", "--data", str(data), "--model", str(SHIPPED_DETECTORS["v1"][0]),
                         "--json", "v1.json"], capture_output=True, text=True, env=env, cwd=work, timeout=300)
    assert v1.returncode == 0, v1.stderr
    reports = {name: json.loads((work / name).read_text()) for name in ("report.json", "v1.json")}
    assert [(Path(r["model"]), r["conf"]) for r in reports.values()] == [
        (SHIPPED_DETECTORS["v2"][0], OPERATING_POINTS["v2"][0]), (SHIPPED_DETECTORS["v1"][0], OPERATING_POINTS["v1"][0])]
