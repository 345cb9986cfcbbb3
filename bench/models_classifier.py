"""Benchmark the fire-classifier variants: the table for models/README.md.

Each row: accuracy and per-class F1 on the derived val crops (at the model's input size),
median latency of the model's ``session.run`` on one input at 1 and 2 threads and its ratio
to the baseline, v1's FP32 student (``fire-classifier-v1.onnx``), measured in the same run,
``classify`` end to end, file size, and the peak RSS of a fresh process that loads the model
and classifies (each measured in a subprocess, so one model's memory never counts for
another). Latency on a shared machine is noisy: compare ratios within one run, not across
runs.

    python -m bench.models_classifier [--models models] [--extra runs/classifier/full2] [--runs 500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.help import user_help
from bench.models_detector import peak_rss_mb
from firewatch.paths import MODELS_DIR, REPO_ROOT, SHIPPED_CLASSIFIERS, data_root
from firewatch.progress import progress_bar

BASELINE = SHIPPED_CLASSIFIERS["v1"].name


@dataclass
class Row:
    name: str
    accuracy: float
    f1: dict[str, float]
    latency_ms_1t: float
    latency_ms_2t: float
    ratio_1t: float
    ratio_2t: float
    classify_ms_1t: float  # end to end: resize + normalise + run + softmax
    size_kb: float
    peak_rss_mb: float
    model_rss_mb: float  # peak RSS minus the RSS after imports (python, numpy, cv2, onnxruntime)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _measure(path: Path, threads: int, runs: int) -> dict[str, float]:
    """In this process: load the model, time ``session.run`` on one preprocessed crop and
    ``classify`` end to end ``runs`` times each; medians in ms, peak RSS and the RSS the
    model added over the imports (python, numpy, cv2, onnxruntime)."""
    import time

    from vision.classifier import FireClassifier

    crop = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    before_mb = _rss_mb()
    clf = FireClassifier(path, threads=threads)
    x = {clf.session.get_inputs()[0].name: clf.preprocess(crop)}

    def median_ms(fn) -> float:  # type: ignore[no-untyped-def]
        for _ in range(20):
            fn()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000.0)
        return float(np.median(times))

    model_ms = median_ms(lambda: clf.session.run(None, x))
    classify_ms = median_ms(lambda: clf.classify(crop))
    return {"latency_ms": model_ms, "classify_ms": classify_ms,
            "peak_rss_mb": peak_rss_mb(),
            "model_rss_mb": _rss_mb() - before_mb}


def _measure_subprocess(path: Path, threads: int, runs: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.models_classifier", "--measure", str(path),
         "--threads", str(threads), "--runs", str(runs)],
        cwd=REPO_ROOT, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _val_metrics(path: Path, images: np.ndarray, labels: np.ndarray, progress: Any = None) -> tuple[float, dict]:
    from vision.classifier import LABELS, FireClassifier

    clf = FireClassifier(path, threads=1)
    predicted = []
    for img in images:
        predicted.append(LABELS.index(clf.classify(img).label))
        if progress is not None:
            progress.update(1)
    pred = np.array(predicted)
    f1 = {}
    for i, name in enumerate(LABELS):
        tp = int(((pred == i) & (labels == i)).sum())
        fp = int(((pred == i) & (labels != i)).sum())
        fn = int(((pred != i) & (labels == i)).sum())
        f1[name] = round(2 * tp / max(2 * tp + fp + fn, 1), 3)
    return round(float((pred == labels).mean()), 4), f1


def variants(models_dir: Path, extra_dir: Path | None) -> list[Path]:
    """Committed models first (baseline first), then training by-products if present."""
    paths = sorted(models_dir.glob("fire-classifier*.onnx"), key=lambda p: (p.name != BASELINE, p.name))
    if extra_dir is not None and extra_dir.is_dir():
        paths += sorted(extra_dir.glob("*.onnx"))
    return paths


def bench(models_dir: Path, extra_dir: Path | None = None, runs: int = 300,
          rounds: int = 3) -> list[Row]:
    """Latencies are the minimum over ``rounds`` interleaved subprocess medians: the machine
    is shared, and interleaving keeps a burst of load from landing on one variant only."""
    from training.classifier_data import CropSet, load_or_derive
    from vision.classifier import FireClassifier

    crops_by_size: dict[int, CropSet] = {}

    def val(size: int) -> CropSet:
        # Each model on val crops of its own input size, as it was trained and is served.
        if size not in crops_by_size:
            crops_by_size[size] = load_or_derive(data_root(), "val", REPO_ROOT / "runs" / "classifier" / "data", size)
        return crops_by_size[size]

    paths = variants(models_dir, extra_dir)
    lat: dict[tuple[Path, int], dict[str, float]] = {}
    with progress_bar("latency", total=rounds * len(paths) * 2, unit="run") as bar:
        for _ in range(rounds):
            for path in paths:
                for t in (1, 2):
                    m = _measure_subprocess(path, t, runs)
                    old = lat.setdefault((path, t), m)
                    lat[(path, t)] = {k: min(old[k], m[k]) if "ms" in k else max(old[k], m[k])
                                      for k in m}
                    bar.update(1)
    base = next((p for p in paths if p.name == BASELINE), paths[0])
    rows: list[Row] = []
    for path in paths:
        crops = val(FireClassifier(path).size)
        with progress_bar(f"accuracy {path.stem}", total=len(crops.labels), unit="crop") as bar:
            acc, f1 = _val_metrics(path, crops.images, crops.labels, progress=bar)
        name = path.stem if path.parent == models_dir else f"{path.parent.name}/{path.stem}"
        one, two = lat[(path, 1)], lat[(path, 2)]
        rows.append(Row(
            name, acc, f1, round(one["latency_ms"], 3), round(two["latency_ms"], 3),
            round(one["latency_ms"] / lat[(base, 1)]["latency_ms"], 2),
            round(two["latency_ms"] / lat[(base, 2)]["latency_ms"], 2),
            round(one["classify_ms"], 3),
            round(path.stat().st_size / 1024, 1),
            round(max(one["peak_rss_mb"], two["peak_rss_mb"]), 1),
            round(max(one["model_rss_mb"], two["model_rss_mb"]), 1),
        ))
    return rows


def table(rows: list[Row]) -> str:
    head = ("| model | val acc | F1 fire | F1 start-fire | F1 no-fire | run ms 1 thr | run ms 2 thr "
            "| × FP32 (1/2 thr) | classify ms 1 thr | size KB | peak RSS MB (+model) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head] + [
        f"| {r.name} | {r.accuracy:.3f} | {r.f1['fire']:.3f} | {r.f1['start-fire']:.3f} "
        f"| {r.f1['no-fire']:.3f} | {r.latency_ms_1t:.3f} | {r.latency_ms_2t:.3f} "
        f"| {r.ratio_1t:.2f} / {r.ratio_2t:.2f} | {r.classify_ms_1t:.3f} | {r.size_kb:.0f} | {r.peak_rss_mb:.0f} ({r.model_rss_mb:.1f}) |"
        for r in rows
    ]
    return "\n".join(lines)


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> list[dict] | dict:
    """``python -m bench.models_classifier`` / ``firewatch bench classifier``: print the
    Markdown table; return the rows as JSON-able dicts."""
    ap = argparse.ArgumentParser(prog=prog, description=user_help(__doc__))
    ap.add_argument("--models", type=Path, default=MODELS_DIR)
    ap.add_argument("--extra", type=Path, default=REPO_ROOT / "runs" / "classifier" / "full2")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure is not None:
        result = _measure(args.measure, args.threads, args.runs)
        print(json.dumps(result))
        return result
    rows = bench(args.models, args.extra, args.runs, args.rounds)
    print(table(rows))
    return [asdict(r) for r in rows]


if __name__ == "__main__":
    cli()
