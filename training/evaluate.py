"""Evaluate an ONNX fire/smoke detector on a YOLO-format folder, as the daemon runs it.

Predictions come from ``vision.detectors.Detector`` (same letterbox, NMS and max_det as the
daemon). One pass at a low confidence (0.001) feeds the ranking metrics: mAP50 and mAP50-95
per class, from ultralytics' ``ap_per_class`` (COCO 101-point interpolation, greedy matching
in descending confidence, the policy of ultralytics' own validator), so the numbers compare
with ``yolo val`` and the training log; a perfect detector scores 0.995 there (the 101-point
curve is integrated with the trapezoid rule down to precision 0 at recall 1). Everything an
operator sees is then read at the operating threshold from the same detections: greedy NMS never lets
a box below the threshold suppress one above it, so filtering afterwards gives the detections
a run at the threshold would give (unless an image has more than max_det boxes above it).

At the operating threshold: per-class precision / recall / F1 (IoU ``iou``), image-level fire
F1 (an image "has fire" if it has a fire label; "fire predicted" if any fire detection), the
false-positive rate on images without a fire label and, separately, on images with no labels
at all, and a confusion matrix (ultralytics' ``ConfusionMatrix``).

Where AP50 is lost: AP at IoU 0.3 beside AP50 (a box that covers the labelled fire but is drawn
wider or narrower than the labeller's counts at 0.3), image-level fire AP (images ranked by
their best fire box), how many images whose fires are all small get a box on one of them, and
the AP of each source when file names carry one (``source__name.jpg``).

    python -m training.evaluate --data ../shared/data/fire --model models/fire-detector.onnx
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from vision.geometry import box_cover_matrix, box_iou_matrix
from vision.replay import Progress
from vision.types import Detections

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# COCO's IoU thresholds for mAP50-95.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
MAP_CONF = 0.001
# Thresholds of the image-level sweep: one evaluation pass gives the whole trade-off.
SWEEP_CONFS = (0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.50)
# Fire label sizes (share of the frame's area) for recall by size; 2 % is where the
# pipeline and the classifier's data call a fire "starting".
SIZE_EDGES = (0.005, 0.02, 0.10)
# Images whose fires are all under this share of the frame are counted apart: whether any of
# their fires gets a box, whatever its extent.
SMALL_FIRE = SIZE_EDGES[1]
# The public sets mix one box per flame with one box per burning area, so a box can cover a
# labelled fire and still miss IoU 0.5; AP at this IoU counts it, to tell finding from drawing.
LOOSE_IOU = 0.3
LOOSE_COL = len(IOU_THRESHOLDS)  # its column in the match table, after COCO's ten
# A fire box "is on" a label when their intersection is at least this share of the smaller box.
COVER = 0.5


# -- data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One image and its YOLO label file (which may be missing: no objects)."""

    image: Path
    label: Path


@dataclass(frozen=True)
class GroundTruth:
    """Labelled boxes of one image: xyxy float32 (M, 4) in image pixels, class_id int32 (M,)."""

    xyxy: np.ndarray
    class_id: np.ndarray
    shape: tuple[int, int] = (0, 0)  # (h, w) of the image, when known

    @classmethod
    def read(cls, label: Path, shape: tuple[int, int]) -> GroundTruth:
        """Parse ``class cx cy w h`` (normalised) lines for an image of ``shape`` (h, w)."""
        rows = np.zeros((0, 5), np.float32)
        if label.is_file():
            text = label.read_text().strip()
            if text:
                rows = np.array([line.split()[:5] for line in text.splitlines() if line.strip()], np.float32)
        h, w = shape
        cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        return cls(xyxy.astype(np.float32), rows[:, 0].astype(np.int32), (int(h), int(w)))

    def lines(self) -> list[str]:
        """The inverse of ``read``: ``class cx cy w h`` lines normalised to ``shape``, each box
        clipped to the image; boxes left with no width or height are dropped."""
        h, w = self.shape
        box = np.clip(self.xyxy, 0, [w, h, w, h])
        cx, cy = (box[:, 0] + box[:, 2]) / 2 / w, (box[:, 1] + box[:, 3]) / 2 / h
        bw, bh = (box[:, 2] - box[:, 0]) / w, (box[:, 3] - box[:, 1]) / h
        return [f"{c} {x:.6f} {y:.6f} {a:.6f} {b:.6f}"
                for c, x, y, a, b in zip(self.class_id.tolist(), cx, cy, bw, bh, strict=True) if a > 0 and b > 0]

    def __len__(self) -> int:
        return len(self.class_id)


def source_of(image: Path) -> str:
    """The source prefix of a file name (``lz__0001.jpg`` -> ``lz``), as the shared sets name
    their files; "" when there is none."""
    head, sep, _ = image.name.partition("__")
    return head if sep else ""


def label_for(image: Path) -> Path:
    """ultralytics' rule: the last ``images`` folder in the path becomes ``labels``."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _split_dir(spec_file: Path, split: str) -> Path:
    spec = yaml.safe_load(spec_file.read_text())
    root = Path(spec.get("path") or ".")
    root = root if root.is_absolute() else spec_file.parent / root
    if split not in spec:
        raise ValueError(f"{spec_file} has no {split!r} split")
    return root / spec[split]


def find_samples(data: str | Path, split: str = "val", limit: int | None = None) -> list[Sample]:
    """Images (sorted) and their label files.

    ``data`` is a ``data.yaml``, a folder holding one (its ``split`` is used), or a folder
    with ``images/`` and ``labels/``. ``limit`` keeps an evenly spaced subset, so every source
    of a sorted, prefix-named dataset stays represented.
    """
    data = Path(data)
    if data.is_file():
        images_dir = _split_dir(data, split)
    elif (data / "data.yaml").is_file():
        images_dir = _split_dir(data / "data.yaml", split)
    elif (data / "images").is_dir():
        images_dir = data / "images"
    else:
        raise FileNotFoundError(f"{data}: neither a data.yaml nor a folder with images/ and labels/")
    images = sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"no images under {images_dir}")
    if limit is not None and limit < len(images):
        images = [images[i] for i in np.linspace(0, len(images) - 1, limit).round().astype(int)]
    return [Sample(p, label_for(p)) for p in images]


def dataset_names(data: str | Path) -> dict[int, str] | None:
    """Class names from the dataset's data.yaml, if it has one."""
    data = Path(data)
    spec_file = data if data.is_file() else data / "data.yaml"
    if not spec_file.is_file():
        return None
    names = yaml.safe_load(spec_file.read_text()).get("names")
    if isinstance(names, list):
        return dict(enumerate(names))
    return {int(k): str(v) for k, v in names.items()} if names else None


# -- matching ---------------------------------------------------------------------------


def match(dets: Detections, gt: GroundTruth, thresholds: np.ndarray) -> np.ndarray:
    """Which detections are true positives at each IoU threshold: bool (N, T).

    Same-class, one-to-one, greedy in descending confidence: each detection takes its
    best-overlapping unclaimed label (ultralytics' ``match_predictions``). Because the greedy
    order is by confidence, the rows of the detections above any threshold are exactly what
    matching only those detections would give.
    """
    correct = np.zeros((len(dets), len(thresholds)), bool)
    if not len(dets) or not len(gt):
        return correct
    order = np.argsort(-dets.confidence, kind="stable")
    iou = box_iou_matrix(gt.xyxy, dets.xyxy[order])
    iou *= gt.class_id[:, None] == dets.class_id[order][None, :]
    claimed = np.zeros((len(gt), len(thresholds)), bool)
    cols = np.arange(len(thresholds))
    for j in np.flatnonzero((iou >= thresholds.min()).any(axis=0)):
        available = np.where(claimed, 0.0, iou[:, j, None])  # (M, T)
        best = available.argmax(axis=0)
        hit = available[best, cols] >= thresholds
        correct[order[j]] = hit
        claimed[best, cols] |= hit
    return correct


# -- the report -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassMetrics:
    """One class: AP over the ranking (None if the class has no labels) and P/R/F1 at the
    operating threshold."""

    name: str
    labels: int
    detections: int  # at the operating threshold
    ap50: float | None
    ap50_95: float | None
    precision: float
    recall: float
    f1: float
    ap30: float | None = None  # AP at LOOSE_IOU


@dataclass(frozen=True)
class ImageMetrics:
    """Image-level view of one class at the operating threshold."""

    positives: int  # images with at least one label of the class
    predicted: int  # images with at least one detection of the class
    true_positives: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class SweepRow:
    """Image-level fire detection at one threshold; ``*_veto`` after the classifier's veto."""

    conf: float
    precision: float
    recall: float
    f1: float
    fp_rate: float | None  # share of images with no fire label that get a fire box
    precision_veto: float | None = None
    recall_veto: float | None = None
    f1_veto: float | None = None
    fp_rate_veto: float | None = None


@dataclass(frozen=True)
class SizeRecall:
    """Recall of fire labels whose area is ``lo`` <= share of the frame < ``hi``, at the
    operating threshold (a label counts as found when a fire box overlaps it at the match IoU)."""

    lo: float
    hi: float
    labels: int
    found: int
    recall: float | None


@dataclass(frozen=True)
class SmallFireImages:
    """Images whose every fire label is under ``below`` of the frame, and how many of them get
    a fire box at the operating threshold on one of those fires (intersection >= half the smaller box)."""

    below: float
    images: int
    found: int
    recall: float | None


@dataclass(frozen=True)
class SourceMetrics:
    """AP50 and AP at LOOSE_IOU of one image source (None for a class it has no labels of)."""

    images: int
    labels: dict[str, int]
    ap50: dict[str, float | None]
    ap30: dict[str, float | None]


@dataclass(frozen=True)
class FalsePositiveRate:
    """Share of ``images`` that got at least one fire detection (``flagged``)."""

    images: int
    flagged: int
    rate: float | None


@dataclass
class EvalReport:
    """What :func:`evaluate` measured; ``to_dict`` is the JSON written."""

    model: str
    data: str
    images: int
    conf: float
    iou: float
    map50: float
    map50_95: float
    classes: dict[str, ClassMetrics]
    image_fire: ImageMetrics
    fp_rate_fire_free: FalsePositiveRate  # images without a fire label (may hold smoke)
    fp_rate_no_labels: FalsePositiveRate  # images without any label
    confusion_matrix: list[list[int]]  # [predicted, true], last row/column = background
    ms_per_image: float | None = None  # full Detector call; informative only (see bench/)
    plots: dict[str, str] = field(default_factory=dict)
    image_sweep: list[SweepRow] = field(default_factory=list)
    fire_recall_by_size: list[SizeRecall] = field(default_factory=list)
    veto: float | None = None  # p(no-fire) at which the classifier vetoed a fire box, if used
    image_fire_ap: float | None = None  # images ranked by their best fire box (sklearn's AP)
    small_fire_images: SmallFireImages | None = None
    by_source: dict[str, SourceMetrics] = field(default_factory=dict)  # only with more than one source

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """A plain-text summary for the terminal."""
        lines = [
            f"model {self.model}  data {self.data}  images {self.images}  "
            f"operating conf {self.conf}  match IoU {self.iou}",
            f"{'class':<10}{'labels':>8}{'dets':>7}{'AP50':>8}{'AP50-95':>9}{'AP30':>7}{'P':>7}{'R':>7}{'F1':>7}",
        ]

        def ap(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        for c in self.classes.values():
            lines.append(
                f"{c.name:<10}{c.labels:>8}{c.detections:>7}{ap(c.ap50):>8}{ap(c.ap50_95):>9}{ap(c.ap30):>7}"
                f"{c.precision:>7.3f}{c.recall:>7.3f}{c.f1:>7.3f}"
            )
        lines.append(f"{'all':<10}{'':>8}{'':>7}{self.map50:>8.3f}{self.map50_95:>9.3f}")
        f = self.image_fire
        lines.append(
            f"image-level fire: P {f.precision:.3f}  R {f.recall:.3f}  F1 {f.f1:.3f}  "
            f"({f.true_positives}/{f.positives} fire images found, {f.predicted} flagged)"
        )
        if self.image_fire_ap is not None:
            lines.append(f"image-level fire AP (images ranked by their best fire box): {self.image_fire_ap:.3f}")
        for label, fpr in (("no fire label", self.fp_rate_fire_free), ("no labels", self.fp_rate_no_labels)):
            rate = "-" if fpr.rate is None else f"{fpr.rate:.3f}"
            lines.append(f"false-positive rate on images with {label}: {rate} ({fpr.flagged}/{fpr.images})")
        if self.fire_recall_by_size:
            lines.append("fire recall at the operating threshold by label size (share of the frame): " + ",  ".join(
                f"{b.lo:.1%}-{b.hi:.1%} {_num(b.recall)} ({b.found}/{b.labels})" for b in self.fire_recall_by_size))
        if (small := self.small_fire_images) is not None:
            lines.append(f"images whose fires are all under {small.below:.0%} of the frame: {_num(small.recall)} "
                         f"({small.found}/{small.images} with a fire box on one of them)")
        for name, m in self.by_source.items():
            per_class = ",  ".join(f"{c} {n} labels AP50 {_num(m.ap50[c])} AP30 {_num(m.ap30[c])}"
                                   for c, n in m.labels.items() if n)
            lines.append(f"source {name or '(none)'}: {m.images} images, {per_class or 'no labels'}")
        if self.image_sweep:
            veto = self.veto is not None
            head = "image-level fire by threshold (fire-free FP = share of images without a fire label flagged)"
            lines.append(head + (f"; 'veto': boxes the classifier calls no-fire at p >= {self.veto} dropped" if veto else ""))
            lines.append(f"{'conf':>6}{'P':>7}{'R':>7}{'F1':>7}{'FP':>7}" + (f"{'P veto':>9}{'R veto':>9}{'F1 veto':>9}{'FP veto':>9}" if veto else ""))
            for row in self.image_sweep:
                line = f"{row.conf:>6.2f}{row.precision:>7.3f}{row.recall:>7.3f}{row.f1:>7.3f}{_num(row.fp_rate):>7}"
                if veto:
                    line += (f"{_num(row.precision_veto):>9}{_num(row.recall_veto):>9}"
                             f"{_num(row.f1_veto):>9}{_num(row.fp_rate_veto):>9}")
                lines.append(line)
        if self.ms_per_image is not None:
            lines.append(f"{self.ms_per_image:.1f} ms per image (detector call, this machine, informative)")
        return "\n".join(lines)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


class EvalAccumulator:
    """Collects (ground truth, low-confidence detections) per image; :meth:`report` scores them.

    Kept apart from the model so that the metric code can be checked with hand-made
    detections (ground truth fed back must score 1.0).
    """

    def __init__(self, names: dict[int, str], conf: float, iou: float, fire_class: int | None = None) -> None:
        self.names = names
        self.conf = conf
        self.iou = iou
        self.fire_class = fire_class if fire_class is not None else _find_class(names, "fire")
        # Columns: COCO's ten IoUs, LOOSE_IOU (column LOOSE_COL), then the operating match IoU.
        self._thresholds = np.append(IOU_THRESHOLDS, [LOOSE_IOU, iou])
        self._tp: list[np.ndarray] = []
        self._conf: list[np.ndarray] = []
        self._pred_cls: list[np.ndarray] = []
        self._target_cls: list[np.ndarray] = []
        self._image_flags: list[tuple[bool, bool, bool]] = []  # (has fire label, no labels, fire predicted)
        # Per image: the best fire score, and the best one the classifier did not veto.
        self._top_fire: list[float] = []
        self._top_fire_kept: list[float] = []
        self._vetoing = False
        self._fire_sizes: list[np.ndarray] = []  # per fire label: share of the frame
        self._fire_found: list[np.ndarray] = []  # per fire label: found at the operating threshold
        self._small_found: list[bool] = []  # per image whose fires are all small: one of them boxed
        self._sources: list[str] = []  # per image
        self._confusion = None

    def add(self, gt: GroundTruth, dets: Detections, vetoed: np.ndarray | None = None, source: str = "") -> None:
        """One image. ``vetoed`` (bool per detection) marks boxes the classifier vetoed;
        it only enters the ``*_veto`` columns of the sweep. ``source`` groups images for the
        per-source AP."""
        self._sources.append(source)
        self._tp.append(match(dets, gt, self._thresholds))
        self._conf.append(dets.confidence)
        self._pred_cls.append(dets.class_id)
        self._target_cls.append(gt.class_id)
        above = dets.confidence >= self.conf
        fire_predicted = bool((above & (dets.class_id == self.fire_class)).any())
        self._image_flags.append((bool((gt.class_id == self.fire_class).any()), len(gt) == 0, fire_predicted))
        fire = dets.class_id == self.fire_class
        self._top_fire.append(float(dets.confidence[fire].max(initial=0.0)))
        if vetoed is not None:
            self._vetoing = True
            kept = fire & ~np.asarray(vetoed, bool)
            self._top_fire_kept.append(float(dets.confidence[kept].max(initial=0.0)))
        else:
            self._top_fire_kept.append(self._top_fire[-1])
        self._add_sizes(gt, dets[above & fire])
        self._add_confusion(gt, dets[above])

    def _add_sizes(self, gt: GroundTruth, fire_dets: Detections) -> None:
        """Per fire label: its share of the frame and whether a box matches it; per image whose
        fires are all small: whether a box is on one of them."""
        labels = gt.xyxy[gt.class_id == self.fire_class]
        h, w = gt.shape
        if not len(labels) or not h * w:
            return
        areas = (labels[:, 2] - labels[:, 0]) * (labels[:, 3] - labels[:, 1]) / float(h * w)
        found = np.zeros(len(labels), bool)
        on_one = False
        if len(fire_dets):
            found = (box_iou_matrix(labels, fire_dets.xyxy) >= self.iou).any(axis=1)
            on_one = bool((box_cover_matrix(labels, fire_dets.xyxy) >= COVER).any())
        self._fire_sizes.append(areas)
        self._fire_found.append(found)
        if areas.max() < SMALL_FIRE:
            self._small_found.append(on_one)

    def _small_fire_images(self) -> SmallFireImages | None:
        if not self._small_found:
            return None
        n, k = len(self._small_found), int(sum(self._small_found))
        return SmallFireImages(SMALL_FIRE, n, k, round(k / n, 4))

    def _recall_by_size(self) -> list[SizeRecall]:
        if not self._fire_sizes:
            return []
        sizes, found = np.concatenate(self._fire_sizes), np.concatenate(self._fire_found)
        edges = (0.0, *SIZE_EDGES, 1.0 + 1e-9)
        out = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            inside = (sizes >= lo) & (sizes < hi)
            n, k = int(inside.sum()), int((inside & found).sum())
            out.append(SizeRecall(lo, min(hi, 1.0), n, k, round(k / n, 4) if n else None))
        return out

    def _add_confusion(self, gt: GroundTruth, dets: Detections) -> None:
        import torch
        from ultralytics.utils.metrics import ConfusionMatrix

        if self._confusion is None:
            self._confusion = ConfusionMatrix(names=self.names)
        self._confusion.process_batch(
            {"bboxes": torch.from_numpy(dets.xyxy), "conf": torch.from_numpy(dets.confidence),
             "cls": torch.from_numpy(dets.class_id.astype(np.float32))},
            {"bboxes": torch.from_numpy(gt.xyxy), "cls": torch.from_numpy(gt.class_id.astype(np.float32))},
            conf=self.conf - 1e-9,  # ultralytics keeps conf > threshold; the daemon keeps >=
            iou_thres=self.iou,
        )

    def report(self, *, model: str = "", data: str = "", out_dir: Path | None = None) -> EvalReport:
        tp = np.concatenate(self._tp) if self._tp else np.zeros((0, len(self._thresholds)), bool)
        conf = np.concatenate(self._conf) if self._conf else np.zeros(0, np.float32)
        pred_cls = np.concatenate(self._pred_cls) if self._pred_cls else np.zeros(0, np.int32)
        target_cls = np.concatenate(self._target_cls) if self._target_cls else np.zeros(0, np.int32)

        plots: dict[str, str] = {}
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        ap_by_class = self._ap(tp, conf, pred_cls, target_cls, out_dir)
        if out_dir is not None and (out_dir / "PR_curve.png").is_file():
            plots["pr_curve"] = str(out_dir / "PR_curve.png")

        above = conf >= self.conf
        per_class: dict[str, ClassMetrics] = {}
        for c, name in sorted(self.names.items()):
            n_labels = int((target_cls == c).sum())
            is_c = above & (pred_cls == c)
            hits = int(tp[is_c, -1].sum())
            p, r = _ratio(hits, int(is_c.sum())), _ratio(hits, n_labels)
            ap_c = ap_by_class.get(c)
            per_class[name] = ClassMetrics(
                name, n_labels, int(is_c.sum()),
                None if ap_c is None else round(float(ap_c[0]), 4),
                None if ap_c is None else round(float(ap_c[:LOOSE_COL].mean()), 4),
                round(p, 4), round(r, 4), round(_f1(p, r), 4),
                None if ap_c is None else round(float(ap_c[LOOSE_COL]), 4),
            )
        with_labels = [m for m in per_class.values() if m.ap50 is not None]
        map50 = float(np.mean([m.ap50 for m in with_labels])) if with_labels else 0.0
        map50_95 = float(np.mean([m.ap50_95 for m in with_labels])) if with_labels else 0.0

        flags = np.array(self._image_flags, bool).reshape(-1, 3)
        has_fire, no_labels, fire_pred = flags[:, 0], flags[:, 1], flags[:, 2]
        found = int((has_fire & fire_pred).sum())
        ip, ir = _ratio(found, int(fire_pred.sum())), _ratio(found, int(has_fire.sum()))
        image_fire = ImageMetrics(int(has_fire.sum()), int(fire_pred.sum()), found, round(ip, 4), round(ir, 4),
                                  round(_f1(ip, ir), 4))

        def fpr(mask: np.ndarray) -> FalsePositiveRate:
            n, k = int(mask.sum()), int((mask & fire_pred).sum())
            return FalsePositiveRate(n, k, round(k / n, 4) if n else None)

        matrix = np.zeros((len(self.names) + 1,) * 2)
        if self._confusion is not None:
            matrix = self._confusion.matrix
            if out_dir is not None:
                for normalize in (False, True):
                    self._confusion.plot(normalize=normalize, save_dir=out_dir)
                for key, fname in (("confusion_matrix", "confusion_matrix.png"),
                                   ("confusion_matrix_normalized", "confusion_matrix_normalized.png")):
                    if (out_dir / fname).is_file():
                        plots[key] = str(out_dir / fname)
                    else:  # ultralytics' plot swallows its own errors
                        log.warning("confusion matrix plot %s was not written", fname)

        return EvalReport(
            model=model, data=data, images=len(flags), conf=self.conf, iou=self.iou,
            map50=round(map50, 4), map50_95=round(map50_95, 4), classes=per_class, image_fire=image_fire,
            fp_rate_fire_free=fpr(~has_fire), fp_rate_no_labels=fpr(no_labels),
            confusion_matrix=matrix.astype(int).tolist(), plots=plots,
            image_sweep=self._sweep(has_fire), fire_recall_by_size=self._recall_by_size(),
            image_fire_ap=self._image_fire_ap(has_fire), small_fire_images=self._small_fire_images(),
            by_source=self._by_source(tp, conf, pred_cls, target_cls),
        )

    def _ap(self, tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray,
            out_dir: Path | None = None) -> dict[int, np.ndarray]:
        """Per class with labels: AP at each IoU column but the last (the operating one)."""
        from ultralytics.utils.metrics import ap_per_class

        if not len(target_cls):
            return {}
        result = ap_per_class(tp[:, :-1], conf, pred_cls, target_cls,
                              plot=out_dir is not None, save_dir=out_dir or Path(), names=self.names)
        return {int(c): result[5][i] for i, c in enumerate(result[6])}

    def _image_fire_ap(self, has_fire: np.ndarray) -> float | None:
        from sklearn.metrics import average_precision_score

        if not has_fire.any() or has_fire.all():
            return None
        return round(float(average_precision_score(has_fire, np.asarray(self._top_fire))), 4)

    def _by_source(self, tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray,
                   target_cls: np.ndarray) -> dict[str, SourceMetrics]:
        names = sorted(set(self._sources))
        if len(names) < 2:
            return {}
        det_source = np.repeat(self._sources, [len(t) for t in self._tp])
        gt_source = np.repeat(self._sources, [len(t) for t in self._target_cls])
        out = {}
        for name in names:
            d, g = det_source == name, gt_source == name
            ap = self._ap(tp[d], conf[d], pred_cls[d], target_cls[g])
            labels = {n: int((target_cls[g] == c).sum()) for c, n in sorted(self.names.items())}
            out[name] = SourceMetrics(
                self._sources.count(name), labels,
                {n: None if c not in ap else round(float(ap[c][0]), 4) for c, n in sorted(self.names.items())},
                {n: None if c not in ap else round(float(ap[c][LOOSE_COL]), 4) for c, n in sorted(self.names.items())},
            )
        return out

    def _sweep(self, has_fire: np.ndarray) -> list[SweepRow]:
        """Image-level fire P/R/F1 and fire-free FP rate at each of :data:`SWEEP_CONFS`."""
        top = np.asarray(self._top_fire, np.float32)
        kept = np.asarray(self._top_fire_kept, np.float32)

        def at(scores: np.ndarray, conf: float) -> tuple[float, float, float, float | None]:
            flagged = scores >= conf
            found = int((flagged & has_fire).sum())
            p, r = _ratio(found, int(flagged.sum())), _ratio(found, int(has_fire.sum()))
            free = int((~has_fire).sum())
            fp = round(int((flagged & ~has_fire).sum()) / free, 4) if free else None
            return round(p, 4), round(r, 4), round(_f1(p, r), 4), fp

        rows = []
        for conf in SWEEP_CONFS:
            plain = at(top, conf)
            veto = at(kept, conf) if self._vetoing else (None, None, None, None)
            rows.append(SweepRow(conf, *plain, *veto))
        return rows


def _find_class(names: dict[int, str], wanted: str) -> int:
    for k, v in names.items():
        if v == wanted:
            return int(k)
    raise ValueError(f"no class named {wanted!r} in {names}")


def evaluate(
    data: str | Path,
    model: str | Path,
    *,
    conf: float = 0.25,
    iou: float = 0.5,
    nms_iou: float = 0.5,
    split: str = "val",
    limit: int | None = None,
    threads: int | None = None,
    out_dir: str | Path | None = None,
    json_path: str | Path | None = None,
    verbose: bool = True,
    classifier: str | Path | None = None,
    veto: float = 0.9,
    progress: Progress | None = None,
    tiles: int = 1,
) -> EvalReport:
    """Run ``model`` (ONNX) through the daemon's ``Detector`` on ``data`` and score it.

    ``conf`` is the operating threshold (the daemon's ``detect_confidence``), ``iou`` the IoU a
    detection needs to count as a hit at that threshold, ``nms_iou`` the daemon's NMS IoU.
    ``out_dir`` receives PR_curve.png (plus F1/P/R curves) and confusion_matrix*.png;
    ``json_path`` the report as JSON. ``limit`` evaluates an evenly spaced subset.
    With ``classifier`` (the fire classifier's ONNX), the image-level sweep gets a second set
    of columns where a fire box is dropped when the classifier gives its crop p(no-fire) >=
    ``veto`` — the per-image analogue of the pipeline's veto of a track. ``progress`` (a tqdm
    bar fits) is told the image count and each image scored. ``tiles`` > 1 adds a tiles × tiles
    grid of tiles for small fires (``vision.detectors.tiles``), as the daemon's setting does.
    """
    from training import offline

    offline.prepare()  # ultralytics' metric and plotting code is imported below
    from vision.detectors import Detector
    from vision.detectors.tiles import tiled

    samples = find_samples(data, split, limit)
    # Tiles run where the whole frame has a box at the operating threshold, as in the daemon.
    detector = tiled(Detector(model, conf_threshold=MAP_CONF, iou_threshold=nms_iou, threads=threads), tiles, gate=conf)
    names = detector.names or dataset_names(data) or {0: "fire", 1: "smoke"}
    expected = dataset_names(data)
    if expected and expected != names:
        log.warning("model classes %s differ from the dataset's %s", names, expected)
    acc = EvalAccumulator(names, conf, iou)
    veto_boxes = _box_veto(classifier, veto, acc.fire_class) if classifier is not None else None
    spent = 0.0
    if progress is not None:
        progress.total = len(samples)
    for sample in samples:
        image = cv2.imread(str(sample.image))
        if image is None:
            raise ValueError(f"cannot read image {sample.image}")
        t = time.perf_counter()
        dets = detector(image)
        spent += time.perf_counter() - t
        vetoed = veto_boxes(image, dets) if veto_boxes is not None else None
        acc.add(GroundTruth.read(sample.label, image.shape[:2]), dets, vetoed, source_of(sample.image))
        if progress is not None:
            progress.update(1)
    out = Path(out_dir) if out_dir is not None else None
    report = acc.report(model=str(model), data=str(data), out_dir=out)
    report.ms_per_image = round(1000 * spent / len(samples), 2)
    report.veto = veto if classifier is not None else None
    if json_path is not None:
        json_path = Path(json_path)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_dict(), indent=2))
    if verbose:
        print(report.table())
    return report


def _box_veto(path: str | Path, veto: float, fire_class: int) -> Callable[[np.ndarray, Detections], np.ndarray]:
    """A function marking the fire boxes (above the sweep's lowest threshold) that the
    classifier vetoes, on the same context crop the pipeline gives it."""
    from vision.classifier import FireClassifier
    from vision.crops import context_crop

    clf = FireClassifier(path)
    floor = min(SWEEP_CONFS)

    def vetoed(image: np.ndarray, dets: Detections) -> np.ndarray:
        out = np.zeros(len(dets), bool)
        for i in np.flatnonzero((dets.class_id == fire_class) & (dets.confidence >= floor)):
            out[i] = clf.classify(context_crop(image, dets.xyxy[i])).no_fire >= veto
        return out

    return vetoed


def main(argv: Sequence[str] | None = None) -> EvalReport:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="data.yaml, or a folder with images/ and labels/")
    ap.add_argument("--model", type=Path, default=Path("models/fire-detector.onnx"))
    ap.add_argument("--conf", type=float, default=0.25, help="operating threshold (the daemon's default)")
    ap.add_argument("--iou", type=float, default=0.5, help="match IoU at the operating threshold")
    ap.add_argument("--nms-iou", type=float, default=0.5)
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out", type=Path, help="folder for the PNG plots")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--classifier", type=Path, help="fire classifier ONNX: adds the vetoed sweep columns")
    ap.add_argument("--veto", type=float, default=0.9)
    ap.add_argument("--tiles", type=int, default=1, help="tiles a side for small fires (1: none)")
    args = ap.parse_args(argv)
    return evaluate(
        args.data, args.model, conf=args.conf, iou=args.iou, nms_iou=args.nms_iou, split=args.split,
        limit=args.limit, threads=args.threads, out_dir=args.out, json_path=args.json,
        classifier=args.classifier, veto=args.veto, tiles=args.tiles,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
