"""Where the tests' inputs are: the repository, the shipped models and the shared datasets,
and the real frames and faces several test layers play."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from firewatch.paths import REPO_ROOT, SHIPPED_CLASSIFIER, SHIPPED_DETECTOR, SHIPPED_DETECTORS, data_root

REPO = REPO_ROOT
# Absolute: tests run commands from temporary folders (tests/conftest.py exports it).
DATA = data_root().resolve()
FIRE = DATA / "fire"
FACES = DATA / "faces" / "face_recognition"
KNN = FACES / "examples" / "knn_examples"
NO_FACE = FIRE / "images" / "val" / "rf__img_261_jpg.rf.065d0fef257db2bfb431674e081f3fa1.jpg"
# A trained detector stored in float32, for the tools that shrink or quantize one (the shipped
# default is already stored in float16).
FP32_DETECTOR = SHIPPED_DETECTORS["v1"][0]

__all__ = [
    "DATA", "FACES", "FIRE", "FIRE2", "FP32_DETECTOR", "KNN", "NO_FACE", "REPO", "SHIPPED_CLASSIFIER", "SHIPPED_DETECTOR",
    "fire_free_cctv", "folder_of", "frame_no", "identity_photos", "label_of", "link_sequence", "video_frames",
]


def frame_no(path: Path) -> int:
    """The frame number of an ``rf__<video>_mp4-<n>_jpg...`` image."""
    return int(re.search(r"_mp4-(\d+)_", path.name).group(1))  # type: ignore[union-attr]


def video_frames(video: str) -> list[Path]:
    """The train frames of ``rf__<video>_mp4`` in playing order."""
    return sorted((FIRE / "images" / "train").glob(f"rf__{video}_mp4-*.jpg"), key=frame_no)


# 51 consecutive CCTV frames: one fire (28..71), then smoke (72..82).
FIRE2 = video_frames("fire2")


def label_of(image: Path) -> Path:
    """The YOLO label file of a dataset image."""
    return FIRE / "labels" / image.parent.name / (image.stem + ".txt")


def fire_free_cctv(n: int) -> list[Path]:
    """rf__ fire-free frames (empty label files), a stable choice."""
    with open(FIRE / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["file"].startswith("train/rf__img_") and r["n_fire"] == "0" and r["n_smoke"] == "0"]
    return [FIRE / "images" / r["file"] for r in sorted(rows, key=lambda r: r["file"])[:n]]


def link_sequence(folder: Path, images: list[Path]) -> Path:
    """Symlink images into ``folder`` as 0000.jpg, 0001.jpg, ... (play order)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        (folder / f"{i:04d}.jpg").symlink_to(image)
    return folder


def folder_of(tmp_path: Path, images: list[Path]) -> Path:
    """``images`` as a new image folder ``tmp_path/frames`` that a source plays in order."""
    return link_sequence(tmp_path / "frames", images)


def identity_photos(identity: str) -> list[Path]:
    """The face photos of one person in the shared faces set."""
    with (FACES / "identities.csv").open(newline="") as handle:
        return [FACES / row["file"] for row in csv.DictReader(handle) if row["identity"] == identity]
