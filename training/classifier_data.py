"""Derive fire / start-fire / no-fire crops for the classifier from the shared data.

Rule (also in models/fire-classifier.md):

- Every crop of a box is taken the way the pipeline takes it: :func:`vision.crops.context_crop`
  (box + 50 % margin, at least 0.3 x the frame's geometric-mean side, square), resized to S x S.
- Images with fire boxes (``fire/``): the whole frame is ``start-fire`` if its largest fire box
  covers < 2 % of the frame, else ``fire``. Box crops: in a frame whose fire is all small,
  every fire box (3 largest) is ``start-fire``; in a frame with a large fire, only the boxes of
  >= 2 % (3 largest) are ``fire`` -- small fragments next to a big fire are skipped as ambiguous.
  One background window that keeps clear of every fire box (grown by 10 %) is ``no-fire``.
- Images without fire boxes: the frame, up to 2 smoke-box crops and one random window are
  ``no-fire`` (negatives, smoke-only frames, ``cairneg__`` hard negatives). ``ig__`` images
  never label smoke, but all of them hold fire, so none is read as a smoke negative.
- ``fire-photos/fire/`` (image level, no boxes): the frame is ``fire``, train split only.
- Extra YOLO folders (``extra``, e.g. ``fire-extra/``: indoor and CCTV fires): their train
  images by the same rules. Their smoke is not labelled, which the rules above allow: smoke is
  ``no-fire`` to the classifier anyway.
- Detector proposals (train split, when a detector is given): the detector's fire boxes at
  >= 0.10 (5 best per image), cropped the pipeline's way. A box with IoU >= 0.3 to a fire label
  gets the frame's fire label (``start-fire`` if its largest fire < 2 %, else ``fire``); a box
  less than 5 % of which is covered by fire labels is ``no-fire``; anything between is skipped.
  These are the crops the pipeline actually asks about, the detector's mistakes included:
  those become the veto's hard negatives.

The dataset's own group split is kept. Crops are cached as ``.npz`` under runs/classifier/.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.classifier import LABELS
from vision.crops import context_crop, context_window
from vision.detectors import Detector
from vision.geometry import box_iou
from vision.types import START_FIRE_MAX_AREA

log = logging.getLogger(__name__)

FIRE, START_FIRE, NO_FIRE = (LABELS.index(n) for n in ("fire", "start-fire", "no-fire"))
MAX_BOXES = 3
MAX_SMOKE = 2
BACKGROUND_CLEARANCE = 0.1
PROPOSAL_CONF = 0.10
PROPOSAL_MAX = 5
PROPOSAL_HIT_IOU = 0.3
PROPOSAL_MISS_COVER = 0.05


@dataclass(frozen=True)
class CropSet:
    """Derived samples: ``images`` (N, S, S, 3) uint8 BGR, ``labels`` (N,) int64 into LABELS,
    ``area`` (N,) float32 fire area fraction behind the label (0 for no-fire),
    ``kind`` (N,) str (frame / box / background / smoke / photo / proposal), ``source`` (N,) str (image path under the data folder)."""

    images: np.ndarray
    labels: np.ndarray
    area: np.ndarray
    kind: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> "CropSet":
        return CropSet(self.images[idx], self.labels[idx], self.area[idx], self.kind[idx],
                       self.source[idx])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, images=self.images, labels=self.labels, area=self.area,
                 kind=self.kind, source=self.source)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "CropSet":
        with np.load(path) as z:
            return cls(z["images"], z["labels"], z["area"], z["kind"], z["source"])


@dataclass(frozen=True)
class _Box:
    cls: int
    xyxy: tuple[float, float, float, float]
    area: float  # fraction of the frame


def _read_boxes(label_file: Path, h: int, w: int) -> list[_Box]:
    boxes = []
    for line in label_file.read_text().split("\n"):
        parts = line.split()
        if len(parts) != 5:
            continue
        c, cx, cy, bw, bh = int(parts[0]), *map(float, parts[1:])
        xyxy = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
        boxes.append(_Box(c, xyxy, bw * bh))
    return boxes


def _rng(name: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha1(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _intersects(a: tuple[int, int, int, int], b: tuple[float, ...], grow: float) -> bool:
    gx, gy = (b[2] - b[0]) * grow, (b[3] - b[1]) * grow
    return not (a[2] <= b[0] - gx or a[0] >= b[2] + gx or a[3] <= b[1] - gy or a[1] >= b[3] + gy)


def _background_window(
    h: int, w: int, fire: list[_Box], rng: np.random.Generator, tries: int = 20
) -> tuple[int, int, int, int] | None:
    """A random window of pipeline-like size that stays clear of every fire box."""
    g = float(np.sqrt(h * w))
    for _ in range(tries):
        side = rng.uniform(0.3, 0.7) * g
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        win = context_window((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2),
                             (h, w), margin=0.0)
        if not any(_intersects(win, b.xyxy, BACKGROUND_CLEARANCE) for b in fire):
            return win
    return None


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def derive_image(
    img: np.ndarray, boxes: list[_Box], name: str, size: int, seed: int = 0
) -> list[tuple[np.ndarray, int, float, str]]:
    """All samples of one ``fire/`` image: (crop S x S BGR, label, area, kind)."""
    h, w = img.shape[:2]
    rng = _rng(name, seed)
    fire = sorted((b for b in boxes if b.cls == 0), key=lambda b: -b.area)
    out: list[tuple[np.ndarray, int, float, str]] = []

    def crop(win: tuple[int, int, int, int]) -> np.ndarray:
        return _resize(img[win[1]:win[3], win[0]:win[2]], size)

    if fire:
        top = fire[0].area
        small = top < START_FIRE_MAX_AREA
        out.append((_resize(img, size), START_FIRE if small else FIRE, top, "frame"))
        chosen = fire if small else [b for b in fire if b.area >= START_FIRE_MAX_AREA]
        for b in chosen[:MAX_BOXES]:
            out.append((crop(context_window(b.xyxy, (h, w))), START_FIRE if small else FIRE,
                        b.area, "box"))
    else:
        out.append((_resize(img, size), NO_FIRE, 0.0, "frame"))
        smoke = sorted((b for b in boxes if b.cls == 1), key=lambda b: -b.area)
        for b in smoke[:MAX_SMOKE]:
            out.append((crop(context_window(b.xyxy, (h, w))), NO_FIRE, 0.0, "smoke"))
    win = _background_window(h, w, fire, rng)
    if win is not None:
        out.append((crop(win), NO_FIRE, 0.0, "background"))
    return out


def derive_proposals(
    img: np.ndarray, boxes: list[_Box], detector: Detector, size: int
) -> list[tuple[np.ndarray, int, float, str]]:
    """The detector's fire boxes on one image, labelled against the fire labels (module doc)."""
    fire = [b for b in boxes if b.cls == 0]
    gt = np.asarray([b.xyxy for b in fire], np.float32).reshape(-1, 4)
    small = bool(fire) and max(b.area for b in fire) < START_FIRE_MAX_AREA
    dets = detector(img)
    out: list[tuple[np.ndarray, int, float, str]] = []
    for i in np.flatnonzero(dets.class_id == 0)[:PROPOSAL_MAX]:  # sorted by score
        box = dets.xyxy[i]
        if len(gt):
            iou = box_iou(box, gt)
            inter = np.clip(np.minimum(box[2:], gt[:, 2:]) - np.maximum(box[:2], gt[:, :2]), 0, None)
            cover = inter.prod(1) / max(float(np.prod(box[2:] - box[:2])), 1e-6)
        else:
            iou = cover = np.zeros(1, np.float32)
        if iou.max() >= PROPOSAL_HIT_IOU:
            label, area = (START_FIRE if small else FIRE), fire[int(iou.argmax())].area
        elif cover.max() < PROPOSAL_MISS_COVER:
            label, area = NO_FIRE, 0.0
        else:
            continue
        out.append((_resize(context_crop(img, box), size), label, area, "proposal"))
    return out


def split_files(folder: Path, split: str, limit: int | None) -> list[str]:
    """The files of ``split`` in ``folder``'s manifest; ``limit`` takes every k-th one."""
    with open(folder / "manifest.csv", newline="") as f:
        files = sorted(r["file"] for r in csv.DictReader(f) if r["split"] == split)
    if limit is not None and limit < len(files):
        files = files[:: max(1, len(files) // limit)][:limit]
    return files


def derive_split(
    data_dir: Path, split: str, size: int = 64, limit: int | None = None, seed: int = 0,
    detector: Path | None = None, extra: Sequence[str] = (),
) -> CropSet:
    """Derive the samples of one split ("train" or "val"); ``limit`` takes every k-th image.
    ``detector`` (an ONNX file) adds its proposals as samples (train split only). ``extra``
    names more YOLO folders under ``data_dir`` (e.g. "fire-extra") whose train images are
    derived by the same rules; val stays ``fire/`` val, comparable across runs."""
    data_dir = Path(data_dir)
    folders = [("", data_dir / "fire", split_files(data_dir / "fire", split, limit))]
    if split == "train":
        folders += [(f"{name}/", data_dir / name, split_files(data_dir / name, split, limit)) for name in extra]
    photos = sorted((data_dir / "fire-photos" / "fire").glob("*")) if split == "train" else []
    if limit is not None:
        photos = photos[: max(1, limit // 40)]

    proposer = None
    if detector is not None and split == "train":
        proposer = Detector(detector, conf_threshold=PROPOSAL_CONF, iou_threshold=0.5)
    imgs: list[np.ndarray] = []
    labels: list[int] = []
    areas: list[float] = []
    kinds: list[str] = []
    names: list[str] = []
    for prefix, folder, files in folders:
        for rel in files:
            img = cv2.imread(str(folder / "images" / rel), cv2.IMREAD_COLOR)
            if img is None:
                log.warning("unreadable %s%s", prefix, rel)
                continue
            label_file = folder / "labels" / Path(rel).with_suffix(".txt")
            boxes = _read_boxes(label_file, *img.shape[:2]) if label_file.exists() else []
            samples = derive_image(img, boxes, prefix + rel, size, seed)
            if proposer is not None:
                samples += derive_proposals(img, boxes, proposer, size)
            for crop, lab, area, kind in samples:
                imgs.append(crop); labels.append(lab); areas.append(area)
                kinds.append(kind); names.append(prefix + rel)
    for p in photos:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            continue
        imgs.append(_resize(img, size)); labels.append(FIRE); areas.append(1.0)
        kinds.append("photo"); names.append(f"fire-photos/fire/{p.name}")
    return CropSet(
        np.stack(imgs).astype(np.uint8), np.asarray(labels, np.int64),
        np.asarray(areas, np.float32), np.asarray(kinds), np.asarray(names),
    )


def load_or_derive(
    data_dir: Path, split: str, cache_dir: Path, size: int = 64, limit: int | None = None,
    seed: int = 0, detector: Path | None = None, extra: Sequence[str] = (),
) -> CropSet:
    """:func:`derive_split`, cached as ``{cache_dir}/{split}-{size}[-{limit}]-s{seed}[-p{hash}][+{extra}].npz``
    (the hash is of the detector file, so a new detector derives new proposals)."""
    tag = f"{split}-{size}" + (f"-{limit}" if limit is not None else "") + f"-s{seed}"
    if detector is not None and split == "train":
        tag += "-p" + hashlib.sha1(Path(detector).read_bytes()).hexdigest()[:8]
    if extra and split == "train":
        tag += "".join(f"+{name}" for name in extra)
    path = Path(cache_dir) / f"{tag}.npz"
    if path.exists():
        return CropSet.load(path)
    crops = derive_split(data_dir, split, size, limit, seed, detector, extra)
    crops.save(path)
    counts = np.bincount(crops.labels, minlength=len(LABELS))
    log.info("derived %s: %d samples %s", tag, len(crops), dict(zip(LABELS, counts.tolist())))
    return crops
