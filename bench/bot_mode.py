"""The daemon in bot mode: peak memory (target 400 MB) and how long an alert takes to reach
Telegram.

``firewatch run`` runs in its own process, as in :mod:`bench.memory`, but with a bot token
and ``FIREWATCH_API_BASE_URL`` pointing at the local fake Bot API server of tests/support/botapi
(its own process too, so it is not counted in the daemon's memory). One admin is configured:
its private chat receives every alert, and a fresh database starts armed, so each ``started``
alert is pushed as a ``sendPhoto`` over HTTP, like any other.

The camera (``FIREWATCH_SOURCE_FPS``, paced in real time) plays the 51 consecutive frames of
the rf__fire2_mp4 clip, then fire-free val images held ``hold`` frames each (a quiet scene,
never a frozen one) for ``gap_s``, longer than the daemon's ``FIREWATCH_CLEAR_AFTER_S``, so
each replay of the clip raises new alerts; over and over, for the whole run. Fire-free
images the detector still false-alarms on raise alerts too: they travel the same path.

Latency of an alert, from its ``started`` time (the alert row's ``first_seen``, which is the
event's ``wall``: the time the confirming frame left the camera) to the fake server receiving
the ``sendPhoto`` request that carries it (the server's own clock, on the same machine). Where
it goes, per alert: ``emitted`` (the event's JSON line in the daemon's log: inference,
tracking, snapshot files), ``recorded`` (the delivery row's ``created_at``: the hop to the bot's
event loop and the database transaction), ``received`` (the outbox's pass: reading the alert,
the upload), ``answered`` (the delivery's ``sent_at``: the server's answer, marking it sent).

    firewatch bench bot [--model models/fire-detector.onnx] [--duration 300] [--fps 10]
        [--threads 2] [--gap 32] [--hold 10] [--json out.json]

(or ``python -m bench.bot_mode``). Alerts started in the last seconds may not be sent before
the stop; they are counted apart (``unsent``), not in the latency.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.memory import (
    DaemonRun,
    camera_folder,
    daemon_env,
    daemon_parser,
    memory_bench,
    replay_frames,
    report,
    run_daemon,
)
from bench.memory import table as memory_table
from bench.pipeline import (
    FIRE_SEQUENCE,
    data_dir,
    fire_free_images,
    natural_sorted,
)
from firewatch.paths import SHIPPED_DETECTOR

if TYPE_CHECKING:
    from tests.support.botapi import StandaloneServer

# Shaped like a real token, so that the daemon's log redaction applies to it as well.
TOKEN = "424242424:BENCH-fake-token-for-the-local-bot-api"
OPERATOR_ID = 4242
_ALERT_ID = re.compile(r"Alert #(\d+)")
# "2026-11-28 04:12:53,201 INFO vision.pipeline: {json}" (firewatch.logging_setup's format)
_EVENT_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ vision\.pipeline: (\{.*\})$")


def _default_gap_s() -> float:
    from firewatch.config import Settings

    return float(Settings.model_fields["clear_after_s"].default) + 2.0


# -- the camera ------------------------------------------------------------------------------


def alert_cycles(frames: int, fire: Sequence[Path], quiet: Sequence[Path], gap_frames: int, hold: int) -> list[Path]:
    """``fire``, then ``gap_frames`` of ``quiet`` images held ``hold`` frames each (the next
    ones at every gap), repeated up to ``frames`` frames."""
    if not fire or not quiet:
        raise FileNotFoundError("no fire clip or no fire-free images to play")
    quiet_images = itertools.cycle(quiet)
    played: list[Path] = []
    while len(played) < frames:
        played += fire
        played += [image for image in itertools.islice(quiet_images, math.ceil(gap_frames / hold)) for _ in range(hold)]
    return played[:frames]


def fire_camera(folder: Path, frames: int, *, fps: float, gap_s: float, hold: int) -> Path:
    fire = data_dir() / "images"
    clip = natural_sorted((fire / "train").glob(FIRE_SEQUENCE))
    images = alert_cycles(frames, clip, fire_free_images(fire / "val"), round(gap_s * fps), hold)
    return camera_folder(folder, frames, images)


# -- latency ---------------------------------------------------------------------------------


@dataclass
class AlertLatency:
    """Seconds after ``started`` (a Unix time); None: not seen (e.g. the run stopped first)."""

    alert_id: int
    class_name: str
    started: float
    emitted_s: float | None
    recorded_s: float | None
    received_s: float | None
    answered_s: float | None


def _log_time(stamp: str) -> float:
    # The daemon logs local time; this process shares its clock and time zone.
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def emitted_times(log_text: str) -> dict[tuple[int, str], float]:
    """(track id, class) -> when the pipeline logged that track's ``started`` event."""
    out: dict[tuple[int, str], float] = {}
    for line in log_text.splitlines():
        match = _EVENT_LINE.match(line)
        if match is None:
            continue
        event = json.loads(match.group(2))
        if event.get("event") == "started":
            out.setdefault((event["track_id"], event["class"]), _log_time(match.group(1)))
    return out


def received_times(calls: Sequence[dict[str, Any]], chat_id: int) -> dict[int, float]:
    """Alert id -> when the fake server received the first ``sendPhoto`` of it to ``chat_id``."""
    out: dict[int, float] = {}
    for call in calls:
        params = call["params"]
        match = _ALERT_ID.search(str(params.get("caption", "")))
        if match and str(params.get("chat_id")) == str(chat_id):
            out.setdefault(int(match.group(1)), call["time"])
    return out


def alert_latencies(db: Path, log_text: str, received: dict[int, float]) -> list[AlertLatency]:
    from storage import Store
    from storage.models import DeliveryKind

    store = Store(f"sqlite:///{db}")
    try:
        alerts = sorted(store.recent_alerts(limit=1_000_000)[0], key=lambda a: a.id)
        first_photos = {d.alert_id: d for d in store.deliveries() if d.kind is DeliveryKind.ALERT}
    finally:
        store.close()
    emitted = emitted_times(log_text)
    out = []
    for alert in alerts:
        started = alert.first_seen.timestamp()
        delivery = first_photos.get(alert.id)
        out.append(AlertLatency(
            alert.id, alert.class_name, round(started, 3),
            _after(started, emitted.get((alert.track_id, alert.class_name))),
            _after(started, delivery.created_at if delivery else None),
            _after(started, received.get(alert.id)),
            _after(started, delivery.sent_at if delivery else None),
        ))
    return out


def _after(started: float, t: float | datetime | None) -> float | None:
    seconds = t.timestamp() if isinstance(t, datetime) else t
    return None if seconds is None else round(seconds - started, 3)


@dataclass
class StageSummary:
    stage: str
    median_s: float | None
    max_s: float | None


STAGES = ("emitted", "recorded", "received", "answered")


def summarise(latencies: Sequence[AlertLatency]) -> list[StageSummary]:
    out = []
    for stage in STAGES:
        values = [v for a in latencies if (v := getattr(a, f"{stage}_s")) is not None]
        out.append(StageSummary(stage, round(statistics.median(values), 3) if values else None,
                                max(values) if values else None))
    return out


# -- the run ---------------------------------------------------------------------------------


def _bot_env(server: StandaloneServer) -> dict[str, str]:
    return {
        "FIREWATCH_BOT_TOKEN": TOKEN,
        "FIREWATCH_API_BASE_URL": server.base_url,
        "FIREWATCH_API_FILE_URL": server.base_file_url,
        "FIREWATCH_ADMIN_IDS": str(OPERATOR_ID),
    }


def main(
    model: str | Path = SHIPPED_DETECTOR,
    duration_s: float = 300.0,
    *,
    fps: float = 10.0,
    threads: int = 2,
    gap_s: float | None = None,
    hold: int = 10,
    poll_s: float = 0.5,
    stop_timeout_s: float = 60.0,
) -> dict:
    """Run ``firewatch run`` against the fake Bot API for ``duration_s`` seconds, then SIGTERM it;
    returns ``{"memory": MemoryBench, "latency": [StageSummary], "alerts": [AlertLatency], ...}``."""
    gap_s = _default_gap_s() if gap_s is None else gap_s
    with tempfile.TemporaryDirectory(prefix="bench-bot-") as tmp_name:
        tmp = Path(tmp_name)
        camera = fire_camera(tmp / "camera", replay_frames(duration_s, fps), fps=fps, gap_s=gap_s, hold=hold)
        from tests.support.botapi import StandaloneServer  # needs aiohttp (the dev extra): only when run

        with StandaloneServer(TOKEN) as server:
            server.control.add_user("Operator", user_id=OPERATOR_ID)
            env = daemon_env(tmp, model, camera, fps=fps, threads=threads, extra_env=_bot_env(server))
            run: DaemonRun = run_daemon(env, tmp, duration_s, poll_s=poll_s, stop_timeout_s=stop_timeout_s)
            calls = server.control.calls("sendPhoto")
        latencies = alert_latencies(tmp / "data" / "firewatch.db", run.log_text, received_times(calls, OPERATOR_ID))
    return {
        "memory": asdict(memory_bench(model, duration_s, run)),
        "fps": fps,
        "gap_s": gap_s,
        "send_photo_calls": len(calls),
        "unsent": sum(1 for a in latencies if a.received_s is None),
        "latency": [asdict(s) for s in summarise(latencies)],
        "alerts": [asdict(a) for a in latencies],
    }


def table(result: dict) -> str:
    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    alerts = result["alerts"]
    lines = [
        "bot mode (fake Bot API over HTTP, one armed admin chat)",
        memory_table(result["memory"]),
        "",
        (f"{len(alerts)} alerts started, {result['send_photo_calls']} sendPhoto received, "
         f"{result['unsent']} not sent before the stop; camera {result['fps']:g} FPS, fire clip after "
         f"every {result['gap_s']:g} s of quiet"),
        f"{'seconds after started':<22} {'median':>8} {'max':>8}",
    ]
    lines += [f"{st['stage']:<22} {s(st['median_s']):>8} {s(st['max_s']):>8}" for st in result["latency"]]
    lines += ["", f"{'alert':>5} {'class':<6} {'emitted':>8} {'recorded':>8} {'received':>8} {'answered':>8}"]
    lines += [
        f"{a['alert_id']:>5} {a['class_name']:<6} {s(a['emitted_s']):>8} {s(a['recorded_s']):>8} "
        f"{s(a['received_s']):>8} {s(a['answered_s']):>8}"
        for a in alerts
    ]
    return "\n".join(lines)


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """``python -m bench.bot_mode`` / ``firewatch bench bot``."""
    parser = daemon_parser(__doc__, prog)
    parser.add_argument("--gap", type=float, default=None, help="seconds of fire-free images between fire clips "
                        "(default: the daemon's FIREWATCH_CLEAR_AFTER_S default + 2)")
    parser.add_argument("--hold", type=int, default=10, help="frames each fire-free image is held")
    args = parser.parse_args(argv)
    result = main(args.model, args.duration, fps=args.fps, threads=args.threads, gap_s=args.gap, hold=args.hold)
    report(table(result), result["memory"], result, args.json)


if __name__ == "__main__":
    cli()
