"""Benchmark the fire/smoke detector variants (FP32, INT8, FP16, ...): the table for models/README.md.

Each row: accuracy on val (mAP50, mAP50-95, image-level fire F1, false-positive rate on
fire-free images; via ``training.evaluate`` on a fixed, evenly spaced val subset), latency
of a full ``Detector`` call (letterbox + inference + NMS) on a real val frame at 1 and 2
threads (best of interleaved rounds, each the median of many calls) with its ratio to the
first model (the FP32 baseline) measured in the same run,
file size, and the peak RSS of a fresh process that loads the model and runs it (each
measured in its own subprocess, so one model's memory never counts for another). Latency on a
shared machine is noisy: compare ratios within one run, not across runs.

    python -m bench.models_detector models/fire-detector.onnx models/fire-detector-int8.onnx \\
        models/fire-detector-fp16.onnx [--images 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.help import user_help
from firewatch.paths import MODELS_DIR, REPO_ROOT, data_root
from firewatch.progress import progress_bar

TARGET_FPS = 20.0
# A val frame with fire, full 512 px: the daemon letterboxes camera frames the same way.
LATENCY_IMAGE = "images/val"


@dataclass
class Row:
    name: str
    map50: float
    map50_95: float
    image_fire_f1: float
    fp_rate_fire_free: float | None
    latency_ms_1t: float
    latency_ms_2t: float
    ratio_1t: float
    ratio_2t: float
    fps_1t: float
    fps_2t: float
    size_kb: float
    peak_rss_mb: float
    input_px: int


def machine() -> dict[str, str | int | None]:
    """What the numbers were measured on."""
    import onnxruntime as ort

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni") if f" {f}" in text)
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (None,)
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
        "load_avg_1m": None if load[0] is None else round(load[0], 2),
    }


def latency_image(data_dir: Path) -> Path:
    """A fixed val frame: the first whose label file is non-empty."""
    for image in sorted((data_dir / LATENCY_IMAGE).glob("*.jpg")):
        label = data_dir / "labels" / "val" / f"{image.stem}.txt"
        if label.is_file() and label.read_text().strip():
            return image
    raise FileNotFoundError(f"no labelled val image in {data_dir}")


def measure(model: Path, image: Path, threads: int, runs: int, warmup: int = 10) -> dict[str, float]:
    """In this process: load ``model``, run the daemon's Detector on ``image``; median ms, peak RSS."""
    import time

    import cv2

    from vision.detectors import Detector

    frame = cv2.imread(str(image))
    detector = Detector(model, conf_threshold=0.35, iou_threshold=0.5, threads=threads)
    for _ in range(warmup):
        detector(frame)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        detector(frame)
        times.append((time.perf_counter() - t) * 1000.0)
    return {
        "latency_ms": float(np.median(times)),
        "p90_ms": float(np.percentile(times, 90)),
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """High-water RSS of this process's own memory image, in MiB.

    VmHWM, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over fork + exec, so a child
    started by a big parent (torch imported for the accuracy columns) would report the
    parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure_subprocess(model: Path, image: Path, threads: int, runs: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.models_detector", "--measure", str(model), "--image", str(image),
         "--threads", str(threads), "--runs", str(runs)],
        cwd=REPO_ROOT, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[Row]) -> str:
    head = (
        "| model | input px | mAP50 | mAP50-95 | image fire F1 | FP rate fire-free | ms 1 thr | ms 2 thr "
        "| × FP32 (1/2 thr) | FPS 1/2 thr | size KB | peak RSS MB |\n" + "|---" * 12 + "|"
    )

    def rate(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    return "\n".join([head] + [
        f"| {r.name} | {r.input_px} | {r.map50:.3f} | {r.map50_95:.3f} | {r.image_fire_f1:.3f} | {rate(r.fp_rate_fire_free)} "
        f"| {r.latency_ms_1t:.1f} | {r.latency_ms_2t:.1f} | {r.ratio_1t:.2f} / {r.ratio_2t:.2f} "
        f"| {r.fps_1t:.0f} / {r.fps_2t:.0f} | {r.size_kb:.0f} | {r.peak_rss_mb:.0f} |"
        for r in rows
    ])


def latencies(
    models: list[Path], image: Path, runs: int, rounds: int
) -> dict[Path, dict[int, dict[str, float]]]:
    """Per model and thread count: the best of ``rounds`` interleaved subprocess medians.

    Rounds visit every model in turn, so a burst of load from another process hits one round
    of each model rather than all runs of one; the least-disturbed round is the closest to
    the model's own cost on a shared machine.
    """
    seen: dict[Path, dict[int, list[dict[str, float]]]] = {m: {1: [], 2: []} for m in models}
    with progress_bar("latency", total=rounds * len(models) * 2, unit="run") as bar:
        for _ in range(rounds):
            for path in models:
                for threads in (1, 2):
                    seen[path][threads].append(measure_subprocess(path, image, threads, runs))
                    bar.update(1)
    return {
        path: {t: min(results, key=lambda r: r["latency_ms"]) | {
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results)} for t, results in by_threads.items()}
        for path, by_threads in seen.items()
    }


def main(
    models: list[Path], data_dir: Path | None = None, n_images: int | None = 200, runs: int = 100, rounds: int = 3
) -> dict:
    """Benchmark ``models`` (the first is the baseline); print the table; return it as a dict.

    ``n_images``: evenly spaced val images for the accuracy columns (None: all of val);
    latency: best of ``rounds`` interleaved medians of ``runs`` calls each.
    """
    from training.evaluate import evaluate
    from vision.detectors import input_size

    data_dir = Path(data_dir) if data_dir is not None else data_root() / "fire"
    models = [Path(m) for m in models]
    image = latency_image(data_dir)
    info = machine()
    lat_all = latencies(models, image, runs, rounds)
    base = {t: lat_all[models[0]][t]["latency_ms"] for t in (1, 2)}
    rows: list[Row] = []
    for path in models:
        lat = lat_all[path]
        with progress_bar(f"accuracy {path.stem}", unit="image") as bar:
            report = evaluate(data_dir, path, limit=n_images, threads=2, verbose=False, progress=bar)
        rows.append(Row(
            name=path.stem, map50=report.map50, map50_95=report.map50_95, image_fire_f1=report.image_fire.f1,
            fp_rate_fire_free=report.fp_rate_fire_free.rate,
            latency_ms_1t=round(lat[1]["latency_ms"], 2), latency_ms_2t=round(lat[2]["latency_ms"], 2),
            ratio_1t=round(lat[1]["latency_ms"] / base[1], 2), ratio_2t=round(lat[2]["latency_ms"] / base[2], 2),
            fps_1t=round(1000.0 / lat[1]["latency_ms"], 1), fps_2t=round(1000.0 / lat[2]["latency_ms"], 1),
            size_kb=round(path.stat().st_size / 1024, 1),
            peak_rss_mb=round(max(v["peak_rss_mb"] for v in lat.values()), 1),
            input_px=input_size(path)[0],
        ))
    print(f"machine: {info['cpu']} ({info['cpu_flags']}), {info['usable_cores']}/{info['cores']} cores, "
          f"onnxruntime {info['onnxruntime']}, load avg {info['load_avg_1m']}")
    print(f"accuracy on {n_images or 'all'} val images of {data_dir}; latency: full Detector call on "
          f"{image.name}, best of {rounds} interleaved medians of {runs}")
    print(table(rows))
    lines = []
    for r in rows:
        best = max(r.fps_1t, r.fps_2t)
        verdict = "meets" if best >= TARGET_FPS else "misses"
        lines.append(
            f"{r.name}: {r.fps_1t:.0f} FPS (1 thread) / {r.fps_2t:.0f} FPS (2 threads) at {r.input_px} px — "
            f"{verdict} the {TARGET_FPS:.0f} FPS target on 2 cores"
        )
    if info["load_avg_1m"] and info["usable_cores"] and info["load_avg_1m"] > 0.5 * info["usable_cores"]:
        lines.append(f"warning: load average {info['load_avg_1m']} on {info['usable_cores']} cores: "
                     "the machine was busy, latencies are pessimistic (2 threads most of all)")
    print("\n".join(lines))
    return {"machine": info, "data": str(data_dir), "images": n_images, "latency_image": str(image),
            "runs": runs, "rounds": rounds, "rows": [asdict(r) for r in rows], "summary": lines}


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> dict:
    """``python -m bench.models_detector`` / ``firewatch bench models``."""
    ap = argparse.ArgumentParser(prog=prog, description=user_help(__doc__))
    ap.add_argument("models", type=Path, nargs="*", help="ONNX files, FP32 baseline first")
    ap.add_argument("--data", type=Path, default=None, help="YOLO dataset folder (default $FIREWATCH_DATA/fire)")
    ap.add_argument("--images", type=int, default=200, help="val images for accuracy (0: all)")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure is not None:
        result = measure(args.measure, args.image, args.threads, args.runs)
        print(json.dumps(result))
        return result
    models = args.models or [MODELS_DIR / f"fire-detector{s}.onnx" for s in ("", "-int8", "-fp16")]
    result = main([m for m in models if m.exists()], args.data, args.images or None, args.runs, args.rounds)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    cli()
