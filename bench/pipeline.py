"""Benchmark the daemon's vision pipeline: throughput against bare inference, where the
time goes, how fast a fire is alerted, and how often a fire-free scene raises an alert.

- :func:`main` — FPS of the full ``vision.pipeline.Pipeline`` (source read -> letterbox ->
  ``session.run`` -> postprocess/NMS -> ByteTrack -> fire events -> annotation on alerts)
  against bare ``session.run`` on the same pre-decoded, pre-letterboxed frames, with the
  same session and threads, in interleaved rounds (bare, pipeline, bare, ...) so that load
  from other processes hits both alike. The ratio (target >= 0.95) is the median of the
  per-round ratios; ``inference_share`` (how busy the infer thread was over the pipeline's
  wall time) is the same quantity measured within one loop, far less sensitive to other
  processes. The pipeline runs three threads (feed: read, health, letterbox; infer:
  session.run; post: decode/NMS, tracker, classifier, events, annotation), so the stages are
  reported per thread: the model is the only cost that counts as long as neither other
  thread is busier than the infer thread. Stages are timed by wrapping the objects the
  pipeline calls (vision/ is not modified); "events" excludes the classifier it calls.
  JPEG decoding is measured apart: a camera decodes in its own reader thread.
- :func:`time_to_alert` — labelled fire sequences replayed as image folders at 10 FPS
  through ``vision.replay``: seconds of video from the first labelled frame to ``started``.
- :func:`false_alerts_per_hour` — fire-free images held for a few frames each (a static
  camera) replayed the same way; ``started`` events per hour of video.

Detection settings (confidence, NMS IoU, confirmation) are the daemon's (``firewatch.config``
defaults, overridable by ``FIREWATCH_*`` variables), and the severity classifier is used when
its model is present, as ``firewatch run`` does.

    python -m bench.pipeline [--model models/fire-detector.onnx] [--frames 200] [--threads 2]
        [--rounds 5] [--alerts] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.help import user_help
from firewatch.paths import SHIPPED_DETECTOR, data_root
from firewatch.progress import progress_bar
from vision.events import EventConfig
from vision.types import Detections, Event, FireEvent, Frame

TARGET_RATIO = 0.95
# vision.pipeline runs three threads; a stage's share is of the pipeline's wall time, so the
# shares of one thread add up to how busy that thread was.
STAGE_THREADS = {
    "feed": ("read", "health", "letterbox"),
    "infer": ("session_run",),
    "post": ("postprocess", "tracker", "classifier", "events", "annotate"),
}
STAGES = tuple(stage for stages in STAGE_THREADS.values() for stage in stages)
# Consecutive frames of one CCTV video, fire in every frame (train split).
FIRE_SEQUENCE = "rf__fire2_mp4-*"
# rf__<video>_mp4-<frame number>_jpg.rf.<hash>.jpg: consecutive frames of one video.
_SEQUENCE_NAME = re.compile(r"^(rf__.+_mp4)-(\d+)_jpg\.")

log = logging.getLogger(__name__)


def data_dir() -> Path:
    """The fire dataset: ``fire/`` of the shared data (``firewatch.paths.data_root``)."""
    return data_root() / "fire"


def natural_sorted(paths: Iterator[Path] | Sequence[Path]) -> list[Path]:
    from vision.sources import natural_key

    return sorted(paths, key=natural_key)


def _label_path(image: Path) -> Path:
    """YOLO layout: images/<split>/x.jpg -> labels/<split>/x.txt."""
    return image.parent.parent.parent / "labels" / image.parent.name / f"{image.stem}.txt"


def label_classes(image: Path) -> set[int]:
    """Class ids labelled in ``image`` (empty: a fire-free negative)."""
    path = _label_path(image)
    if not path.is_file():
        return set()
    return {int(line.split()[0]) for line in path.read_text().splitlines() if line.strip()}


def fire_free_images(split_dir: Path, prefixes: Sequence[str] = ("rf__", "cairneg__")) -> list[Path]:
    """Images of ``split_dir`` (e.g. ``images/val``) with an empty label file."""
    return [
        p for p in natural_sorted(split_dir.glob("*.jpg"))
        if p.name.startswith(tuple(prefixes)) and _label_path(p).is_file() and not label_classes(p)
    ]


# -- the settings the daemon would use ---------------------------------------------------


@dataclass(frozen=True)
class DaemonDetection:
    """What ``firewatch run`` configures: detector thresholds, events, classifier model."""

    conf_threshold: float
    iou_threshold: float
    event_config: EventConfig
    classifier_model: Path | None
    settings: Any  # the firewatch.config.Settings these came from, for the wiring helpers


def daemon_detection(**overrides: Any) -> DaemonDetection:
    """The daemon's detection settings from the environment and defaults, ``overrides`` applied
    as if set there (the settings that follow them, as the threshold follows ``verify``, follow)."""
    from firewatch.config import Settings
    from firewatch.wiring import event_config

    settings = Settings(_env_file=None, **overrides)  # type: ignore[call-arg] - environment and defaults only
    classifier = settings.classifier_model if settings.classifier_model and settings.classifier_model.is_file() else None
    return DaemonDetection(settings.detect_confidence, settings.nms_iou, event_config(settings), classifier, settings)


# -- stage timing --------------------------------------------------------------------------


class StageClock:
    """Seconds spent per stage, summed over calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, stage: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start
                self.calls[stage] += 1

        return timed

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


class _TimedDetector:
    """The pipeline's detector with each of its three steps timed."""

    def __init__(self, detector: Any, clock: StageClock) -> None:
        self.names = detector.names
        self.prepare = clock.wrap("letterbox", detector.prepare)
        self.infer = clock.wrap("session_run", detector.infer)
        self.decode = clock.wrap("postprocess", detector.decode)


class _TimedTracker:
    def __init__(self, tracker: Any, clock: StageClock) -> None:
        self.update = clock.wrap("tracker", tracker.update)


class _TimedClassifier:
    def __init__(self, classifier: Any, clock: StageClock) -> None:
        self.classify = clock.wrap("classifier", classifier.classify)


class MemorySource:
    """Pre-decoded frames played as a finite source (``vision.sources.FrameSource``)."""

    live = False

    def __init__(self, images: Sequence[np.ndarray], fps: float = 10.0, name: str = "bench") -> None:
        self.images = images
        self.fps = fps
        self.name = name
        self._index = 0

    def open(self) -> None:
        self._index = 0

    def read(self) -> Frame | None:
        if self._index >= len(self.images):
            return None
        index = self._index
        self._index += 1
        return Frame(self.images[index], index, index / self.fps, time.time())

    def close(self) -> None:
        pass


# -- throughput -------------------------------------------------------------------------------


@dataclass
class StageTime:
    stage: str
    thread: str
    ms_per_frame: float
    share: float  # of the pipeline's time


@dataclass
class PipelineBench:
    """Result of :func:`main` (``asdict`` is its JSON form)."""

    model: str
    providers: list[str]
    threads: int
    tiles: int  # tiles a side (1: the whole frame only)
    frames: int
    rounds: int
    input_size: list[int]
    bare_fps: float
    pipeline_fps: float
    ratio: float
    ratio_rounds: list[float]
    # session.run's share of the pipeline's own time: the ratio if session.run cost the same
    # in both loops. Far less sensitive to other processes than the FPS ratio.
    inference_share: float
    target_ratio: float
    meets_target: bool
    stages: list[StageTime]
    decode_ms_per_frame: float
    annotate_ms_per_call: float
    detections_per_frame: float
    events: dict[str, int] = field(default_factory=dict)
    classifier: str | None = None
    tiled_share: float | None = None  # with tiles: the share of frames whose tiles ran


def load_frames(frames_dir: Path, n_frames: int, pattern: str = "*.jpg", extra: Sequence[Path] = ()) -> tuple[list[np.ndarray], float]:
    """Decode the first ``n_frames`` of ``pattern`` (natural order) then ``extra``, cycling if
    there are fewer; returns the images and the mean decode time in ms."""
    paths = [p for p in natural_sorted(Path(frames_dir).glob(pattern)) if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    paths += list(extra)
    if not paths:
        raise FileNotFoundError(f"no images matching {pattern} in {frames_dir}")
    images: list[np.ndarray] = []
    decode = 0.0
    for i in range(n_frames):
        start = time.perf_counter()
        image = cv2.imread(str(paths[i % len(paths)]), cv2.IMREAD_COLOR)
        decode += time.perf_counter() - start
        if image is None:
            raise ValueError(f"cannot decode {paths[i % len(paths)]}")
        images.append(image)
    return images, 1000.0 * decode / n_frames


def main(
    model: str | Path,
    frames_dir: str | Path,
    n_frames: int = 200,
    threads: int = 2,
    *,
    pattern: str = FIRE_SEQUENCE,
    fire_free: int = 0,
    rounds: int = 5,
    classifier: bool = True,
    tiles: int = 1,
) -> dict:
    """Pipeline FPS vs bare ``session.run`` on ``n_frames`` frames of ``frames_dir/pattern``
    (plus ``fire_free`` fire-free frames of that split); returns :class:`PipelineBench` as a dict.
    ``tiles`` > 1: the detector also runs on a grid of tiles where the whole frame shows a
    candidate (``vision.detectors.tiles``); the bare rate is that of every frame's tiles
    running, and ``tiled_share`` says how many frames' tiles did."""
    from firewatch.wiring import load_classifier
    from vision.detectors import Detector
    from vision.detectors.tiles import tiled
    from vision.pipeline import Pipeline
    from vision.sinks import CallbackSink
    from vision.tracker import Tracker

    settings = daemon_detection()
    frames_dir = Path(frames_dir)
    extra = fire_free_images(frames_dir)[:fire_free] if fire_free else []
    images, decode_ms = load_frames(frames_dir, n_frames, pattern, extra)
    base = Detector(model, conf_threshold=settings.conf_threshold, iou_threshold=settings.iou_threshold, threads=threads)
    detector = tiled(base, tiles)
    crop_classifier = load_classifier(settings.classifier_model) if classifier else None

    runtime = base.runtime
    # Each frame its own buffers; with tiles, the bare rate is that of frames whose tiles all run.
    blobs = [blob for image in images
             for blob in (detector.model_inputs(image) if tiles > 1 else [base.prepare(image).blob])]
    for blob in blobs[:5]:  # warm-up: first runs allocate and (on GPU) build kernels
        runtime.run(blob)

    clock = StageClock()
    timed_detector = _TimedDetector(detector, clock)
    events: dict[str, int] = defaultdict(int)

    def count_event(event: Event) -> None:
        events[event.kind if isinstance(event, FireEvent) else f"health-{event.kind}"] += 1

    bare_fps: list[float] = []
    pipe_fps: list[float] = []
    detections = 0

    def count(frame: Frame, tracked: Detections) -> None:
        nonlocal detections
        detections += len(tracked)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as snapshots, \
            progress_bar("bench pipeline", total=rounds, unit="round") as bar:
        for _ in range(rounds):
            start = time.perf_counter()
            for blob in blobs:
                runtime.run(blob)
            bare_fps.append(len(images) / (time.perf_counter() - start))

            source = MemorySource(images)
            source.read = clock.wrap("read", source.read)  # type: ignore[method-assign]
            pipeline = Pipeline(
                source, timed_detector, camera="bench", tracker=_TimedTracker(Tracker(), clock),
                event_config=settings.event_config,
                classifier=_TimedClassifier(crop_classifier, clock) if crop_classifier else None,
                snapshot_dir=snapshots, sinks=[CallbackSink(count_event)], flush_at_end=True,
            )
            pipeline.health.observe = clock.wrap("health", pipeline.health.observe)  # type: ignore[method-assign]
            pipeline.events.update = clock.wrap("events", pipeline.events.update)  # type: ignore[method-assign]
            pipeline.annotate = clock.wrap("annotate", pipeline.annotate)  # type: ignore[method-assign]
            pipeline.on_frame = count
            start = time.perf_counter()
            pipeline.run()
            clock.seconds["total"] += time.perf_counter() - start
            pipe_fps.append(len(images) / (time.perf_counter() - start))
            bar.update(1)

    ratios = [p / b for p, b in zip(pipe_fps, bare_fps)]
    frames_run = len(images) * rounds
    s = clock.seconds
    # The classifier runs inside events.update: count it once.
    per_stage = {stage: s[stage] for stage in STAGES if stage != "events"} | {"events": s["events"] - s["classifier"]}
    stages = [
        StageTime(name, thread, round(1000.0 * per_stage[name] / frames_run, 3), round(per_stage[name] / s["total"], 4))
        for thread, names in STAGE_THREADS.items()
        for name in names
    ]

    # Annotation only runs when an alert fires; measure one call so its cost is known anyway.
    sample = images[len(images) // 2]
    probe = Detections(np.array([[10, 10, 100, 100], [50, 60, 200, 220]]), [0.9, 0.6], [0, 1], [1, 2])
    from vision.annotate import annotate

    start = time.perf_counter()
    for _ in range(20):
        annotate(sample, probe, detector.names, camera="bench", wall=time.time())
    annotate_ms = 1000.0 * (time.perf_counter() - start) / 20

    ratio = statistics.median(ratios)
    result = PipelineBench(
        model=str(model),
        providers=list(base.providers),
        threads=threads,
        tiles=tiles,
        frames=len(images),
        rounds=rounds,
        input_size=list(base.imgsz),
        bare_fps=round(statistics.median(bare_fps), 2),
        pipeline_fps=round(statistics.median(pipe_fps), 2),
        ratio=round(ratio, 4),
        ratio_rounds=[round(r, 4) for r in ratios],
        inference_share=round(s["session_run"] / s["total"], 4),
        target_ratio=TARGET_RATIO,
        meets_target=ratio >= TARGET_RATIO,
        stages=stages,
        decode_ms_per_frame=round(decode_ms, 3),
        annotate_ms_per_call=round(annotate_ms, 3),
        detections_per_frame=round(detections / frames_run, 3),
        events=dict(events),
        classifier=str(settings.classifier_model) if crop_classifier else None,
        tiled_share=round(detector.tiled_frames / max(detector.frames, 1), 4) if tiles > 1 else None,
    )
    return asdict(result)


def _tiles_text(result: dict) -> str:
    share = result.get("tiled_share")
    return str(result["tiles"]) if share is None else f"{result['tiles']} (ran on {share:.0%} of frames)"


def table(result: dict) -> str:
    """The throughput result as a text table."""
    lines = [
        f"model {result['model']}  providers {','.join(result['providers'])}  threads {result['threads']}  "
        f"tiles {_tiles_text(result)}  "
        f"input {result['input_size'][1]}x{result['input_size'][0]}  frames {result['frames']} x {result['rounds']} rounds",
        f"bare session.run {result['bare_fps']:8.2f} FPS",
        f"full pipeline    {result['pipeline_fps']:8.2f} FPS   ratio {result['ratio']:.3f} "
        f"(target >= {result['target_ratio']}: {'met' if result['meets_target'] else 'NOT met'}; rounds "
        f"{', '.join(f'{r:.3f}' for r in result['ratio_rounds'])})",
        f"infer thread busy {result['inference_share']:.3f} of the pipeline's time (the ratio without noise from other processes)",
        "",
        f"{'thread':<7} {'stage':<12} {'ms/frame':>9} {'busy':>7}",
    ]
    for stage in result["stages"]:
        lines.append(f"{stage['thread']:<7} {stage['stage']:<12} {stage['ms_per_frame']:9.3f} {100 * stage['share']:6.1f}%")
    lines += [
        "",
        f"JPEG decode (camera thread, not in the ratio) {result['decode_ms_per_frame']:.2f} ms/frame; "
        f"one annotation {result['annotate_ms_per_call']:.2f} ms; tracked boxes/frame {result['detections_per_frame']}; "
        f"events {result['events'] or 'none'}; classifier {result['classifier'] or 'off'}",
    ]
    return "\n".join(lines)


# -- alert latency and false alerts ------------------------------------------------------------


@dataclass(frozen=True)
class LabelledSequence:
    """Consecutive frames of one video, in order, with the classes labelled in each."""

    name: str
    frames: tuple[Path, ...]
    classes: tuple[frozenset[int], ...]

    def first_with(self, wanted: set[int]) -> int | None:
        return next((i for i, c in enumerate(self.classes) if c & wanted), None)


def find_sequences(split_dir: Path, min_frames: int = 8, with_class: int | None = 0) -> list[LabelledSequence]:
    """The ``rf__<video>_mp4-<n>`` sequences of ``split_dir`` ordered by frame number; only
    those with at least ``min_frames`` frames and (if given) one frame labelled ``with_class``."""
    groups: dict[str, list[tuple[int, Path]]] = defaultdict(list)
    for path in Path(split_dir).glob("rf__*.jpg"):
        match = _SEQUENCE_NAME.match(path.name)
        if match:
            groups[match.group(1)].append((int(match.group(2)), path))
    sequences = []
    for name, items in sorted(groups.items()):
        items.sort()
        frames = tuple(p for _, p in items)
        seq = LabelledSequence(f"{Path(split_dir).name}/{name}", frames, tuple(frozenset(label_classes(p)) for p in frames))
        if len(frames) >= min_frames and (with_class is None or seq.first_with({with_class}) is not None):
            sequences.append(seq)
    return sequences


def link_folder(paths: Sequence[Path], folder: Path) -> Path:
    """A folder of numbered symlinks to ``paths`` (in that order) that an ImageFolderSource plays."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths):
        (folder / f"{i:06d}{path.suffix.lower()}").symlink_to(path.resolve())
    return folder


def _replay_events(model: Path, folder: Path, fps: float, threads: int, progress: Any = None) -> list[dict]:
    """Started/updated/cleared events of a replay with the daemon's detection settings."""
    from firewatch.wiring import load_classifier
    from vision.detectors import Detector
    from vision.replay import replay

    settings = daemon_detection()
    detector = Detector(model, conf_threshold=settings.conf_threshold, iou_threshold=settings.iou_threshold, threads=threads)
    events_path = folder.parent / f"{folder.name}.jsonl"
    replay(
        folder, model=model, fps=fps, events=events_path, threads=threads, detector=detector,
        event_config=settings.event_config, classifier=load_classifier(settings.classifier_model),
        progress=progress,
    )
    return [json.loads(line) for line in events_path.read_text().splitlines() if line.strip()]


@dataclass
class AlertTiming:
    """Seconds of video from the first labelled frame to the first ``started`` event (None:
    never alerted). ``fire``: fire labels and fire alerts; ``any``: fire or smoke."""

    sequence: str
    frames: int
    first_fire_frame: int | None
    fire_alert_frame: int | None
    time_to_fire_alert_s: float | None
    first_labelled_frame: int | None
    any_alert_frame: int | None
    time_to_any_alert_s: float | None


def time_to_alert(
    model: str | Path,
    sequences: Sequence[LabelledSequence],
    *,
    fps: float = 10.0,
    threads: int = 2,
    names: dict[int, str] | None = None,
) -> list[AlertTiming]:
    """Replay each sequence as an image folder at ``fps``; when did the alert start?"""
    names = names or {0: "fire", 1: "smoke"}
    fire_ids = {k for k, v in names.items() if v == "fire"}
    out: list[AlertTiming] = []
    with tempfile.TemporaryDirectory(prefix="bench-alert-") as tmp, \
            progress_bar("time to alert", total=len(sequences), unit="clip") as bar:
        for seq in sequences:
            folder = Path(tmp) / seq.name.replace("/", "__")
            events = _replay_events(Path(model), link_folder(seq.frames, folder), fps, threads)
            started = [e for e in events if e.get("event") == "started"]
            fire_started = next((e["frame"] for e in started if e["class"] == "fire"), None)
            any_started = next((e["frame"] for e in started), None)
            first_fire = seq.first_with(fire_ids)
            first_any = seq.first_with(set(names))

            def delay(alert: int | None, first: int | None) -> float | None:
                return None if alert is None or first is None else round((alert - first) / fps, 2)

            out.append(AlertTiming(
                seq.name, len(seq.frames), first_fire, fire_started, delay(fire_started, first_fire),
                first_any, any_started, delay(any_started, first_any),
            ))
            bar.update(1)
    return out


@dataclass
class FalseAlerts:
    images: int
    frames: int
    video_hours: float
    started: int
    per_hour: float
    by_class: dict[str, int]


def false_alerts_per_hour(
    model: str | Path,
    images: Sequence[Path],
    *,
    hold_frames: int = 10,
    fps: float = 10.0,
    threads: int = 2,
) -> FalseAlerts:
    """Play fire-free ``images`` as one folder, each held for ``hold_frames`` frames (a static
    camera: a persistent false detection gets confirmed, as it would on site); count alerts."""
    paths = [p for p in images for _ in range(hold_frames)]
    with tempfile.TemporaryDirectory(prefix="bench-negatives-") as tmp, progress_bar("false alerts") as bar:
        events = _replay_events(Path(model), link_folder(paths, Path(tmp) / "fire-free"), fps, threads, bar)
    started = [e for e in events if e.get("event") == "started"]
    hours = len(paths) / fps / 3600.0
    by_class: dict[str, int] = defaultdict(int)
    for e in started:
        by_class[e["class"]] += 1
    return FalseAlerts(len(images), len(paths), round(hours, 4), len(started), round(len(started) / hours, 2), dict(by_class))


def alerts_table(timings: Sequence[AlertTiming], false_alerts: FalseAlerts | None) -> str:
    def s(v: float | None) -> str:
        return "missed" if v is None else f"{v:+.1f} s"

    lines = [f"{'sequence':<40} {'frames':>6} {'fire@':>6} {'fire alert':>11} {'label@':>6} {'any alert':>10}"]
    for t in timings:
        lines.append(
            f"{t.sequence:<40} {t.frames:6d} {t.first_fire_frame if t.first_fire_frame is not None else '-':>6} "
            f"{s(t.time_to_fire_alert_s):>11} {t.first_labelled_frame if t.first_labelled_frame is not None else '-':>6} "
            f"{s(t.time_to_any_alert_s):>10}"
        )
    if false_alerts is not None:
        fa = false_alerts
        lines.append(
            f"fire-free: {fa.images} images x hold = {fa.frames} frames ({fa.video_hours * 3600:.0f} s of video): "
            f"{fa.started} alerts = {fa.per_hour:.1f} per hour {fa.by_class or ''}"
        )
    return "\n".join(lines)


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """``python -m bench.pipeline`` / ``firewatch bench pipeline``: parse ``argv`` and run."""
    parser = argparse.ArgumentParser(prog=prog, description=user_help(__doc__))
    parser.add_argument("--model", type=Path, default=SHIPPED_DETECTOR)
    parser.add_argument("--frames-dir", type=Path, default=None, help="default: $FIREWATCH_DATA/fire/images/train")
    parser.add_argument("--pattern", default=FIRE_SEQUENCE)
    parser.add_argument("--fire-free", type=int, default=50, help="fire-free frames appended to the sequence")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-classifier", action="store_true")
    parser.add_argument("--tiles", type=int, default=1, help="tiles a side for small fires (1: the whole frame only)")
    parser.add_argument("--alerts", action="store_true", help="also time-to-alert (val sequences) and false alerts")
    parser.add_argument("--negatives", type=int, default=200, help="fire-free val images for false alerts")
    parser.add_argument("--hold", type=int, default=10, help="frames each fire-free image is held")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    fire = data_dir()
    report: dict[str, Any] = {}
    result = main(
        args.model, args.frames_dir or fire / "images" / "train", args.frames, args.threads,
        pattern=args.pattern, fire_free=args.fire_free, rounds=args.rounds, classifier=not args.no_classifier,
        tiles=args.tiles,
    )
    report["throughput"] = result
    print(table(result))
    if args.alerts:
        # Val sequences were never trained on; train ones were (optimistic), but are longer.
        sequences = find_sequences(fire / "images" / "val") + find_sequences(fire / "images" / "train")
        timings = time_to_alert(args.model, sequences, threads=args.threads)
        negatives = fire_free_images(fire / "images" / "val")[: args.negatives]
        fa = false_alerts_per_hour(args.model, negatives, hold_frames=args.hold, threads=args.threads)
        report["time_to_alert"] = [asdict(t) for t in timings]
        report["false_alerts"] = asdict(fa)
        print()
        print(alerts_table(timings, fa))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    cli()
