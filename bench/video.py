"""How fast real fires are alerted, and whether fire-free footage raises any alert.

Every clip in ``$FIREWATCH_DATA/videos`` (``labels.csv`` gives the frame where a flame
first shows, or marks the clip fire-free) and the fire sequences inside ``fire/`` (the
``rf__<video>_mp4-<n>`` frames of one CCTV video, onset = the first labelled frame) are
played through the daemon's own pipeline and settings, at the daemon's rate: a video file
faster than ``FIREWATCH_SOURCE_FPS`` (10) gives every n-th frame, as a camera would (the
verification's windows are counted in frames at that rate). For each
fire clip: seconds of video from the onset to the first ``started`` event (negative when
the alert came before the flame showed), or "missed"; for each fire-free clip: how many
alerts started. Sequences of ``fire/`` train are left out unless asked for: the detector
has seen them.

    firewatch bench video [--model M] [--conf 0.25] [--splits val] [--verify on|off] [--json out.json]

``--stills``: every ``fire/`` val image the detector boxes at all (at 0.1) is held in view for
3 s instead (10 FPS, new sensor noise every frame: sigma 2 grey levels, as
``training/verification.py`` holds them) and played through the same tracker, verifier and
event rules; it reports how many fire-free images and how many fire photos alert. A photo
of a fire is not a fire: with verification on, both should be 0.

The detector's boxes of each clip are cached (keyed on the model's bytes, the clip, the
threshold and the NMS IoU) under ``~/.cache/firewatch/bench-video``: a second run, or a sweep
of the verification settings, replays the clips without running the model again.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import os
import pickle
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.help import user_help
from bench.pipeline import daemon_detection, find_sequences, link_folder
from firewatch.paths import SHIPPED_DETECTOR, data_root
from firewatch.progress import progress_bar

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "firewatch" / "bench-video"
SEQUENCE_FPS = 10.0  # the fire/ sequences are stills of CCTV videos, played as the daemon would see 10 FPS


@dataclass(frozen=True)
class Clip:
    """One replayable piece of footage: a video file or an ordered list of frames."""

    name: str
    set: str  # "videos", "fire/val" or "fire/train"
    frames: tuple[Path, ...]
    fps: float | None
    onset_frame: int | None  # None: fire-free

    @property
    def fire_free(self) -> bool:
        return self.onset_frame is None


@dataclass(frozen=True)
class ClipResult:
    clip: str
    set: str
    frames: int  # frames the pipeline processed (of a file faster than the daemon's rate, every n-th)
    onset_frame: int | None
    first_alert_frame: int | None
    first_alert_class: str | None
    delay_s: float | None
    alerts: int
    ms_per_frame: float

    @property
    def missed(self) -> bool:
        return self.onset_frame is not None and self.first_alert_frame is None


def _file_fps(path: Path) -> float | None:
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        return float(capture.get(cv2.CAP_PROP_FPS) or 0.0) or None
    finally:
        capture.release()


def _clip_row(folder: Path, row: dict[str, str]) -> Clip:
    """One ``labels.csv`` row: ``file``, ``fire_free`` (1: no fire), ``fire_onset_frame`` (the
    file's own frame numbering), ``fps`` (empty or absent: the file's)."""
    file = (row.get("file") or "").strip()
    onset_text = (row.get("fire_onset_frame") or "").strip()
    fire_free = (row.get("fire_free") or "").strip() == "1"
    if not file:
        raise ValueError(f"{folder / 'labels.csv'}: a row without a file name")
    if not fire_free and not onset_text:
        raise ValueError(f"{folder / 'labels.csv'}: {file} is not fire_free but has no fire_onset_frame")
    path = folder / file
    if not path.is_file():
        raise FileNotFoundError(f"{folder / 'labels.csv'} names {file}, which is not in {folder}")
    fps_text = (row.get("fps") or "").strip()
    fps = float(fps_text) if fps_text else _file_fps(path)
    return Clip(path.stem, "videos", (path,), fps, None if fire_free else int(float(onset_text)))


def video_clips(root: Path) -> list[Clip]:
    """The clips of ``videos/labels.csv`` (none when there is no such file)."""
    folder = root / "videos"
    if not (folder / "labels.csv").is_file():
        return []
    with open(folder / "labels.csv", newline="", encoding="utf-8") as f:
        return [_clip_row(folder, row) for row in csv.DictReader(f)]


def sequence_clips(root: Path, splits: Sequence[str] = ("val",)) -> list[Clip]:
    """The labelled CCTV sequences of ``fire/`` (those with fire in some frame)."""
    clips = []
    for split in splits:
        for seq in find_sequences(root / "fire" / "images" / split, with_class=None):
            onset = seq.first_with({0, 1})
            if onset is not None:
                clips.append(Clip(seq.name.split("/", 1)[1], f"fire/{split}", seq.frames, SEQUENCE_FPS, onset))
    return clips


class CachedDetector:
    """The detector's boxes of one clip, read from ``path`` when a previous run stored them
    (one per call, in frame order), else computed and stored once the clip played through
    (``path`` None: neither)."""

    def __init__(self, detector, path: Path | None) -> None:  # type: ignore[no-untyped-def]
        self.detector, self.path, self.names = detector, path, detector.names
        self.cached = pickle.loads(path.read_bytes()) if path is not None and path.is_file() else None
        self.computed: list = []

    def __call__(self, image: np.ndarray):  # type: ignore[no-untyped-def]
        i = len(self.computed)
        out = self.cached[i] if self.cached is not None and i < len(self.cached) else self.detector(image)
        self.computed.append(out)
        return out

    def save(self) -> None:
        if self.path is not None and (self.cached is None or len(self.cached) != len(self.computed)):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(pickle.dumps(self.computed))


@functools.lru_cache(maxsize=8)
def _digest(model: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha1(model.read_bytes()).hexdigest()[:16]


def _cache_path(model: Path, clip: Clip, conf: float, iou: float, detector: object, rate: float) -> Path:
    """Where the boxes of ``detector`` (``model`` at these thresholds, tiled or not, the clip
    read at ``rate`` frames a second) are kept."""
    from vision.detectors.tiles import TiledDetector

    stat = model.stat()
    digest = _digest(model.resolve(), stat.st_mtime_ns, stat.st_size)
    tiling = f"-{detector.rules}" if isinstance(detector, TiledDetector) else ""
    return CACHE / f"{digest}-{clip.set.replace('/', '_')}-{clip.name}-{conf:g}-{iou:g}-{rate:g}fps{tiling}.pkl"


def _daemon(verify: bool | None, model: Path, tiles: int | None = None):  # type: ignore[no-untyped-def]
    """The daemon's detection settings for ``model`` (a shipped detector brings its own
    verification) with verification on or off and ``tiles`` a side (None: as configured), and
    the Settings they came from; the detection threshold's default follows verification."""
    overrides: dict[str, object] = {"detector_model": Path(model)}
    if verify is not None:
        overrides["verify"] = verify
    if tiles is not None:
        overrides["detector_tiles"] = tiles
    settings = daemon_detection(**overrides)
    return settings, settings.settings


def play(clip: Clip, *, model: Path, conf: float | None = None, threads: int = 1, work: Path,
         verify: bool | None = None, cache: bool = True, tiles: int | None = None) -> ClipResult:
    """Replay ``clip`` through the pipeline with the daemon's settings; when did it alert?
    ``verify`` turns temporal verification on or off (None: the daemon's setting);
    ``cache``: reuse the detector's boxes of an earlier run (and store them); ``tiles``: tiles a
    side for small fires (None: the daemon's setting)."""
    from firewatch.wiring import load_classifier, load_verifier
    from vision.detectors import Detector
    from vision.detectors.tiles import tiled
    from vision.replay import replay

    settings, daemon = _daemon(verify, model, tiles)
    conf = settings.conf_threshold if conf is None else conf
    tiles = daemon.detector_tiles
    detector = tiled(Detector(model, conf_threshold=conf, iou_threshold=settings.iou_threshold, threads=threads), tiles)
    if len(clip.frames) == 1:
        source, fps = clip.frames[0], daemon.source_fps
    else:
        source, fps = link_folder(clip.frames, work / clip.name), clip.fps or SEQUENCE_FPS
    detector = CachedDetector(detector, _cache_path(Path(model), clip, conf, settings.iou_threshold, detector, fps)
                              if cache else None)
    events_path = work / f"{clip.name}.jsonl"
    summary = replay(source, model=model, fps=fps, events=events_path, threads=threads, detector=detector,
                     event_config=settings.event_config, classifier=load_classifier(settings.classifier_model),
                     verifier=load_verifier(daemon))
    detector.save()
    events = [json.loads(line) for line in events_path.read_text().splitlines() if line.strip()]
    started = [e for e in events if e.get("event") == "started"]
    first = started[0] if started else None
    # Onsets and alerts in the clip's own frame numbering and seconds of video: a file read at
    # the daemon's rate skips frames, and the event's ``t`` is media time either way.
    clip_fps = clip.fps or fps or SEQUENCE_FPS
    alert_frame = None if first is None else round(first["t"] * clip_fps)
    delay = None
    if first is not None and clip.onset_frame is not None:
        delay = round(first["t"] - clip.onset_frame / clip_fps, 2)
    return ClipResult(
        clip.name, clip.set, summary.frames, clip.onset_frame,
        alert_frame, None if first is None else first["class"],
        delay, len(started), round(1000 * summary.seconds / max(summary.frames, 1), 1),
    )


@dataclass(frozen=True)
class VideoSummary:
    fire_clips: int
    alerted: int
    within_1s: int
    median_delay_s: float | None
    worst_delay_s: float | None
    fire_free_clips: int
    fire_free_alerts: int


# -- still images held in view --------------------------------------------------------------

STILL_FRAMES = 30
STILL_NOISE = 2.0
# Stills are detected once at this threshold and filtered at the one asked for: the detector's
# NMS is greedy by score, so the boxes it keeps at a higher threshold are exactly those of
# these above it (a sweep of thresholds costs one detector pass).
STILL_BASE_CONF = 0.1


@dataclass(frozen=True)
class StillResult:
    image: str
    fire: bool  # labelled fire or smoke: a photo of a fire
    alerts: int


def still_images(root: Path, split: str = "val") -> list[tuple[Path, bool]]:
    """``fire/`` images of ``split`` with whether they show fire or smoke (manifest.csv)."""
    with open(root / "fire" / "manifest.csv", newline="", encoding="utf-8") as f:
        return [(root / "fire" / "images" / r["file"], int(r["n_fire"]) + int(r["n_smoke"]) > 0)
                for r in csv.DictReader(f) if r["split"] == split]


_NOISE_BANK: dict[tuple[int, ...], np.ndarray] = {}


def held_still(path: Path) -> list[np.ndarray]:
    """The image as a camera holding it in view would deliver it: new sensor noise each frame
    (drawn once per image size and shared by all images: noise does not depend on content)."""
    import cv2

    image = cv2.imread(str(path)).astype(np.int16)
    if image.shape not in _NOISE_BANK:
        rng = np.random.default_rng(0)
        noise = rng.standard_normal((STILL_FRAMES, *image.shape), dtype=np.float32) * STILL_NOISE
        _NOISE_BANK[image.shape] = np.rint(noise).astype(np.int16)
    return [np.clip(image + n, 0, 255).astype(np.uint8) for n in _NOISE_BANK[image.shape]]


def play_stills(model: Path, *, conf: float | None = None, verify: bool | None = None, root: Path | None = None,
                threads: int = 1, names: Sequence[str] = (), cache: bool = True,
                tiles: int | None = None, fire_free_only: bool = False) -> list[StillResult]:
    """Hold every val image the detector boxes at all (or those ``names``; only the fire-free
    ones with ``fire_free_only``) in view for 3 s; how many alerts start?"""
    import cv2

    from firewatch.wiring import load_classifier, load_verifier
    from vision.detectors import Detector
    from vision.detectors.tiles import tiled
    from vision.events import FireEvents
    from vision.tracker import Tracker
    from vision.types import Detections, Frame

    settings, daemon = _daemon(verify, model, tiles)
    conf = settings.conf_threshold if conf is None else conf
    tiles = daemon.detector_tiles
    detector = tiled(Detector(model, conf_threshold=STILL_BASE_CONF, iou_threshold=settings.iou_threshold,
                              threads=threads), tiles)
    classifier = load_classifier(settings.classifier_model)
    images = [(p, fire) for p, fire in still_images(root or data_root())
              if (not names or p.name in names) and not (fire_free_only and fire)]
    results = []
    with progress_bar("bench video --stills", total=len(images), unit="image") as bar:
        for path, fire in images:
            bar.update(1)
            clip = Clip(path.name, "stills", (path,), SEQUENCE_FPS, None)
            cached = CachedDetector(detector, _cache_path(Path(model), clip, STILL_BASE_CONF, settings.iou_threshold,
                                                          detector, SEQUENCE_FPS) if cache else None)
            if cached.cached is None and not len(detector(cv2.imread(str(path)))):
                continue  # never boxed, even at 0.1: it cannot alert
            tracker, verifier = Tracker(), load_verifier(daemon)
            events = FireEvents("still", detector.names, settings.event_config, classifier)
            started = 0
            for i, image in enumerate(held_still(path)):
                found = cached(image)
                keep = found.confidence >= conf
                tracked = tracker.update(Detections(found.xyxy[keep], found.confidence[keep], found.class_id[keep]), image)
                frame = Frame(image, i, i / SEQUENCE_FPS, i / SEQUENCE_FPS)
                verdicts = None if verifier is None else verifier.update(image, tracked, events.alert_tracks).verdicts
                started += sum(e.kind == "started" for e in events.update(tracked, frame, verdicts))
            cached.save()
            results.append(StillResult(path.name, fire, started))
    return results


def stills_line(results: Sequence[StillResult]) -> str:
    free = [r for r in results if not r.fire]
    fire = [r for r in results if r.fire]
    return (f"held still 3 s (val images boxed at {STILL_BASE_CONF:g}): fire-free {sum(r.alerts > 0 for r in free)} of "
            f"{len(free)} alerted ({sum(r.alerts for r in free)} alerts); fire photos {sum(r.alerts > 0 for r in fire)} "
            f"of {len(fire)} alerted")


def summarize(results: Sequence[ClipResult]) -> VideoSummary:
    fire = [r for r in results if r.onset_frame is not None]
    delays = [r.delay_s for r in fire if r.delay_s is not None]
    free = [r for r in results if r.onset_frame is None]
    return VideoSummary(
        fire_clips=len(fire),
        alerted=len(delays),
        within_1s=sum(d <= 1.0 for d in delays),
        median_delay_s=statistics.median(delays) if delays else None,
        worst_delay_s=max(delays) if delays else None,
        fire_free_clips=len(free),
        fire_free_alerts=sum(r.alerts for r in free),
    )


def table(results: Sequence[ClipResult], summary: VideoSummary) -> str:
    lines = [f"{'clip':<44} {'set':<10} {'frames':>6} {'onset':>5} {'alert':>5} {'class':<6} {'delay':>8} {'alerts':>6} {'ms/fr':>6}"]
    for r in results:
        delay = "missed" if r.missed else ("-" if r.delay_s is None else f"{r.delay_s:+.1f} s")
        lines.append(
            f"{r.clip[:44]:<44} {r.set:<10} {r.frames:6d} {'-' if r.onset_frame is None else r.onset_frame:>5} "
            f"{'-' if r.first_alert_frame is None else r.first_alert_frame:>5} {r.first_alert_class or '-':<6} "
            f"{delay:>8} {r.alerts:6d} {r.ms_per_frame:6.1f}"
        )
    s = summary
    median = "-" if s.median_delay_s is None else f"{s.median_delay_s:+.1f} s"
    worst = "-" if s.worst_delay_s is None else f"{s.worst_delay_s:+.1f} s"
    lines.append(
        f"fire clips alerted {s.alerted}/{s.fire_clips} ({s.within_1s} within 1 s; median {median}, worst {worst}); "
        f"fire-free clips: {s.fire_free_alerts} alerts in {s.fire_free_clips}"
    )
    return "\n".join(lines)


def run(model: Path, *, conf: float | None = None, threads: int = 1, splits: Sequence[str] = ("val",),
        root: Path | None = None, names: Sequence[str] = (), verify: bool | None = None,
        cache: bool = True, tiles: int | None = None) -> list[ClipResult]:
    root = root or data_root()
    clips = video_clips(root) + sequence_clips(root, splits)
    if names:
        clips = [c for c in clips if c.name in names]
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp, \
            progress_bar("bench video", total=len(clips), unit="clip") as bar:
        results = []
        for clip in clips:
            results.append(play(clip, model=model, conf=conf, threads=threads, work=Path(tmp), verify=verify, cache=cache,
                                tiles=tiles))
            bar.update(1)
        return results


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=user_help(__doc__))
    parser.add_argument("--model", type=Path, default=SHIPPED_DETECTOR, help="detector ONNX (default: the shipped one)")
    parser.add_argument("--conf", type=float, default=None, help="detection threshold (default: the daemon's)")
    parser.add_argument("--threads", type=int, default=1, help="inference threads")
    parser.add_argument("--splits", nargs="*", default=["val"], choices=["val", "train"],
                        help="which fire/ splits' sequences to include (train: seen in training)")
    parser.add_argument("--clip", action="append", default=[],
                        help="only this clip, or with --stills this image's file name (repeatable)")
    parser.add_argument("--verify", choices=["on", "off"], default=None,
                        help="temporal verification on or off (default: the daemon's FIREWATCH_VERIFY)")
    parser.add_argument("--stills", action="store_true",
                        help="hold every fire/ val image the detector boxes in view for 3 s instead of the clips")
    parser.add_argument("--fire-free", action="store_true",
                        help="with --stills: only the fire-free images (the 807 fire photos take most of the time)")
    parser.add_argument("--tiles", type=int, default=None,
                        help="tiles a side for small fires (default: the daemon's FIREWATCH_DETECTOR_TILES)")
    parser.add_argument("--no-cache", action="store_true", help="run the detector even where its boxes are cached")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    verify = None if args.verify is None else args.verify == "on"
    if args.stills:
        stills = play_stills(args.model, conf=args.conf, verify=verify, threads=args.threads, names=args.clip,
                             cache=not args.no_cache, tiles=args.tiles, fire_free_only=args.fire_free)
        print(stills_line(stills))
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"model": str(args.model), "conf": args.conf, "verify": args.verify,
                                             "stills": [asdict(r) for r in stills]}, indent=2))
        return 0
    results = run(args.model, conf=args.conf, threads=args.threads, splits=args.splits, names=args.clip, verify=verify,
                  cache=not args.no_cache, tiles=args.tiles)
    summary = summarize(results)
    print(table(results, summary))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "model": str(args.model), "conf": args.conf, "summary": asdict(summary),
            "clips": [asdict(r) | {"missed": r.missed} for r in results],
        }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
