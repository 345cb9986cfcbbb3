"""Peak memory of the daemon: ``firewatch run`` over a replayed camera, target 400 MB.

The daemon runs as it would on site — its own process, headless (no bot token: alerts are
recorded in its database, nothing is pushed), the shipped classifier when present — with
``FIREWATCH_CAMERA_SOURCE`` pointing at a folder of numbered links to real fire frames,
long enough for ``duration_s`` at ``FIREWATCH_SOURCE_FPS`` (paced in real time, as a camera).
RSS of the process tree is polled with psutil; the kernel's own high-water mark (VmHWM) of
the main process is read just before the stop, so a spike between polls is not missed. It is
then stopped with SIGTERM, as systemd does, and the time it takes to exit is reported too
(``TimeoutStopSec`` in deploy/firewatch.service must exceed it).

    python -m bench.memory [--model models/fire-detector.onnx] [--duration 300] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from bench.help import user_help
from bench.pipeline import data_dir, natural_sorted
from firewatch.paths import SHIPPED_DETECTOR
from firewatch.progress import progress_bar

TARGET_MB = 400.0
MIB = 1024.0 * 1024.0


@dataclass
class MemoryBench:
    """Memory in MiB. ``exit_code`` None: it did not stop within the stop timeout (killed)."""

    model: str
    duration_s: float
    ran_s: float
    samples: int
    peak_rss_mb: float
    mean_rss_mb: float
    last_rss_mb: float
    vm_hwm_mb: float | None
    target_mb: float
    meets_target: bool
    stop_s: float | None
    exit_code: int | None
    alerts_logged: int
    log_tail: str


def firewatch_command() -> list[str]:
    """The installed console script next to this interpreter, else the same entry point."""
    script = Path(sys.executable).parent / "firewatch"
    if script.is_file():
        return [str(script)]
    found = shutil.which("firewatch")
    return [found] if found else [sys.executable, "-c", "from firewatch.cli import main; main()"]


def camera_folder(folder: Path, frames: int, images: list[Path] | None = None) -> Path:
    """``frames`` numbered links cycling over real fire frames (default: the rf__ video frames
    of train and val, in order), for an ImageFolderSource to play."""
    if images is None:
        fire = data_dir() / "images"
        images = natural_sorted(fire.glob("*/rf__*_mp4-*.jpg"))
    if not images:
        raise FileNotFoundError("no frames to play")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        (folder / f"{i:07d}.jpg").symlink_to(images[i % len(images)].resolve())
    return folder


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:  # a child may exit between listing and reading
            pass
    return total


def _vm_hwm(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def replay_frames(duration_s: float, fps: float) -> int:
    """Frames enough that the camera never ends early, even if paced slightly fast."""
    return int(duration_s * fps * 1.2) + 50


def daemon_env(
    scratch: Path,
    model: str | Path,
    camera: Path,
    *,
    fps: float,
    threads: int,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``firewatch run``'s environment: this one without its FIREWATCH_* values, playing
    ``camera`` headless, with its data under ``scratch``; ``extra_env`` is applied last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREWATCH_")}
    env.update({
        "FIREWATCH_BOT_TOKEN": "",
        "FIREWATCH_CAMERA_SOURCE": str(camera),
        "FIREWATCH_CAMERA_NAME": "bench",
        "FIREWATCH_SOURCE_FPS": str(fps),
        "FIREWATCH_DATA_DIR": str(scratch / "data"),
        "FIREWATCH_DETECTOR_MODEL": str(Path(model).resolve()),
        "FIREWATCH_INFERENCE_THREADS": str(threads),
        "FIREWATCH_LOG_LEVEL": "INFO",
        **(extra_env or {}),
    })
    return env


@dataclass
class DaemonRun:
    """One ``firewatch run``: RSS samples of its process tree (bytes), the main process's
    VmHWM (MiB), and ``exit_code`` None when it did not stop within the stop timeout."""

    samples: list[int]
    vm_hwm_mb: float | None
    ran_s: float
    stop_s: float | None
    exit_code: int | None
    log_text: str


def _sigterm(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[float | None, int | None]:
    """Stop as systemd does; returns (seconds to exit, exit code), (None, None) if it had to be killed."""
    if proc.poll() is not None:
        return None, proc.returncode
    stopping = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None, None
    return time.monotonic() - stopping, proc.returncode


def run_daemon(
    env: Mapping[str, str], cwd: Path, duration_s: float, *, poll_s: float = 0.5, stop_timeout_s: float = 60.0
) -> DaemonRun:
    """Run ``firewatch run`` in ``cwd`` for ``duration_s`` seconds, sampling its memory, then SIGTERM it."""
    log_path = cwd / "firewatch.log"
    samples: list[int] = []
    hwm: float | None = None
    with open(log_path, "wb") as log_file, progress_bar("firewatch run", total=round(duration_s), unit="s") as bar:
        # cwd is a scratch folder, so that no .env of the repository is read.
        proc = subprocess.Popen(firewatch_command() + ["run"], cwd=cwd, env=dict(env), stdout=log_file, stderr=subprocess.STDOUT)
        process = psutil.Process(proc.pid)
        started = time.monotonic()
        try:
            while time.monotonic() - started < duration_s and proc.poll() is None:
                samples.append(_tree_rss(process))
                hwm = _vm_hwm(proc.pid) or hwm
                time.sleep(poll_s)
                bar.update(min(int(time.monotonic() - started), bar.total) - bar.n)
            ran = time.monotonic() - started
            stop_s, exit_code = _sigterm(proc, stop_timeout_s)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return DaemonRun(samples, hwm, ran, stop_s, exit_code, log_path.read_text(errors="replace"))


def memory_bench(model: str | Path, duration_s: float, run: DaemonRun) -> MemoryBench:
    samples = run.samples
    peak = max(samples, default=0) / MIB
    return MemoryBench(
        model=str(model),
        duration_s=duration_s,
        ran_s=round(run.ran_s, 1),
        samples=len(samples),
        peak_rss_mb=round(peak, 1),
        mean_rss_mb=round(sum(samples) / len(samples) / MIB, 1) if samples else 0.0,
        last_rss_mb=round(samples[-1] / MIB, 1) if samples else 0.0,
        vm_hwm_mb=round(run.vm_hwm_mb, 1) if run.vm_hwm_mb is not None else None,
        target_mb=TARGET_MB,
        meets_target=max(peak, run.vm_hwm_mb or 0.0) <= TARGET_MB,
        stop_s=round(run.stop_s, 2) if run.stop_s is not None else None,
        exit_code=run.exit_code,
        alerts_logged=run.log_text.count('"event": "started"'),
        log_tail="\n".join(run.log_text.splitlines()[-15:]),
    )


def main(
    model: str | Path = SHIPPED_DETECTOR,
    duration_s: float = 300.0,
    *,
    fps: float = 10.0,
    threads: int = 2,
    poll_s: float = 0.5,
    stop_timeout_s: float = 60.0,
    extra_env: dict[str, str] | None = None,
) -> dict:
    """Run ``firewatch run`` for ``duration_s`` seconds, then SIGTERM it; returns :class:`MemoryBench` as a dict."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp_name:
        tmp = Path(tmp_name)
        camera = camera_folder(tmp / "camera", replay_frames(duration_s, fps))
        env = daemon_env(tmp, model, camera, fps=fps, threads=threads, extra_env=extra_env)
        run = run_daemon(env, tmp, duration_s, poll_s=poll_s, stop_timeout_s=stop_timeout_s)
    return asdict(memory_bench(model, duration_s, run))


def table(result: dict) -> str:
    return (
        f"firewatch run, {result['ran_s']:.0f} s of replay ({result['samples']} samples), model {result['model']}\n"
        f"peak RSS {result['peak_rss_mb']:.1f} MiB (VmHWM {result['vm_hwm_mb']} MiB), mean {result['mean_rss_mb']:.1f}, "
        f"last {result['last_rss_mb']:.1f}; target <= {result['target_mb']:.0f}: "
        f"{'met' if result['meets_target'] else 'NOT met'}\n"
        f"SIGTERM -> exit in {result['stop_s']} s, exit code {result['exit_code']}; alerts started {result['alerts_logged']}"
    )


def daemon_parser(doc: str | None, prog: str | None = None) -> argparse.ArgumentParser:
    """The options every ``firewatch run`` bench takes."""
    parser = argparse.ArgumentParser(prog=prog, description=user_help(doc))
    parser.add_argument("--model", type=Path, default=SHIPPED_DETECTOR)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of replay")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    return parser


def report(text: str, memory: dict, result: dict, json_path: Path | None) -> None:
    """Print ``text``, the daemon's last lines if it failed, and write ``result`` as JSON."""
    print(text)
    if memory["exit_code"] not in (0, None) or memory["samples"] == 0:
        print(memory["log_tail"])
    if json_path:
        json_path.write_text(json.dumps(result, indent=2))


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """``python -m bench.memory`` / ``firewatch bench memory``."""
    args = daemon_parser(__doc__, prog).parse_args(argv)
    result = main(args.model, args.duration, fps=args.fps, threads=args.threads)
    report(table(result), result, result, args.json)


if __name__ == "__main__":
    cli()
