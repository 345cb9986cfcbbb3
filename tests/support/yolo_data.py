"""Tiny YOLO datasets cut from the shared fire data, for training tests that must stay short."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.data import FIRE


def tiny_dataset(root: Path, n_train: int = 8, n_val: int = 4) -> Path:
    """A YOLO folder with a few real fire images and one fire-free one per split."""
    for split, n in (("train", n_train), ("val", n_val)):
        labels = sorted((FIRE / "labels" / split).glob("rf__*.txt"))
        with_fire = [p for p in labels if p.stat().st_size][: n - 1]
        empty = [p for p in labels if not p.stat().st_size][:1]
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for label in with_fire + empty:
            shutil.copy(label, root / "labels" / split / label.name)
            image = FIRE / "images" / split / (label.stem + ".jpg")
            (root / "images" / split / image.name).symlink_to(image)
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: fire\n  1: smoke\n"
    )
    return root
