"""Train detector v2 in one timed shot on a lent GPU machine, then export it.

Run by ``training/gpu_job.sh`` there (and by its CPU test here). Everything it needs is in
the working tree and the bundle of ``training/gpu_bundle.py``; it writes to ``--out``:
``weights-fp16.pt`` (weights only, to resume from or fine-tune), ``fire-detector.onnx``,
``results.csv`` and ``train.log``-worthy output on stdout.

Two things ultralytics would fetch from the network are replaced, because that machine
reaches nothing: the AMP self-check (it downloads a model to compare against; on a
current NVIDIA GPU mixed precision is known to work, so it is switched on directly) and
polars, which ultralytics only uses here to read its own results.csv back (55 MB of
wheels that would not fit in the bundle: the CSV is read with the standard library).
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import sys
from pathlib import Path

from training import detector


def _results_without_polars(trainer) -> dict:  # type: ignore[no-untyped-def]
    """What ultralytics' ``read_results_csv`` returns, read with the csv module."""
    try:
        rows = list(csv.DictReader(io.StringIO(trainer.csv.read_text())))
    except OSError:
        return {}
    return {key.strip(): [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}


def _offline_patches(amp: bool) -> None:
    import importlib.util

    from ultralytics.engine import trainer as engine

    if importlib.util.find_spec("polars") is None:
        engine.BaseTrainer.read_results_csv = _results_without_polars
    engine.check_amp = lambda model: amp


def train(data: Path, out: Path, *, epochs: int, hours: float | None, imgsz: int, batch: int, workers: int,
          device: str, weights: Path | None, freeze: int | None, lr0: float | None,
          fire_only: list[Path] | None = None) -> Path:
    """One run from ``weights`` (else the ImageNet-initialised v2 architecture); returns the ONNX path."""
    YOLO = detector.ultralytics_yolo()
    gpu = device not in ("cpu", "")
    _offline_patches(amp=gpu)
    runs = out / "runs"
    source = str(weights) if weights is not None else str(detector.model_yaml("lite0", runs / "configs"))
    model = YOLO(source)
    args = detector.train_args(imgsz=imgsz, batch=batch, workers=workers, device=device, fraction=1.0, seed=0)
    args |= dict(amp=gpu, deterministic=not gpu, cache="ram", project=str(runs), name="v2", epochs=epochs)
    if hours:
        args["time"] = hours  # ultralytics fits the schedule (and its LR decay) into this time
    if freeze is not None:
        args["freeze"] = freeze
    if lr0 is not None:
        args |= dict(optimizer="AdamW", lr0=lr0)
    if weights is not None:
        args["pretrained"] = True
    model.train(data=str(detector.data_yaml(data, runs, fire_only or ())), trainer=detector.trainer_for("lite0"), **args)
    run_dir = runs / "v2"
    best = run_dir / "weights" / "best.pt"
    best = best if best.exists() else run_dir / "weights" / "last.pt"
    save_weights_fp16(best, out / "weights-fp16.pt")
    shutil.copyfile(run_dir / "results.csv", out / "results.csv")
    return detector.export_detector(best, out / "fire-detector.onnx", imgsz=imgsz)


def save_weights_fp16(checkpoint: Path, target: Path) -> Path:
    """A checkpoint reduced to its fp16 model: what a fine-tune or an export needs, a third of the size."""
    import torch

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = detector.checkpoint_weights(ckpt).half()
    slim = {"model": model, "train_args": ckpt.get("train_args", {}), "epoch": -1, "date": ckpt.get("date")}
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the bundle's YOLO dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for weights, ONNX and results")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--hours", type=float, default=None, help="wall-time budget; overrides --epochs (0: train --epochs)")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--device", default="0")
    parser.add_argument("--weights", type=Path, default=None, help="start from this .pt instead of ImageNet")
    parser.add_argument("--freeze", type=int, default=None)
    parser.add_argument("--lr0", type=float, default=None)
    parser.add_argument("--fire-only", type=Path, action="append", default=[],
                        help="a YOLO folder whose smoke is not labelled (the bundle's fire-extra); repeatable")
    args = parser.parse_args(argv)
    onnx = train(args.data, args.out, epochs=args.epochs, hours=args.hours, imgsz=args.imgsz, batch=args.batch,
                 workers=args.workers, device=args.device, weights=args.weights, freeze=args.freeze, lr0=args.lr0,
                 fire_only=args.fire_only)
    print(f"wrote {onnx}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
