"""Compare detector sizes (scales of training/configs/fire-detector.yaml) side by side.

Accuracy comes from each run's per-epoch val metrics (ultralytics' results.csv, committed in
training/checkpoints/): at equal epochs of the same 100-epoch schedule, so the learning rate
and augmentation are the same for both. Cost is measured here, in one process and one run:
parameters and GFLOPs of the graph, ONNX latency of a full ``Detector`` call at 1 and 2
threads (interleaved subprocess rounds, as in bench.models_detector), and training time per
image (forward + backward of a batch of 16 at 320 px, interleaved). Latency and training cost
depend on the graph, not the weights, so untrained exports are timed.

    python -m training.compare_sizes [--scales p n] [--epochs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from training.detector import CHECKPOINTS, SCALES, export_untrained, model_yaml


@dataclass
class SizeRow:
    scale: str
    params_m: float
    gflops: float
    map50_by_epoch: dict[int, float]
    latency_ms_1t: float
    latency_ms_2t: float
    train_s_per_image: float


def val_map50(scale: str, checkpoints: Path = CHECKPOINTS) -> dict[int, float]:
    """Epoch -> val mAP50 (fire + smoke) from the run's committed results.csv."""
    path = checkpoints / f"fire-detector-{scale}-results.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        rows = [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]
    return {int(r["epoch"]): float(r["metrics/mAP50(B)"]) for r in rows}


def graph_cost(scale: str, work: Path) -> tuple[float, float]:
    """(millions of parameters, GFLOPs at 320 px) of a freshly built model of ``scale``."""
    from training import offline

    offline.prepare()
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops

    model = YOLO(str(model_yaml(scale, work))).model
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return params, get_flops(model, 320)


def train_seconds_per_image(scales: list[str], work: Path, rounds: int = 3, batch: int = 16) -> dict[str, float]:
    """Forward + backward time per image, the bulk of a CPU training step, best of interleaved rounds."""
    import torch

    from training import offline

    offline.prepare()
    from ultralytics import YOLO

    torch.manual_seed(0)
    models = {s: YOLO(str(model_yaml(s, work))).model.train() for s in scales}
    images = torch.rand(batch, 3, 320, 320)
    best = {s: float("inf") for s in scales}
    for _ in range(rounds):
        for scale, model in models.items():
            start = time.perf_counter()
            sum(t.float().mean() for t in _tensors(model(images))).backward()
            model.zero_grad(set_to_none=True)
            best[scale] = min(best[scale], (time.perf_counter() - start) / batch)
    return best


def _tensors(output: object) -> list:
    """Every tensor in a head's output (a tensor, or lists / dicts of them, by version)."""
    if isinstance(output, dict):
        return [t for v in output.values() for t in _tensors(v)]
    if isinstance(output, (list, tuple)):
        return [t for v in output for t in _tensors(v)]
    return [output] if hasattr(output, "backward") else []


def compare(scales: list[str], runs: int = 50, rounds: int = 2) -> list[SizeRow]:
    from bench.models_detector import latencies, latency_image
    from firewatch.paths import data_root

    with tempfile.TemporaryDirectory(prefix="compare-sizes-") as tmp:
        work = Path(tmp)
        onnx = {s: export_untrained(work / f"fire-detector-{s}.onnx", scale=s) for s in scales}
        timed = latencies(list(onnx.values()), latency_image(data_root() / "fire"), runs, rounds)
        train_cost = train_seconds_per_image(scales, work)
        rows = []
        for scale in scales:
            params, gflops = graph_cost(scale, work)
            rows.append(SizeRow(
                scale, round(params, 3), round(gflops, 2), val_map50(scale),
                round(timed[onnx[scale]][1]["latency_ms"], 2), round(timed[onnx[scale]][2]["latency_ms"], 2),
                round(train_cost[scale], 4),
            ))
    return rows


def table(rows: list[SizeRow], epochs: int) -> str:
    common = sorted(set.intersection(*(set(r.map50_by_epoch) for r in rows)))
    shown = [e for e in common if e <= epochs]
    head = ("| scale | params (M) | GFLOPs | ms/frame 1 thr | ms/frame 2 thr | train s/image | "
            + " | ".join(f"mAP50 @ep{e}" for e in shown) + " |")
    lines = [head, "|---" * (6 + len(shown)) + "|"]
    base = rows[0]
    for r in rows:
        cells = [r.scale, f"{r.params_m:.2f}", f"{r.gflops:.2f}",
                 f"{r.latency_ms_1t:.1f} ({r.latency_ms_1t / base.latency_ms_1t:.2f}×)",
                 f"{r.latency_ms_2t:.1f} ({r.latency_ms_2t / base.latency_ms_2t:.2f}×)",
                 f"{r.train_s_per_image:.3f} ({r.train_s_per_image / base.train_s_per_image:.2f}×)"]
        cells += [f"{r.map50_by_epoch[e]:.3f}" for e in shown]
        lines.append("| " + " | ".join(cells) + " |")
    if shown:
        last = shown[-1]
        gains = [f"{r.scale} {statistics.mean(r.map50_by_epoch[e] for e in shown[-3:]):.3f}" for r in rows]
        lines.append(f"\nmean val mAP50 over epochs {shown[-3:][0]}-{last}: " + ", ".join(gains))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", nargs="+", default=list(SCALES), choices=SCALES)
    parser.add_argument("--epochs", type=int, default=5, help="compare val mAP50 up to this epoch")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = compare(args.scales, args.runs, args.rounds)
    print(table(rows, args.epochs))
    result = {"rows": [asdict(r) for r in rows], "epochs": args.epochs}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
