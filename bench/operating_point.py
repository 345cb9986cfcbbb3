"""Choose the alerting defaults from measurements: detector threshold x confirmation x veto.

For every setting this replays the same footage as ``bench.pipeline --alerts`` — the labelled
``rf__<video>_mp4`` sequences (val and train) at 10 FPS for time to alert, and fire-free val
images each held 10 frames (a static camera) for false alerts — through the daemon's
tracker and fire-event rules, and reports what an operator feels: how many fire sequences
alert, how fast, and how many false alerts an hour.

The detector runs once per image at the lowest threshold swept; a higher threshold is
applied by dropping lower-scored boxes afterwards, which gives exactly the detector's own
output at that threshold (greedy NMS processes boxes from the highest score down, so a box
below the threshold never suppresses one above it). Tracker, events and the classifier run
per setting, as in the daemon.

    python -m bench.operating_point [--model models/fire-detector.onnx] [--conf 0.2 0.25 ...]
        [--confirm 3/5 4/6 ...] [--veto 0.9 0.7] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from bench.help import user_help
from bench.pipeline import (
    LabelledSequence,
    daemon_detection,
    data_dir,
    find_sequences,
    fire_free_images,
)
from firewatch.paths import SHIPPED_DETECTOR
from firewatch.progress import progress_bar
from vision.events import EventConfig, FireEvents
from vision.types import Detections, Frame

FPS = 10.0
FIRE = 0


@dataclass(frozen=True)
class Footage:
    """Decoded frames of one clip, with each frame's detections at the lowest threshold."""

    name: str
    images: list[np.ndarray]
    detections: list[Detections]
    first_fire: int | None  # first frame labelled fire (None: a fire-free clip)


@dataclass
class Setting:
    conf: float
    confirm_hits: int
    confirm_window: int
    veto: float


@dataclass
class Outcome:
    setting: Setting
    fire_clips: int
    fire_clips_alerted: int
    time_to_fire_alert_s: list[float]
    median_s: float | None
    max_s: float | None
    false_alerts: int
    fire_free_hours: float
    false_alerts_per_hour: float


def _detect_all(detector, paths: Sequence[Path]) -> tuple[list[np.ndarray], list[Detections]]:  # type: ignore[no-untyped-def]
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
    return images, [detector(image) for image in images]


def load_footage(model: Path, floor: float, negatives: int, hold: int) -> tuple[list[Footage], Footage]:
    """Fire sequences (val, then train) and one fire-free clip of held images, detected once."""
    from vision.detectors import Detector

    settings = daemon_detection()
    detector = Detector(model, conf_threshold=floor, iou_threshold=settings.iou_threshold, threads=2)
    fire = data_dir()
    sequences: list[LabelledSequence] = find_sequences(fire / "images" / "val") + find_sequences(fire / "images" / "train")
    clips = []
    with progress_bar("detect footage", total=len(sequences) + 1, unit="clip") as bar:
        for seq in sequences:
            images, detections = _detect_all(detector, seq.frames)
            clips.append(Footage(seq.name, images, detections, seq.first_with({FIRE})))
            bar.update(1)
        stills, still_detections = _detect_all(detector, fire_free_images(fire / "images" / "val")[:negatives])
        bar.update(1)
    # A static camera: each still held ``hold`` frames; the model gives the same boxes each time.
    held = Footage(
        "fire-free", [i for i in stills for _ in range(hold)], [d for d in still_detections for _ in range(hold)], None,
    )
    return clips, held


def started_fires(clip: Footage, setting: Setting, names: dict[int, str], classifier) -> list[int]:  # type: ignore[no-untyped-def]
    """Frames at which a fire alert started when ``clip`` plays with ``setting``."""
    from vision.tracker import Tracker

    config = replace(EventConfig(), confirm_hits=setting.confirm_hits, confirm_window=setting.confirm_window,
                     veto_confidence=setting.veto)
    tracker, events = Tracker(), FireEvents("bench", names, config, classifier)
    started = []
    for index, (image, detections) in enumerate(zip(clip.images, clip.detections)):
        kept = detections[detections.confidence >= setting.conf]
        frame = Frame(image, index, index / FPS, time.time())
        for event in events.update(tracker.update(kept, image), frame):
            if event.kind == "started" and event.class_name == names[FIRE]:
                started.append(index)
    return started


def evaluate(setting: Setting, clips: list[Footage], held: Footage, names: dict[int, str], classifier) -> Outcome:  # type: ignore[no-untyped-def]
    delays = []
    fire_clips = [c for c in clips if c.first_fire is not None]
    for clip in fire_clips:
        after = [f for f in started_fires(clip, setting, names, classifier) if f >= clip.first_fire]  # type: ignore[operator]
        if after:
            delays.append(round((after[0] - clip.first_fire) / FPS, 2))  # type: ignore[operator]
    false = len(started_fires(held, setting, names, classifier))
    hours = len(held.images) / FPS / 3600.0
    return Outcome(
        setting, len(fire_clips), len(delays), delays,
        statistics.median(delays) if delays else None, max(delays) if delays else None,
        false, round(hours, 4), round(false / hours, 1),
    )


def sweep(model: Path, confs: Sequence[float], confirms: Sequence[tuple[int, int]], vetoes: Sequence[float],
          negatives: int = 200, hold: int = 10) -> list[Outcome]:
    from firewatch.wiring import load_classifier
    from vision.detectors import Detector

    settings = daemon_detection()
    names = Detector(model, threads=1).names
    classifier = load_classifier(settings.classifier_model)
    clips, held = load_footage(model, min(confs), negatives, hold)
    settings_swept = list(itertools.product(confs, confirms, vetoes))
    outcomes = []
    with progress_bar("bench operating-point", total=len(settings_swept), unit="setting") as bar:
        for conf, (hits, window), veto in settings_swept:
            outcomes.append(evaluate(Setting(conf, hits, window, veto), clips, held, names, classifier))
            bar.update(1)
    return outcomes


def table(outcomes: Sequence[Outcome]) -> str:
    lines = [
        "| threshold | confirm | veto p(no-fire) ≥ | fire clips alerted | time to fire alert, median / max | false alerts | per hour |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        s = o.setting
        timing = "-" if o.median_s is None else f"{o.median_s:.1f} / {o.max_s:.1f} s"
        lines.append(
            f"| {s.conf:.2f} | {s.confirm_hits} of {s.confirm_window} | {s.veto:.2f} | {o.fire_clips_alerted}/{o.fire_clips} "
            f"| {timing} | {o.false_alerts} in {o.fire_free_hours * 3600:.0f} s | {o.false_alerts_per_hour:.0f} |"
        )
    return "\n".join(lines)


def _confirm(text: str) -> tuple[int, int]:
    hits, window = text.split("/")
    return int(hits), int(window)


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> list[dict]:
    """``python -m bench.operating_point`` / ``firewatch bench operating-point``."""
    parser = argparse.ArgumentParser(prog=prog, description=user_help(__doc__))
    parser.add_argument("--model", type=Path, default=SHIPPED_DETECTOR)
    parser.add_argument("--conf", type=float, nargs="+", default=[0.2, 0.25, 0.3, 0.35, 0.4])
    parser.add_argument("--confirm", type=_confirm, nargs="+", default=[(3, 5), (4, 6), (5, 8)],
                        help="K/N: seen in K of the last N frames")
    parser.add_argument("--veto", type=float, nargs="+", default=[0.9, 0.7])
    parser.add_argument("--negatives", type=int, default=200)
    parser.add_argument("--hold", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    outcomes = sweep(args.model, args.conf, args.confirm, args.veto, args.negatives, args.hold)
    print(table(outcomes))
    result = [asdict(o) for o in outcomes]
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    cli()
