"""Fit and evaluate the temporal verification model (``vision/verification.py``), offline.

Labelled tracks come from a REAL detector (``--detector``, the shipped one by default) and the
tracker, run on:

- the shared videos: the 3 fire clips (positives from their onset frame) and the 3 fire-free
  clips (negatives);
- ``fire/`` sequences of consecutive CCTV frames (``rf__<video>_mp4-<n>``): positive where
  the frame is labelled with the track's class;
- ``fire/`` images HELD STILL as 10 FPS clips with a little sensor noise (Gaussian, sigma 2
  grey levels, new every frame): all negatives, fire or not, since a photo of a fire is not a
  fire. Every val image is held 3 s; train images (a sample of those the detector boxes) 2 s.

Detections and features are cached per detector file and clip under
``runs/verification/<detector>-<digest>/`` (gitignored), so a
re-fit costs seconds. The split stays honest: the model that scores ``fire/`` val never saw
it (val is one group), each video is scored by a model fitted without that video, and the
thresholds (one per class and window length, see ``choose_thresholds``) are chosen on
out-of-fold scores of the training pool (group 5-fold). That pool holds the videos, so their
own out-of-fold scores take part in the thresholds (the car clip sets the smoke threshold of
a full window): a mild leak into the video rows of the report, none into fire/ val.

    python -m training.verification [--detector models/fire-detector.onnx] [--static-train 400] \
        [--min-frames 3 4] [--out models/verification.json]

With several ``--min-frames`` the report compares them and the first one is written out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import pickle
from collections.abc import Iterator
from dataclasses import astuple, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from vision.types import Detections
from vision.verification import VerificationConfig, VerificationModel, Verifier

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "runs" / "verification"
MODEL = ROOT / "models" / "fire-detector.onnx"
FPS = 10.0
NOISE_SIGMA = 2.0
# Bump when vision/verification.py's features or camera motion change: the feature cache is
# keyed on it.
FEATURES_VERSION = 4
# Features are cached from this many frames on; a larger ``min_frames`` is a filter on them.
CACHE_MIN_FRAMES = 3
# Transform per feature (log offset; absent: linear). "frames" is bookkeeping, not a cue.
LOG_OFFSET = {
    "flicker": 0.002, "motion_in": 0.002, "oscillation": 0.001, "flicker_ratio": 0.01, "motion_ratio": 0.01,
    "brightness_ratio": 0.01, "outline_change": 0.01,
}
# The box's growth is left out of the model (it stays in the verdict's reason), and so are
# its travel and area jitter (no longer computed): the only fire-free clip whose boxes travel
# and grow is the car clip, so a model fitted without it (out of fold) learned that
# travelling and growing is fire-like, and smoke boxes on cars scored as high as real smoke
# (out-of-fold logit 9.2 with them, 4.8 without).
NAMES = ("flicker", "flicker_ratio", "motion_in", "motion_ratio", "oscillation", "brightness_ratio", "fire_colour",
         "outline_change")
CONFIRM_HITS, CONFIRM_WINDOW = 3, 5  # today's rule (vision.events.EventConfig defaults)
# Thresholds sit this far (logit units) above the highest fire-free score out of fold.
MARGIN = 0.5


@dataclass(frozen=True)
class Clip:
    """A labelled stretch of frames. ``positive[i]``: class ids that are real in frame i."""

    name: str
    group: str
    split: str  # "train" | "val" | "video"
    kind: str  # "video" | "sequence" | "static"
    source: tuple[str, ...]  # a video path, frame paths, or one image path (held still)
    positive: tuple[frozenset[int], ...]
    shows_fire: bool = False  # what the picture shows (a held-still fire photo: True, yet no positive frame)

    def frames(self) -> Iterator[np.ndarray]:
        if self.kind == "video":
            cap = cv2.VideoCapture(self.source[0])
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield frame
            cap.release()
        elif self.kind == "sequence":
            for path in self.source:
                yield cv2.imread(path)
        else:
            image = cv2.imread(self.source[0]).astype(np.float32)
            rng = np.random.default_rng(int(hashlib.md5(self.name.encode()).hexdigest()[:8], 16))
            for _ in self.positive:
                yield np.clip(image + rng.normal(0.0, NOISE_SIGMA, image.shape), 0, 255).astype(np.uint8)


# -- the clips -------------------------------------------------------------------------------


def data_root() -> Path:
    return Path(os.environ.get("FIREWATCH_DATA", ROOT.parent / "shared" / "data"))


def video_clips(root: Path) -> list[Clip]:
    import csv

    clips = []
    for row in csv.DictReader((root / "videos" / "labels.csv").open()):
        n, onset = int(row["frames"]), row["fire_onset_frame"]
        fire = frozenset({0, 1})  # flames bring smoke: either class is real after the onset
        positive = tuple(fire if onset and i >= int(onset) else frozenset() for i in range(n))
        path = (str(root / "videos" / row["file"]),)
        clips.append(Clip(row["file"], f"video:{row['file']}", "video", "video", path, positive, bool(onset)))
    return clips


def sequence_clips(root: Path, split: str) -> list[Clip]:
    from bench.pipeline import find_sequences

    return [
        Clip(seq.name, f"{split}:{seq.name}", split, "sequence", tuple(str(p) for p in seq.frames), seq.classes, any(seq.classes))
        for seq in find_sequences(root / "fire" / "images" / split, min_frames=8, with_class=None)
    ]


def static_clips(root: Path, split: str, frames: int, limit: int | None, detector_low,  # type: ignore[no-untyped-def]
                 cache_dir: Path) -> tuple[list[Clip], int]:
    """Images of ``split`` held still; only those the detector boxes at all (at 0.1, well
    below the daemon's 0.25) can raise an alert, so the others are counted, not played."""
    import csv

    rows = [r for r in csv.DictReader((root / "fire" / "manifest.csv").open()) if r["split"] == split]
    if limit is not None:
        rng = np.random.default_rng(0)
        rows = [rows[i] for i in sorted(rng.choice(len(rows), min(limit, len(rows)), replace=False))]
    cache = cache_dir / f"boxed-{split}-{limit}.json"
    boxed: dict[str, bool] = json.loads(cache.read_text()) if cache.is_file() else {}
    clips = []
    for r in rows:
        path = root / "fire" / "images" / r["file"]
        if r["file"] not in boxed:
            boxed[r["file"]] = len(detector_low(cv2.imread(str(path)))) > 0
        if boxed[r["file"]]:
            fire = int(r["n_fire"]) + int(r["n_smoke"]) > 0
            clips.append(Clip(f"static:{r['file']}", f"{split}:{r['group']}", split, "static", (str(path),), (frozenset(),) * frames, fire))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(boxed))
    return clips, len(rows) - len(clips)


# -- detections and features, cached per clip ------------------------------------------------


def model_cache(model: Path) -> Path:
    """Where the boxes and features of ``model``'s tracks are cached: keyed on its bytes, so a
    retrained or another detector never reads the boxes of the one before."""
    digest = hashlib.sha1(Path(model).read_bytes()).hexdigest()[:12]
    return CACHE / f"{Path(model).stem}-{digest}"


def _cache_path(cache_dir: Path, clip: Clip, what: str) -> Path:
    return cache_dir / what / (hashlib.md5(clip.name.encode()).hexdigest() + ".pkl")


def tracked_detections(clip: Clip, detector, tracker_factory, cache_dir: Path) -> list[Detections]:  # type: ignore[no-untyped-def]
    path = _cache_path(cache_dir, clip, "detections")
    if path.is_file():
        return pickle.loads(path.read_bytes())
    tracker = tracker_factory()
    out = [tracker.update(detector(frame)) for frame in clip.frames()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    return out


@dataclass(frozen=True)
class Row:
    """One track in one frame: what the verifier saw, and the truth."""

    clip: str
    frame: int
    track_id: int
    class_id: int
    label: int
    camera_moving: bool
    features: dict[str, float] | None


def clip_rows(clip: Clip, dets: list[Detections], cache_dir: Path) -> list[Row]:
    path = _cache_path(cache_dir, clip, f"features-v{FEATURES_VERSION}")
    if path.is_file():  # plain tuples: a pickled class would be tied to how this ran (-m or import)
        return [Row(*t) for t in pickle.loads(path.read_bytes())]
    verifier = Verifier(model=None, config=VerificationConfig(min_frames=CACHE_MIN_FRAMES))
    rows = []
    for i, (frame, tracked) in enumerate(zip(clip.frames(), dets)):
        result = verifier.update(frame, tracked)
        for tid, cls in zip(tracked.track_id.tolist(), tracked.class_id.tolist()):
            v = result.verdicts[tid]
            rows.append(Row(clip.name, i, tid, cls, int(cls in clip.positive[i]), v.camera_moving, v.features or None))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps([astuple(r) for r in rows]))
    return rows


# -- fitting ---------------------------------------------------------------------------------


def has_verdict(row: Row, min_frames: int) -> bool:
    """The verifier would give this row a verdict with ``min_frames``."""
    return row.features is not None and min(row.features["frames"], row.features["window"]) >= min_frames


def design(rows: list[Row]) -> np.ndarray:
    x = np.array([[r.features[n] for n in NAMES] for r in rows], np.float64)
    for i, name in enumerate(NAMES):
        if name in LOG_OFFSET:
            x[:, i] = np.log(np.maximum(x[:, i], 0.0) + LOG_OFFSET[name])
    return x


# The features overlap (flicker, oscillation and motion inside the box all rise with a flame), and
# weakly regularised fits traded them against each other with opposite signs: on v2's tracks,
# C 1 weighed flicker -2.1 and motion +7.6, let the held-out car clip alert and stopped holding a
# fire that kept burning in a looped clip. At C 0.01 every cue counts for fire and neither
# happens, with every other held-out row unchanged (models/fire-detector-v2.md, "Shipped").
# verification-v1.json was fitted at C 1.
REGULARISATION_C = 0.01


def fit(rows: list[Row], min_frames: int, c: float = REGULARISATION_C) -> VerificationModel:
    """Logistic regression; every clip weighs the same within its label, and both labels the
    same in all (a 30-frame still image must not outweigh a 100-frame fire video 40 to 1)."""
    from sklearn.linear_model import LogisticRegression

    usable = [r for r in rows if has_verdict(r, min_frames)]
    x, y = design(usable), np.array([r.label for r in usable])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    lr = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y, sample_weight=sample_weights(usable))
    return VerificationModel(
        NAMES, tuple(mean.tolist()), tuple(scale.tolist()), tuple(lr.coef_[0].tolist()), float(lr.intercept_[0]),
        (0.5,), 0.25, {k: v for k, v in LOG_OFFSET.items() if k in NAMES}, min_frames,
    )


def sample_weights(rows: list[Row]) -> np.ndarray:
    """Per row: a clip's rows of one label share its weight, every clip weighs the same within
    its label, and each label weighs as much as all the rows would at weight 1 (the scale at
    which ``REGULARISATION_C`` was chosen)."""
    y = np.array([r.label for r in rows])
    counts: dict[tuple[str, int], int] = {}
    for r in rows:
        counts[(r.clip, r.label)] = counts.get((r.clip, r.label), 0) + 1
    w = np.array([1.0 / counts[(r.clip, r.label)] for r in rows])
    for label in (0, 1):
        w[y == label] /= w[y == label].sum()
    return w * len(rows)


def scores(model: VerificationModel, rows: list[Row]) -> list[float | None]:
    return [model.score(r.features) if has_verdict(r, model.min_frames) else None for r in rows]


# -- today's rule vs verification --------------------------------------------------------------


@dataclass(frozen=True)
class ClipAlerts:
    clip: str
    baseline_frame: int | None  # first K-of-N alert (today)
    verified_frame: int | None  # first alert with verification in front of it


def confirmed(clip: Clip, rows: list[Row]) -> list[bool]:
    """Per row: K of the last N frames hold for its track, and it counts for the clip (for
    fire clips only frames where something is really there: from the onset, of the class)."""
    seen: dict[int, list[int]] = {}
    out = []
    for r in rows:
        frames = seen.setdefault(r.track_id, [])
        frames.append(r.frame)
        real = not any(clip.positive) or bool(r.label)
        out.append(real and sum(1 for f in frames if f > r.frame - CONFIRM_WINDOW) >= CONFIRM_HITS)
    return out


def simulate(clip: Clip, rows: list[Row], track_scores: list[float | None], model: VerificationModel) -> ClipAlerts:
    """First alert frame of the clip today (K of the last N frames) and with verification in
    front of it (K-of-N and a verdict above the threshold of its window's length)."""
    baseline = verified = None
    for r, s, ok in zip(rows, track_scores, confirmed(clip, rows)):
        if not ok:
            continue
        baseline = r.frame if baseline is None else min(baseline, r.frame)
        if verified is None and s is not None and s >= model.threshold_for(int(r.features["window"])):
            verified = r.frame
    return ClipAlerts(clip.name, baseline, verified)


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return float(np.log(p / (1 - p)))


def choose_thresholds(oof: list[tuple[Clip, list[Row], list[float | None]]], min_frames: int,
                      window: int) -> tuple[float, ...]:
    """Per window length (min_frames .. window): just above the highest score any fire-free or
    held-still clip of the pool reaches out of fold on a K-of-N-confirmed frame of that length
    (a margin of MARGIN in logit units), so that none of them alerts; none below 0.5. Short
    windows occur only in a stream's first ``window`` frames; they get thresholds of their own
    because the fire-free tracks that score highest (smoke boxes on passing cars) do so over a
    full window, and a fire in view when the stream starts must not wait for it. One set for
    every class: fire-class negatives of the pool hardly move (lamps, photos), so a fire-only
    threshold would let through any moving thing boxed as fire (a hand moving bottles, seen at
    detection threshold 0.2)."""
    worst = np.full(window - min_frames + 1, -np.inf)
    for clip, rows, s in oof:
        if any(clip.positive):
            continue
        for r, x, ok in zip(rows, s, confirmed(clip, rows)):
            if ok and x is not None:
                k = min(int(r.features["window"]), window) - min_frames
                worst[k] = max(worst[k], _logit(x))
    return tuple(max(0.5, float(1 / (1 + np.exp(-(x + MARGIN))))) for x in worst)


def report(results: list[tuple[Clip, ClipAlerts]]) -> list[str]:
    """Alerts today and with verification, by kind of clip."""
    lines = []
    for kind in ("video", "sequence", "static"):
        for fire in (True, False):
            sel = [(c, a) for c, a in results if c.kind == kind and c.shows_fire == fire]
            if not sel:
                continue
            base = sum(a.baseline_frame is not None for _, a in sel)
            ver = sum(a.verified_frame is not None for _, a in sel)
            line = f"- {kind}, {'fire' if fire else 'fire-free'}: {len(sel)} clips; alert today {base}, with verification {ver}"
            if fire and kind != "static":
                delays = [(a.verified_frame - a.baseline_frame) / FPS for _, a in sel if a.verified_frame is not None and a.baseline_frame is not None]
                later = sum(d > 0 for d in delays)
                line += (f"; added delay median {np.median(delays) if delays else float('nan'):.1f} s, "
                         f"max {max(delays, default=float('nan')):.1f} s; {later} later than today")
            if kind == "static" and fire:
                line += f": {base - ver} fire photos held back"
            lines.append(line)
            if kind == "video" or (kind == "sequence" and fire):
                lines += [f"  - {a.clip}: first alert frame today {a.baseline_frame}, verified {a.verified_frame}" for _, a in sel]
    return lines


def evaluate(clips: list[Clip], data: dict[str, list[Row]], min_frames: int, window: int,
             regularisation_c: float = REGULARISATION_C,
             ) -> tuple[VerificationModel, list[str], dict[str, VerificationModel]]:
    """Fit on the pool (train + videos), choose the thresholds out of fold, report held out.
    Also returns each video's model fitted without it, by the video's file name."""
    from sklearn.model_selection import GroupKFold

    pool = [c for c in clips if c.split in ("train", "video")]
    rows_of = lambda cs: [r for c in cs for r in data[c.name]]  # noqa: E731
    oof = []
    for fit_idx, held_idx in GroupKFold(5).split(pool, groups=[c.group for c in pool]):
        m = fit(rows_of([pool[i] for i in fit_idx]), min_frames, regularisation_c)
        oof += [(pool[i], data[pool[i].name], scores(m, data[pool[i].name])) for i in held_idx]
    thresholds = choose_thresholds(oof, min_frames, window)
    final = fit(rows_of(pool), min_frames, regularisation_c)
    model = replace(final, thresholds=thresholds, hold_threshold=thresholds[-1] / 2)
    # Held out: val by the pool's model (val is never fitted); each video by a model fitted without it.
    held = [(c, simulate(c, data[c.name], scores(model, data[c.name]), model)) for c in clips if c.split == "val"]
    without: dict[str, VerificationModel] = {}
    for video in (c for c in clips if c.split == "video"):
        m = replace(fit(rows_of([c for c in pool if c is not video]), min_frames, regularisation_c), thresholds=thresholds,
                    hold_threshold=model.hold_threshold)
        without[video.name] = m
        held.append((video, simulate(video, data[video.name], scores(m, data[video.name]), m)))
    oof_results = [(c, simulate(c, r, s, model)) for c, r, s in oof if c.split == "train"]
    lines = [
        f"### min_frames {min_frames}: thresholds by window length {min_frames}..{window}: "
        + " ".join(f"{x:.4f}" for x in thresholds) + f"; hold {model.hold_threshold:.3f}",
        "coefficients (standardised): " + ", ".join(f"{n} {c:+.2f}" for n, c in zip(NAMES, final.coef)),
        "held out (fire/ val: model fitted without val; videos: leave-one-video-out):",
        *report(held),
        "fire/ train, out of fold (group 5-fold):",
        *report(oof_results),
    ]
    return model, lines, without


def collect(static_train: int, model: Path = MODEL) -> tuple[list[Clip], dict[str, list[Row]], int, int]:
    """Every labelled clip and its rows from detector ``model`` (detections and features
    cached); the numbers of val and sampled train images never boxed at 0.1 (not played)."""
    from vision.detectors import Detector

    root = data_root()
    cache_dir = model_cache(model)
    detector = Detector(model, conf_threshold=0.25, iou_threshold=0.5, threads=1)
    low = Detector(model, conf_threshold=0.1, iou_threshold=0.5, threads=1)
    static_val, skipped_val = static_clips(root, "val", 30, None, low, cache_dir)
    static_train, skipped_train = static_clips(root, "train", 20, static_train, low, cache_dir)
    clips = video_clips(root) + sequence_clips(root, "train") + sequence_clips(root, "val") + static_train + static_val
    log.info("%d clips (%d val and %d train images never boxed at 0.1: not played)", len(clips), skipped_val, skipped_train)
    return clips, track_rows(clips, detector, cache_dir), skipped_val, skipped_train


def track_rows(clips: list[Clip], detector, cache_dir: Path) -> dict[str, list[Row]]:  # type: ignore[no-untyped-def]
    """Each clip's rows: ``detector`` (as the daemon runs it) and the tracker, then the
    verifier's features; both cached under ``cache_dir``."""
    from vision.tracker import Tracker

    data: dict[str, list[Row]] = {}
    for i, clip in enumerate(clips):
        data[clip.name] = clip_rows(clip, tracked_detections(clip, detector, Tracker, cache_dir), cache_dir)
        if i % 100 == 0:
            log.info("clip %d/%d %s", i, len(clips), clip.name)
    return data


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--static-train", type=int, default=400, help="train images sampled to hold still")
    parser.add_argument("--min-frames", type=int, nargs="+", default=[VerificationConfig().min_frames],
                        help="frames a track needs before a verdict; several: compare them, ship the first")
    parser.add_argument("--detector", type=Path, default=MODEL, help="the detector whose tracks are fitted")
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "verification.json")
    parser.add_argument("--report", type=Path, default=CACHE / "report.md")
    parser.add_argument("--c", type=float, default=REGULARISATION_C,
                        help="inverse regularisation strength of the logistic regression (smaller: stronger)")
    parser.add_argument("--held-out-dir", type=Path, default=None,
                        help="also write each video's model fitted without it here, as <video>.json, to replay "
                             "the video held out (firewatch bench video --clip, FIREWATCH_VERIFICATION_MODEL)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    clips, data, skipped_val, skipped_train = collect(args.static_train, args.detector)
    lines = [
        f"Never boxed at 0.1 (so never alerted, not played): {skipped_val} val images, {skipped_train} of the "
        f"{args.static_train} sampled train images. Detector {args.detector.name} at 0.25, today's rule {CONFIRM_HITS} of {CONFIRM_WINDOW}; "
        f"regularisation C {args.c:g}.",
    ]
    shipped = None
    for min_frames in args.min_frames:
        model, section, without = evaluate(clips, data, min_frames, VerificationConfig().window, args.c)
        if shipped is None:
            shipped = model
            if args.held_out_dir is not None:
                args.held_out_dir.mkdir(parents=True, exist_ok=True)
                for video, held_out in without.items():
                    (args.held_out_dir / f"{Path(video).stem}.json").write_text(json.dumps(held_out.to_json(), indent=1) + "\n")
        lines += ["", *section]
    args.out.write_text(json.dumps(shipped.to_json(), indent=1) + "\n")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    _cli()
