"""Classifier v2: the pretrained EfficientNet-Lite0 fine-tuned on larger crops, and the small
student distilled from it.

The teacher is Lite0's ImageNet backbone (training.lite0) + global-average pooling + one linear
layer, so its ONNX export has the same contract as v1's (``logits`` + the last feature map,
the head in the metadata, ImageNet mean/std): vision.classifier runs it and builds an exact
CAM unchanged. The crops, the training loop, the metrics and the export are training.classifier's.

Then the v1 student (FireNet, 64 px) is trained twice with v1's budget and seed: plain
cross-entropy and with the Lite0 teacher's soft targets. The teacher is too slow to run on
every student batch on a CPU, so its logits are computed once per train crop (the mean over
the crop and its mirror image) and the student is distilled from those.

    python -m training.classifier_v2 --data $FIREWATCH_DATA --out runs/classifier-v2/full \
        --kd-alpha 0.7 0.3 --report models/report/classifier-v2

Every stage is saved when done and the teacher after every epoch: rerunning the command
resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from firewatch.paths import SHIPPED_CLASSIFIER, SHIPPED_CLASSIFIERS
from training.classifier import (
    MEAN,
    STD,
    STUDENT,
    FireNet,
    TrainConfig,
    TrainReport,
    export_onnx,
    metrics_from,
    n_params,
    predict_logits,
    train,
)
from training.classifier_breakdown import breakdown, predict
from training.classifier_data import CropSet, load_or_derive
from training.lite0 import STAGE_WIDTHS, Lite0Stages
from training.onnx_tools import fp16_storage
from vision.classifier import LABELS, softmax

log = logging.getLogger(__name__)

TEACHER_SIZE = 128
STUDENT_SIZE = 64
# Stem and the 16- and 24-wide stages (strides 2 and 4) stay at their ImageNet weights:
# they hold most of the activations, so freezing them saves most of the backward pass.
FROZEN_STAGES = 3
TEACHER_LR = 1e-3  # fine-tuning: v1's 3e-3 from scratch would wash out the pretrained weights
KD_ALPHA = TrainConfig.kd_alpha  # v1's recipe; other weights of the KL term are extra runs


class ImagenetToTf(nn.Module):
    """ImageNet-normalised RGB (what vision.classifier feeds) to the (x·255 − 127) / 128
    range the TensorFlow-trained Lite0 weights expect: one per-channel affine map."""

    def __init__(self) -> None:
        super().__init__()
        std, mean = torch.tensor(STD).view(1, 3, 1, 1), torch.tensor(MEAN).view(1, 3, 1, 1)
        self.register_buffer("scale", std * 255.0 / 128.0)
        self.register_buffer("shift", (mean * 255.0 - 127.0) / 128.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class Lite0Classifier(nn.Module):
    """Lite0 backbone (last map: 320 channels at 1/32), global-average pool, linear.

    ``features`` and ``head`` are named as in FireNet, so training.classifier's export
    writes the same two outputs and metadata. The first ``frozen`` children of
    ``features`` keep their weights and their batch-norm statistics.
    """

    def __init__(self, pretrained: bool = True, frozen: int = FROZEN_STAGES) -> None:
        super().__init__()
        self.features = Lite0Stages(pretrained).features
        self.features[0][0] = ImagenetToTf()  # replaces the detector's 0–1 input scaling
        self.head = nn.Linear(STAGE_WIDTHS[-1], len(LABELS))
        self.frozen = frozen
        for p in self.features[:frozen].parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))

    def train(self, mode: bool = True) -> "Lite0Classifier":
        super().train(mode)
        self.features[:self.frozen].eval()
        return self


def stratified_subset(data: CropSet, fraction: float, seed: int) -> CropSet:
    """``fraction`` of every class, drawn at random (the teacher's time budget)."""
    if fraction >= 1.0:
        return data
    rng = np.random.default_rng(seed)
    keep = []
    for k in range(len(LABELS)):
        members = np.flatnonzero(data.labels == k)
        keep.append(rng.permutation(members)[: max(1, round(fraction * len(members)))])
    return data.subset(np.sort(np.concatenate(keep)))


def soft_targets(model: nn.Module, data: CropSet) -> np.ndarray:
    """(N, 3) logits, the mean over each crop and its mirror image (the student trains
    with flips, so its targets should not depend on the side the fire is on)."""
    return (predict_logits(model, data.images) + predict_logits(model, data.images[:, :, ::-1])) / 2


def _aligned(a: CropSet, b: CropSet) -> bool:
    """Crops derived at two sizes are the same samples in the same order."""
    return bool(len(a) == len(b) and (a.labels == b.labels).all() and (a.source == b.source).all()
                and (a.kind == b.kind).all())


def run_v2(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    size: int = TEACHER_SIZE,
    teacher_epochs: float = 3.0,
    teacher_fraction: float = 0.7,
    student_epochs: float = 10.0,
    kd_alphas: Sequence[float] = (KD_ALPHA,),
    frozen: int = FROZEN_STAGES,
    limit: int | None = None,
    seed: int = 0,
    detector: Path | None = None,
    extra: Sequence[str] = (),
    students: bool = True,
) -> TrainReport:
    """Train the Lite0 teacher at ``size`` on a stratified ``teacher_fraction`` of the train
    crops, then the 64 px student with plain CE and with the teacher's soft targets (all train
    crops, v1's budget; one distilled student per ``kd_alphas``); evaluate all on val, export
    ONNX, write ``metrics.json`` and the breakdown tables (``breakdown-<model>.md``) in ``out_dir``.
    ``detector`` adds its fire boxes on the train images as crops (training.classifier_data's
    proposals: the veto's hard negatives) and ``extra`` more YOLO folders' train images (e.g.
    "fire-extra"); without ``students`` only the teacher is trained."""
    torch.set_num_threads(1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = out.parent / "data" if limit is None else out / "data"
    data_dir = Path(data_dir)
    big = {s: load_or_derive(data_dir, s, cache, size, limit, seed, detector, extra) for s in ("train", "val")}
    small = ({s: load_or_derive(data_dir, s, cache, STUDENT_SIZE, limit, seed, detector, extra) for s in ("train", "val")}
             if students else big)
    if not all(_aligned(big[s], small[s]) for s in big):
        raise RuntimeError(f"the {size} px and {STUDENT_SIZE} px crops differ: delete {cache} and rerun")
    metrics_path = out / "metrics.json"
    report = TrainReport()
    if metrics_path.exists():
        saved = json.loads(metrics_path.read_text())
        for key in ("params", "train_seconds", "onnx"):
            getattr(report, key).update(saved[key])

    def finish(name: str, model: nn.Module, val: CropSet, t0: float | None) -> None:
        if t0 is not None:
            report.train_seconds[name] = round(time.monotonic() - t0, 1)
        logits = predict_logits(model, val.images)
        report.metrics[name] = metrics_from(logits.argmax(1), val.labels)
        report.params[name] = n_params(model)
        report.onnx[name] = str(export_onnx(model, out / f"{name}.onnx", val.images.shape[1]))
        (out / f"breakdown-{name}.md").write_text(breakdown(val, softmax(logits)) + "\n")
        metrics_path.write_text(json.dumps(report.to_json(), indent=2))
        log.info("%s: %s", name, report.metrics[name])

    teacher = Lite0Classifier(frozen=frozen)
    weights = out / "lite0-teacher.pt"
    if weights.exists():
        teacher.load_state_dict(torch.load(weights))
        t0 = None
    else:
        subset = stratified_subset(big["train"], teacher_fraction, seed)
        log.info("teacher: %d of %d train crops, %d px", len(subset), len(big["train"]), size)
        t0 = time.monotonic() - report.train_seconds.get("lite0-teacher", 0.0)
        train(teacher, subset, TrainConfig(epochs=teacher_epochs, lr=TEACHER_LR, seed=seed),
              checkpoint=out / "lite0-teacher.ckpt")
        torch.save(teacher.state_dict(), weights)
    finish("lite0-teacher", teacher, big["val"], t0)
    if not students:
        report.chosen = "lite0-teacher"
        metrics_path.write_text(json.dumps(report.to_json(), indent=2))
        return report

    targets_path = out / "lite0-teacher-train-logits.npy"
    if not targets_path.exists():
        np.save(targets_path, soft_targets(teacher, big["train"]))
    targets = np.load(targets_path)

    runs = [("student", None, KD_ALPHA)] + [
        ("student-kd-lite0" + ("" if a == KD_ALPHA else f"-a{a:g}"), targets, a) for a in kd_alphas]
    for name, kd, alpha in runs:
        torch.manual_seed(seed)
        student = FireNet(**STUDENT)
        weights = out / f"{name}.pt"
        t0 = None
        if weights.exists():
            student.load_state_dict(torch.load(weights))
        else:
            t0 = time.monotonic()
            cfg = TrainConfig(epochs=student_epochs, seed=seed, kd_alpha=alpha)
            train(student, small["train"], cfg, teacher_logits=kd, checkpoint=out / f"{name}.ckpt")
            torch.save(student.state_dict(), weights)
        finish(name, student, small["val"], t0)
    report.chosen = max((name for name, _, _ in runs), key=lambda n: report.metrics[n].macro_f1)
    metrics_path.write_text(json.dumps(report.to_json(), indent=2))
    return report


def write_report(run_dir: Path, report_dir: Path, val: CropSet, baseline: Path) -> dict:
    """``report_dir/metrics.json``: the run's metrics, params and ONNX sizes next to the
    shipped classifier (``baseline``) scored on ``val`` (the run's 64 px val crops); the
    breakdown tables copied alongside."""
    run = json.loads((run_dir / "metrics.json").read_text())
    probs = predict(baseline, val)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / f"breakdown-{baseline.stem}.md").write_text(breakdown(val, probs) + "\n")
    run["metrics"][baseline.stem] = asdict(metrics_from(probs.argmax(1), val.labels))
    run["onnx_kb"] = {name: round(Path(path).stat().st_size / 1024, 1) for name, path in run["onnx"].items()}
    run["onnx_kb"][baseline.stem] = round(baseline.stat().st_size / 1024, 1)
    for md in run_dir.glob("breakdown-*.md"):
        (report_dir / md.name).write_text(md.read_text())
    (report_dir / "metrics.json").write_text(json.dumps(run, indent=2))
    return run


def main(argv: Sequence[str] | None = None) -> TrainReport:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the shared data folder (holds fire/)")
    ap.add_argument("--out", type=Path, default=Path("runs/classifier-v2/full"))
    ap.add_argument("--size", type=int, default=TEACHER_SIZE)
    ap.add_argument("--teacher-epochs", type=float, default=3.0)
    ap.add_argument("--teacher-fraction", type=float, default=0.7)
    ap.add_argument("--student-epochs", type=float, default=10.0)
    ap.add_argument("--kd-alpha", type=float, nargs="+", default=[KD_ALPHA],
                    help="weight of the KL term, one student per value")
    ap.add_argument("--frozen", type=int, default=FROZEN_STAGES)
    ap.add_argument("--detector", type=Path,
                    help="add this detector's fire boxes on train images as crops (the veto's hard negatives)")
    ap.add_argument("--extra", action="append", default=[],
                    help="another YOLO folder under --data whose train images add crops, e.g. fire-extra; repeatable")
    ap.add_argument("--teacher-only", action="store_true", help="train the Lite0 teacher only, no students")
    ap.add_argument("--report", type=Path, help="also write the comparison with --baseline here")
    ap.add_argument("--baseline", type=Path, default=SHIPPED_CLASSIFIERS["v1"])
    ap.add_argument("--models-dir", type=Path,
                    help="also write the teacher here as fire-classifier.onnx, weights stored as float16")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    report = run_v2(args.data, args.out, size=args.size, teacher_epochs=args.teacher_epochs,
                    teacher_fraction=args.teacher_fraction, student_epochs=args.student_epochs,
                    kd_alphas=args.kd_alpha, frozen=args.frozen,
                    detector=args.detector, extra=args.extra, students=not args.teacher_only)
    for name, m in report.metrics.items():
        print(name, json.dumps(asdict(m)))
    if args.report is not None:
        val = load_or_derive(args.data, "val", args.out.parent / "data", STUDENT_SIZE)
        write_report(args.out, args.report, val, args.baseline)
    if args.models_dir is not None:
        print(fp16_storage(args.out / "lite0-teacher.onnx", args.models_dir / SHIPPED_CLASSIFIER.name))
    return report


if __name__ == "__main__":
    main()
