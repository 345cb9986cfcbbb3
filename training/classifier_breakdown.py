"""Where the fire classifier is right and wrong on the val crops: the model card's tables.

Accuracy by sample kind and by source, how the fire / start-fire call moves with the fire's
share of the frame, and how many crops of each true class a veto at p(no-fire) >= v drops.

    python -m training.classifier_breakdown --data ../shared/data [--model models/fire-classifier.onnx]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.classifier_data import NO_FIRE, CropSet, load_or_derive
from vision.classifier import LABELS, FireClassifier

AREA_EDGES = (0.0, 0.005, 0.01, 0.02, 0.04, 0.10, 0.30, 1.01)
VETOES = (0.9, 0.5, 0.25, 0.1)


def predict(model: str | Path, crops: CropSet) -> np.ndarray:
    """(N, 3) probabilities in the order of LABELS."""
    clf = FireClassifier(model)
    return np.stack([clf.classify(img).probs for img in crops.images])


def _accuracy_by(keys: np.ndarray, right: np.ndarray) -> list[tuple[str, int, float]]:
    return [(str(k), int((keys == k).sum()), float(right[keys == k].mean())) for k in np.unique(keys)]


def breakdown(crops: CropSet, probs: np.ndarray) -> str:
    pred = probs.argmax(1)
    right = pred == crops.labels
    source = np.array([Path(str(s)).name.split("__")[0] for s in crops.source])
    lines = [f"val crops: {len(crops)}, accuracy {right.mean():.3f}", "", "| kind | n | accuracy |", "|---|---|---|"]
    lines += [f"| {k} | {n} | {a:.2f} |" for k, n, a in _accuracy_by(crops.kind, right)]
    lines += ["", "| source | n | accuracy |", "|---|---|---|"]
    lines += [f"| {k} | {n} | {a:.2f} |" for k, n, a in _accuracy_by(source, right)]

    fiery = crops.labels != NO_FIRE
    buckets = list(zip(AREA_EDGES[:-1], AREA_EDGES[1:]))
    head = [f"{lo:.1%}-{hi:.1%}" if hi <= 1 else f">{lo:.0%}" for lo, hi in buckets]
    cells: dict[str, list[str]] = {"n": []} | {name: [] for name in LABELS}
    for lo, hi in buckets:
        sel = fiery & (crops.area >= lo) & (crops.area < hi)
        cells["n"].append(str(int(sel.sum())))
        for k, name in enumerate(LABELS):
            cells[name].append(f"{(pred[sel] == k).mean():.2f}" if sel.any() else "-")
    lines += ["", "fire and start-fire crops by the fire's share of the frame: share predicted as each class",
              "| fire area | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    lines += [f"| {row} | " + " | ".join(vals) + " |" for row, vals in cells.items()]

    lines += ["", "| veto p(no-fire) >= | " + " | ".join(f"{n} crops dropped" for n in LABELS) + " |",
              "|---|" + "---|" * len(LABELS)]
    for v in VETOES:
        dropped = probs[:, NO_FIRE] >= v
        lines.append(f"| {v} | " + " | ".join(f"{dropped[crops.labels == k].mean():.1%}" for k in range(len(LABELS))) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (holds fire/)")
    parser.add_argument("--model", type=Path, default=Path("models/fire-classifier.onnx"))
    parser.add_argument("--cache", type=Path, default=Path("runs/classifier/data"))
    args = parser.parse_args(argv)
    crops = load_or_derive(args.data, "val", args.cache)
    text = breakdown(crops, predict(args.model, crops))
    print(text)
    return text


if __name__ == "__main__":
    main()
