"""PostgreSQL down for minutes during a fire, with a real edge: nothing lost, nothing twice.

A real edge daemon (``firewatch run --role edge``, its own process, the shipped detector) watches
a camera that is a frame folder played at 10 frames a second in real time: a fire clip
(``navid__fire4.mp4`` of ``$FIREWATCH_DATA/videos``, 10 s) then a fire-free one
(``intel__car-detection.mp4``, 30 s), again and again, with ``FIREWATCH_CLEAR_AFTER_S=10``, so
fires start and end all through the outage; it records its alerts in a throwaway PostgreSQL
cluster. Once the edge has recorded its first alert, the
bench waits ``--before`` seconds, stops PostgreSQL for ``--outage`` seconds, starts it again,
and lets the clip run about ``--after`` seconds more, to its end, where the edge clears its
alerts and stops by itself.

What is counted, from the edge's log against the database afterwards: the fire events its
pipeline logged (one JSON line each, before the alert recorder) and the alerts the recorder
logged as started and cleared; ``lost`` is a fire started (or ended) there but not stored as an
alert (or its clear), ``duplicated`` an alert key stored twice or an alert queued twice for one
chat. The spool's two log lines (unreachable, reachable again with the records replayed) are
printed as they were written.

    firewatch bench outage [--outage 120] [--before 5] [--after 30] [--video navid__fire4.mp4]
        [--quiet intel__car-detection.mp4] [--keep DIR]

(or ``python -m bench.outage``). Needs the PostgreSQL server packages (initdb, pg_ctl).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.help import user_help

EDGE = "bench-edge"
CAMERA = "yard"
OPERATOR = 1001
FPS = 10.0
CLEAR_AFTER_S = 10.0  # a fire is over 10 s after its last sighting: it ends within the quiet clip
START_MARGIN_S = 30.0  # the edge's start (model load, migration) before the fire is seen
_STARTED = re.compile(r"alert (\S+) started: ")
_CHANGED = re.compile(r"alert (\S+) (updated|cleared)\s*$")
_EVENT = "vision.pipeline: {"
_DOWN = re.compile(r"database .* unreachable")
_UP = re.compile(r"database .* reachable again after")


@dataclass
class OutageRun:
    outage_s: float
    fires: int  # fires the edge's pipeline saw start (its event log)
    started: int  # alerts the edge logged as started
    started_while_down: int  # of those, recorded into the spool (logged by key, no id yet)
    cleared: int  # clears the edge logged
    stored: int  # the edge's alerts in the database afterwards
    stored_cleared: int
    stored_in_outage: int  # stored alerts whose first sighting (capture time) is inside the outage
    replayed: int  # records the spool replayed, from its "reachable again" line
    lost: int
    duplicated: int
    down_lines: list[str]
    up_lines: list[str]


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def clip_frames(video: Path, folder: Path) -> list[Path]:
    """``video``'s frames as JPEGs in ``folder``."""
    import cv2

    folder.mkdir(parents=True)
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(folder / f"{len(frames):04d}.jpg")
        cv2.imwrite(str(frames[-1]), frame)
    capture.release()
    if not frames:
        raise SystemExit(f"{video}: no frames could be read")
    return frames


def looped_frames(fire: Path, quiet: Path, folder: Path, seconds: float) -> int:
    """A camera's frame folder lasting ``seconds`` at FPS: the fire clip, then the quiet one,
    again and again (hard links), so fires start and end all through the run."""
    cycle = clip_frames(fire, folder / "fire") + clip_frames(quiet, folder / "quiet")
    frames = folder / "frames"
    frames.mkdir()
    total = math.ceil(seconds * FPS / len(cycle)) * len(cycle)
    for n in range(total):
        os.link(cycle[n % len(cycle)], frames / f"{n:06d}.jpg")
    return total


def edge_env(db_url: str, frames: Path, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIREWATCH_") or k == "FIREWATCH_DATA"}
    return {**env, "PYTHONPATH": str(repo_root()), "FIREWATCH_DATABASE_URL": db_url,
            "FIREWATCH_EDGE_NAME": EDGE, "FIREWATCH_CAMERA_NAME": CAMERA,
            "FIREWATCH_CAMERA_SOURCE": str(frames), "FIREWATCH_SOURCE_FPS": str(FPS),
            "FIREWATCH_DATA_DIR": str(data), "FIREWATCH_CLEAR_AFTER_S": str(CLEAR_AFTER_S)}


def wait_for_line(log: Path, pattern: re.Pattern[str], proc: subprocess.Popen, timeout_s: float) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while not pattern.search(log.read_text(errors="replace")):
        if proc.poll() is not None:
            raise SystemExit(f"the edge exited ({proc.returncode}) before {pattern.pattern!r}; see {log}")
        if time.monotonic() > deadline:
            raise SystemExit(f"no {pattern.pattern!r} in the edge's log within {timeout_s:.0f} s; see {log}")
        time.sleep(0.5)


def count(db_url: str, log_text: str, outage_s: float, down: tuple[float, float]) -> OutageRun:
    from storage import Store
    from storage.models import DeliveryKind

    lines = log_text.splitlines()
    started = [m.group(1) for line in lines if (m := _STARTED.search(line))]
    cleared = {m.group(1) for line in lines if (m := _CHANGED.search(line)) and m.group(2) == "cleared"}
    replayed = [int(m.group(1)) for line in lines if (m := re.search(r"(\d+) spooled records replayed", line))]
    store = Store(db_url)
    try:
        alerts, _ = store.recent_alerts(limit=100_000)
        mine = [a for a in alerts if a.camera == f"{EDGE}/{CAMERA}"]
        firsts = Counter((d.alert_id, d.chat_id) for d in store.deliveries() if d.kind is DeliveryKind.ALERT)
    finally:
        store.close()
    keys = Counter(a.key for a in mine)
    duplicated = sum(n - 1 for n in keys.values()) + sum(n - 1 for n in firsts.values())
    by_label = {f"#{a.id}": a for a in mine} | {a.key: a for a in mine if a.key}
    lost = sum(label not in by_label for label in started)
    lost += sum(label in by_label and by_label[label].cleared_at is None for label in cleared)
    # The pipeline's own events (its JSON log lines), before the recorder: a fire it saw
    # start must be one stored alert, one it saw end a cleared one.
    events = [e for line in lines if _EVENT in line and "track_id" in (e := json.loads(line[line.index("{"):]))]
    tracks = {a.track_id: a for a in mine}
    unseen = sum(e["track_id"] not in tracks for e in events if e["event"] == "started")
    unseen += sum(e["track_id"] in tracks and tracks[e["track_id"]].cleared_at is None
                  for e in events if e["event"] == "cleared")
    lost = max(lost, unseen)
    duplicated += sum(n - 1 for n in Counter(a.track_id for a in mine).values())
    return OutageRun(outage_s=outage_s, fires=sum(e["event"] == "started" for e in events), started=len(started),
                     started_while_down=sum(not label.startswith("#") for label in started),
                     cleared=len(cleared), stored=len(mine),
                     stored_cleared=sum(a.cleared_at is not None for a in mine),
                     stored_in_outage=sum(down[0] <= a.first_seen.timestamp() <= down[1] for a in mine),
                     replayed=sum(replayed),
                     lost=lost, duplicated=duplicated,
                     down_lines=[line for line in lines if _DOWN.search(line)],
                     up_lines=[line for line in lines if _UP.search(line)])


def run(*, outage_s: float, before_s: float, after_s: float, video: Path, quiet: Path, work: Path) -> OutageRun:
    from storage import Store
    from tests.support.servers import migrated_database, own_postgres_cluster, postgres_bindir

    if postgres_bindir() is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install -y postgresql)")
    frames = looped_frames(video, quiet, work, START_MARGIN_S + before_s + outage_s + after_s)
    print(f"{frames} frames ({frames / FPS:.0f} s at {FPS:g} fps): {video.name} then {quiet.name}, looped, "
          f"in {work / 'frames'}", flush=True)
    log = work / "edge.log"
    with own_postgres_cluster() as cluster:
        db_url = migrated_database(cluster)
        store = Store(db_url)
        store.add_chat(OPERATOR)  # each alert queues one delivery: a repeat would show
        store.close()
        with log.open("w") as out:
            edge = subprocess.Popen([sys.executable, "-m", "firewatch.cli", "run", "--role", "edge"],
                                    cwd=work, env=edge_env(db_url, work / "frames", work / "data"),
                                    stdout=out, stderr=subprocess.STDOUT)
        began = time.monotonic()
        try:
            wait_for_line(log, _STARTED, edge, START_MARGIN_S + 90)
            print(f"fire alerted; PostgreSQL stops in {before_s:g} s", flush=True)
            time.sleep(before_s)
            cluster.stop()
            stopped = time.time()
            print(f"PostgreSQL stopped for {outage_s:g} s", flush=True)
            time.sleep(outage_s)
            cluster.start()
            restarted = time.time()
            print("PostgreSQL started again", flush=True)
            wait_for_line(log, _UP, edge, 120)
            # The clip ends after --after more seconds of fire or so: the edge clears its
            # alerts (the source's end) and stops by itself.
            edge.wait(max(0.0, frames / FPS - (time.monotonic() - began)) + 120)
        except subprocess.TimeoutExpired:
            print("the edge did not stop at the clip's end: stopped (SIGTERM)", flush=True)
        finally:
            if edge.poll() is None:
                edge.send_signal(signal.SIGTERM)
                try:
                    edge.wait(60)
                except subprocess.TimeoutExpired:
                    edge.kill()
                    edge.wait()
        return count(db_url, log.read_text(errors="replace"), outage_s, (stopped, restarted))


def report(r: OutageRun) -> str:
    lines = [
        f"PostgreSQL down {r.outage_s:.0f} s during a fire (real edge, firewatch run --role edge):",
        f"  fires seen {r.fires}; alerts started {r.started} ({r.started_while_down} while down, spooled), cleared {r.cleared}; "
        f"stored {r.stored} ({r.stored_cleared} cleared, {r.stored_in_outage} first seen during the outage); spooled records replayed {r.replayed}; "
        f"lost {r.lost}, duplicated {r.duplicated}",
        f"  log lines down: {len(r.down_lines)}, up: {len(r.up_lines)}",
    ]
    lines += [f"    {line}" for line in r.down_lines + r.up_lines]
    return "\n".join(lines)


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """``python -m bench.outage`` / ``firewatch bench outage``."""
    from firewatch.paths import data_root

    parser = argparse.ArgumentParser(prog=prog, description=user_help(__doc__))
    parser.add_argument("--outage", type=float, default=120.0, help="seconds PostgreSQL is down")
    parser.add_argument("--before", type=float, default=5.0, help="seconds of fire recorded before it stops")
    parser.add_argument("--after", type=float, default=30.0, help="seconds the edge runs after its replay")
    parser.add_argument("--video", default="navid__fire4.mp4", help="a clip of $FIREWATCH_DATA/videos (or a path)")
    parser.add_argument("--quiet", default="intel__car-detection.mp4", help="a fire-free clip played between fires")
    parser.add_argument("--keep", type=Path, default=None, help="keep the frames and the edge's log here")
    args = parser.parse_args(argv)
    video, quiet = (Path(v) if Path(v).is_file() else data_root() / "videos" / v for v in (args.video, args.quiet))
    for clip in (video, quiet):
        if not clip.is_file():
            raise SystemExit(f"{clip}: not found (set FIREWATCH_DATA)")
    options = dict(outage_s=args.outage, before_s=args.before, after_s=args.after, video=video, quiet=quiet)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
        result = run(**options, work=args.keep)  # type: ignore[arg-type]
    else:
        with tempfile.TemporaryDirectory(prefix="firewatch-outage-") as tmp:
            result = run(**options, work=Path(tmp))  # type: ignore[arg-type]
    print(report(result))
    if result.lost or result.duplicated:
        raise SystemExit(1)


if __name__ == "__main__":
    cli()
