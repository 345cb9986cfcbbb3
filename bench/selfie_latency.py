"""Selfie decision latency: photo bytes -> decode -> detect -> encode -> match.

Run: ``python -m bench.selfie_latency [--runs 7]`` (data from $FIREWATCH_DATA).
Target: <= 0.5 s at 640x480 on 2 cores. Photos are a real face (obama.jpg from
faces/face_recognition) letterboxed onto a 4:3 grey canvas and saved as JPEG q90, i.e.
what a phone would send; the match is against 20 templates, as for a small team.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from bench.help import user_help
from firewatch.paths import data_root
from vision.faces import FaceEncoder, FaceStatus, best_match

FACE_PHOTO = Path("faces/face_recognition/examples/knn_examples/train/obama/obama.jpg")
SIZES = {"640x480": (640, 480), "12MP 4000x3000": (4000, 3000)}
TEMPLATES = 20


def letterboxed_jpeg(photo: Path, size: tuple[int, int]) -> bytes:
    """The photo scaled to fit ``size`` (aspect kept), centred on grey, as JPEG bytes."""
    face = Image.open(photo).convert("RGB")
    scale = min(size[0] / face.width, size[1] / face.height)
    face = face.resize((round(face.width * scale), round(face.height * scale)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, (128, 128, 128))
    canvas.paste(face, ((size[0] - face.width) // 2, (size[1] - face.height) // 2))
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def measure(encoder: FaceEncoder, data: bytes, templates: np.ndarray, runs: int) -> dict[str, float]:
    """Median seconds per stage over ``runs`` (after one warm-up call)."""
    encoder.encode(data)
    samples: dict[str, list[float]] = {"decode": [], "detect": [], "encode": [], "match": [], "total": []}
    for _ in range(runs):
        started = time.perf_counter()
        result = encoder.encode(data)
        if result.status is not FaceStatus.OK:
            raise RuntimeError(f"benchmark photo not usable: {result.status}")
        match_started = time.perf_counter()
        best_match(templates, result.encoding, threshold=0.5)
        finished = time.perf_counter()
        samples["decode"].append(result.decode_s)
        samples["detect"].append(result.detect_s)
        samples["encode"].append(result.encode_s)
        samples["match"].append(finished - match_started)
        samples["total"].append(finished - started)
    return {stage: statistics.median(values) for stage, values in samples.items()}


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> dict:
    """``python -m bench.selfie_latency`` / ``firewatch bench selfie``: print the table and
    the report as JSON; return the report."""
    parser = argparse.ArgumentParser(prog=prog, description=user_help(__doc__))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--data", type=Path, default=data_root())
    args = parser.parse_args(argv)

    started = time.perf_counter()
    encoder = FaceEncoder()
    load_s = time.perf_counter() - started
    templates = np.random.default_rng(0).normal(0.0, 0.1, size=(TEMPLATES, 128))

    report: dict = {
        "runs": args.runs,
        "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
        "model_load_s": round(load_s, 3),
        "sizes": {},
    }
    for label, size in SIZES.items():
        data = letterboxed_jpeg(args.data / FACE_PHOTO, size)
        stages = measure(encoder, data, templates, args.runs)
        report["sizes"][label] = {"bytes": len(data), **{k: round(v, 4) for k, v in stages.items()}}

    print(f"model load {load_s:.2f} s; {os.cpu_count()} CPUs, 1-min load average {report['load_avg_1min']:.2f}")
    print(f"{'photo':<16}{'decode':>9}{'detect':>9}{'encode':>9}{'match':>9}{'total':>9}   (median s)")
    for label, row in report["sizes"].items():
        cells = "".join(f"{row[k]:>9.3f}" for k in ("decode", "detect", "encode", "match", "total"))
        print(f"{label:<16}{cells}")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    cli()
