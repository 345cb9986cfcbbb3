"""Choose the detector threshold and the classifier veto together, on labelled images.

The pipeline keeps a fire box only if the detector scores it at least ``detect_confidence``
and the classifier gives its crop p(no-fire) below ``veto_no_fire``. This module scores every
pair at the image level (an image is flagged when any fire box survives both; "has fire" when
it has a fire label), picks the pair with the best fire F1 among those that flag at most
``max_fp`` of the fire-free images, and estimates what that choice is worth on images it was
not made on: group 2-fold cross-validation (pick on the images of half the groups, score the
other half, pool both halves; repeated over random halvings). Groups are the dataset's
``manifest.csv`` groups (one source video or near-duplicate cluster), so frames of one video
never sit on both sides.

    python -m training.cascade_sweep --data ../shared/data/fire [--json F]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from training.evaluate import GroundTruth, find_samples

log = logging.getLogger(__name__)

CONFS = tuple(np.round(np.arange(0.10, 0.405, 0.01), 2).tolist())
VETOES = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2).tolist()) + (1.01,)  # 1.01: no veto
MAX_FP = 0.03


@dataclass(frozen=True)
class ImageBoxes:
    """One image: its fire boxes' detector scores and the classifier's p(no-fire) for each."""

    name: str
    group: str
    has_fire: bool
    conf: np.ndarray
    no_fire: np.ndarray


@dataclass(frozen=True)
class Point:
    conf: float
    veto: float
    precision: float
    recall: float
    f1: float
    fp_rate: float
    fp: int


@dataclass(frozen=True)
class CrossValidation:
    """Pooled out-of-fold results of choosing the pair on the other half, over ``repeats``."""

    repeats: int
    f1_mean: float
    f1_min: float
    f1_max: float
    fp_rate_mean: float
    fp_rate_min: float
    fp_rate_max: float
    picks: list[tuple[float, float]]  # (conf, veto) chosen on each half


def _groups(data: Path, split: str) -> dict[str, str]:
    """Image file name -> group, from the dataset's manifest.csv (empty if it has none)."""
    for manifest in (data / "manifest.csv", data.parent / "manifest.csv"):
        if manifest.is_file():
            with open(manifest, newline="") as f:
                return {Path(r["file"]).name: r["group"] for r in csv.DictReader(f) if r.get("split", split) == split}
    return {}


def collect(
    data: str | Path, model: str | Path, classifier: str | Path, *, split: str = "val",
    floor: float = min(CONFS), limit: int | None = None,
) -> list[ImageBoxes]:
    """Run the detector (at ``floor``) and the classifier on every fire box of every image."""
    from vision.classifier import FireClassifier
    from vision.crops import context_crop
    from vision.detectors import Detector

    detector = Detector(model, conf_threshold=floor, iou_threshold=0.5)
    clf = FireClassifier(classifier)
    fire_id = next((k for k, v in detector.names.items() if v == "fire"), 0)
    groups = _groups(Path(data), split)
    out = []
    for sample in find_samples(data, split, limit):
        image = cv2.imread(str(sample.image))
        if image is None:
            raise ValueError(f"cannot read image {sample.image}")
        gt = GroundTruth.read(sample.label, image.shape[:2])
        dets = detector(image)
        fire = np.flatnonzero(dets.class_id == fire_id)
        no_fire = [clf.classify(context_crop(image, dets.xyxy[i])).no_fire for i in fire]
        out.append(ImageBoxes(sample.image.name, groups.get(sample.image.name, sample.image.name),
                              bool((gt.class_id == fire_id).any()), dets.confidence[fire],
                              np.asarray(no_fire, np.float32)))
    return out


def best_kept(images: Sequence[ImageBoxes], vetoes: Sequence[float]) -> np.ndarray:
    """(images, vetoes): the best fire score among the boxes the veto keeps (0 if none)."""
    out = np.zeros((len(images), len(vetoes)), np.float32)
    for i, im in enumerate(images):
        for j, veto in enumerate(vetoes):
            kept = im.conf[im.no_fire < veto]
            out[i, j] = kept.max(initial=0.0)
    return out


def score(has_fire: np.ndarray, flagged: np.ndarray, conf: float, veto: float) -> Point:
    tp = int((flagged & has_fire).sum())
    fp = int((flagged & ~has_fire).sum())
    fn = int((~flagged & has_fire).sum())
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    return Point(conf, veto, round(p, 4), round(r, 4), round(2 * tp / max(2 * tp + fp + fn, 1), 4),
                 round(fp / max(int((~has_fire).sum()), 1), 4), fp)


def grid(has_fire: np.ndarray, kept: np.ndarray, confs: Sequence[float], vetoes: Sequence[float]) -> list[Point]:
    return [score(has_fire, kept[:, j] >= c, c, v) for j, v in enumerate(vetoes) for c in confs]


def choose(points: Sequence[Point], max_fp: float = MAX_FP) -> Point | None:
    """Best F1 among the pairs within the false-alarm budget; ties go to the higher threshold
    and then the looser veto (fewer boxes asked about, fewer vetoes)."""
    ok = [p for p in points if p.fp_rate <= max_fp]
    return max(ok, key=lambda p: (p.f1, p.conf, p.veto)) if ok else None


def cross_validate(
    images: Sequence[ImageBoxes], confs: Sequence[float] = CONFS, vetoes: Sequence[float] = VETOES,
    max_fp: float = MAX_FP, repeats: int = 20, seed: int = 0,
) -> CrossValidation:
    has_fire = np.array([im.has_fire for im in images])
    groups = np.array([im.group for im in images])
    names = np.unique(groups)
    kept = best_kept(images, vetoes)
    f1s, fps, picks = [], [], []
    for k in range(repeats):
        half = np.isin(groups, np.random.default_rng(seed + k).permutation(names)[: len(names) // 2])
        flagged = np.zeros(len(images), bool)
        for pick_on in (half, ~half):
            chosen = choose(grid(has_fire[pick_on], kept[pick_on], confs, vetoes), max_fp)
            if chosen is None:  # nothing within budget on this half: flag nothing there
                continue
            picks.append((chosen.conf, chosen.veto))
            other = ~pick_on
            flagged[other] = kept[other, list(vetoes).index(chosen.veto)] >= chosen.conf
        pooled = score(has_fire, flagged, 0.0, 0.0)
        f1s.append(pooled.f1)
        fps.append(pooled.fp_rate)
    return CrossValidation(repeats, round(float(np.mean(f1s)), 4), min(f1s), max(f1s),
                           round(float(np.mean(fps)), 4), min(fps), max(fps), picks)


def report(images: Sequence[ImageBoxes], max_fp: float = MAX_FP, repeats: int = 20) -> dict:
    has_fire = np.array([im.has_fire for im in images])
    kept = best_kept(images, VETOES)
    points = grid(has_fire, kept, CONFS, VETOES)
    chosen = choose(points, max_fp)
    return {
        "images": len(images),
        "fire_images": int(has_fire.sum()),
        "max_fp": max_fp,
        "chosen": asdict(chosen) if chosen else None,
        "no_veto": [asdict(p) for p in points if p.veto == VETOES[-1]],
        "cross_validation": asdict(cross_validate(images, max_fp=max_fp, repeats=repeats)),
        "grid": [asdict(p) for p in points],
    }


def table(result: dict, confs: Sequence[float] = (0.15, 0.20, 0.25, 0.30)) -> str:
    """F1 / fire-free flagged rate for a few thresholds (columns) and every veto (rows)."""
    by = {(p["conf"], p["veto"]): p for p in result["grid"]}
    lines = ["veto p(no-fire) >= | " + " | ".join(f"conf {c:.2f}: F1 / FP" for c in confs)]
    for v in VETOES:
        cells = [f"{by[(c, v)]['f1']:.3f} / {by[(c, v)]['fp_rate']:.1%}" for c in confs]
        lines.append(f"{'off' if v > 1 else f'{v:.2f}':>18} | " + " | ".join(cells))
    c, cv = result["chosen"], result["cross_validation"]
    if c:
        lines.append(f"best within {result['max_fp']:.0%} flagged: conf {c['conf']:.2f}, veto {c['veto']:.2f}: "
                     f"F1 {c['f1']:.3f} (P {c['precision']:.3f} R {c['recall']:.3f}), {c['fp']} fire-free images flagged ({c['fp_rate']:.1%})")
    lines.append(f"chosen on one half of the groups, scored on the other ({cv['repeats']} halvings): "
                 f"F1 {cv['f1_mean']:.3f} ({cv['f1_min']:.3f}-{cv['f1_max']:.3f}), "
                 f"flagged {cv['fp_rate_mean']:.1%} ({cv['fp_rate_min']:.1%}-{cv['fp_rate_max']:.1%})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=Path("models/fire-detector.onnx"))
    parser.add_argument("--classifier", type=Path, default=Path("models/fire-classifier.onnx"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--max-fp", type=float, default=MAX_FP)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    images = collect(args.data, args.model, args.classifier, split=args.split, limit=args.limit)
    result = report(images, args.max_fp)
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
