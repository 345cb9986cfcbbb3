"""Train the fire / start-fire / no-fire classifier, distil it, and export it to ONNX.

``train_all`` is the one reproducible command: derive crops (training.classifier_data), train
a teacher, train the student twice with the same budget and seed -- plain cross-entropy and
with knowledge distillation from the teacher -- prune the better student with torch-pruning
and fine-tune it, export every model to ONNX (logits + last feature map, linear head in the
metadata for the CAM) and write ``metrics.json``. Compression lives in compress_classifier.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from firewatch.paths import SHIPPED_CLASSIFIERS
from training import compress_classifier, onnx_tools
from training.classifier_data import CropSet, load_or_derive
from vision.classifier import LABELS
from vision.crops import CONTEXT_MARGIN, MIN_WINDOW
from vision.types import START_FIRE_MAX_AREA

log = logging.getLogger(__name__)

MEAN = (0.485, 0.456, 0.406)  # RGB, ImageNet statistics
STD = (0.229, 0.224, 0.225)
TEACHER = dict(widths=(24, 48, 96), depth=2)
STUDENT = dict(widths=(16, 32, 48), depth=1)


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class FireNet(nn.Module):
    """Plain CNN: 3 stages (stride 2 conv + ``depth`` convs), global-average pool, linear.

    GAP + one linear layer keeps the class-activation map exact. Input (N, 3, S, S)
    normalised RGB; features (N, C, S/8, S/8); logits (N, 3).
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 48), depth: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for w in widths:
            layers.append(_conv(cin, w, 2))
            layers += [_conv(w, w, 1) for _ in range(depth)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, len(LABELS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class _WithFeatures(nn.Module):
    """Export wrapper: (logits, features) so the runtime can build the CAM."""

    def __init__(self, net: FireNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.net.features(x)
        return self.net.head(f.mean(dim=(2, 3))), f


def to_tensor(images_bgr: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 BGR -> (N, 3, S, S) normalised RGB, as vision.classifier does."""
    x = torch.from_numpy(np.ascontiguousarray(images_bgr[..., ::-1])).permute(0, 3, 1, 2)
    x = x.float() / 255.0
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Flip, shift by up to 4 px, brightness/contrast jitter; no hue change (colour is the cue)."""
    n = x.shape[0]
    flip = torch.rand(n, generator=g) < 0.5
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    dx, dy = (int(v) for v in torch.randint(-4, 5, (2,), generator=g))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    scale = 1.0 + 0.4 * (torch.rand(n, 1, 1, 1, generator=g) - 0.5)
    shift = 0.4 * (torch.rand(n, 1, 1, 1, generator=g) - 0.5)
    return x * scale + shift


@dataclass
class Metrics:
    """Validation metrics; ``confusion[i][j]`` counts true class i predicted as j."""

    accuracy: float
    f1: dict[str, float]
    macro_f1: float
    confusion: list[list[int]]
    n: int


def metrics_from(pred: np.ndarray, true: np.ndarray) -> Metrics:
    k = len(LABELS)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (true, pred), 1)
    f1 = {}
    for i, name in enumerate(LABELS):
        tp, fp, fn = cm[i, i], cm[:, i].sum() - cm[i, i], cm[i, :].sum() - cm[i, i]
        f1[name] = float(2 * tp / max(2 * tp + fp + fn, 1))
    return Metrics(float(np.trace(cm) / max(cm.sum(), 1)), f1, float(np.mean(list(f1.values()))),
                   cm.tolist(), int(cm.sum()))


@torch.no_grad()
def predict_logits(model: nn.Module, images: np.ndarray, batch: int = 256) -> np.ndarray:
    model.eval()
    out = [model(to_tensor(images[i:i + batch])) for i in range(0, len(images), batch)]
    return torch.cat(out).numpy()


def evaluate(model: nn.Module, data: CropSet) -> Metrics:
    return metrics_from(predict_logits(model, data.images).argmax(1), data.labels)


@dataclass(frozen=True)
class TrainConfig:
    """One training run's budget: ``epochs`` over the train crops, batch, LR (cosine)."""

    epochs: float = 6.0
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    seed: int = 0
    kd_temperature: float = 4.0
    kd_alpha: float = 0.7  # weight of the KL term; 1 - alpha on the hard-label CE


def train(
    model: nn.Module, data: CropSet, cfg: TrainConfig, teacher: nn.Module | None = None,
    *, teacher_logits: np.ndarray | None = None, checkpoint: Path | None = None,
) -> nn.Module:
    """Train in place; with ``teacher``: alpha * T^2 * KL(student/T || teacher/T) + (1-alpha) * CE.

    ``teacher_logits`` (N, 3), aligned with ``data``, replace ``teacher``'s output when the
    teacher is too slow to run on every batch (it then sees the crops unaugmented).
    ``checkpoint``: the state is saved there after every epoch and a run resumes from it.
    """
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    # Square-root inverse-frequency weights: full inverse weights made start-fire (9 % of
    # the crops) the most predicted class on fire and no-fire crops alike.
    counts = np.bincount(data.labels, minlength=len(LABELS)).astype(np.float64)
    weight = np.sqrt(counts.sum() / np.maximum(counts, 1))
    weight = torch.tensor(weight / weight.mean(), dtype=torch.float32)
    steps = max(1, math.ceil(cfg.epochs * len(data) / cfg.batch))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.15)
    labels = torch.from_numpy(data.labels)
    if teacher is not None:
        teacher.eval()
    soft_source = None if teacher_logits is None else torch.as_tensor(teacher_logits).float()
    t0, step, order = time.monotonic(), 0, torch.empty(0, dtype=torch.long)
    per_epoch = max(1, math.ceil(len(data) / cfg.batch))
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        g.set_state(state["generator"])
        step, order = state["step"], state["order"]
        log.info("resumed %s at step %d/%d", checkpoint, step, steps)
    model.train()
    while step < steps:
        if len(order) < cfg.batch:
            order = torch.cat([order, torch.randperm(len(data), generator=g)])
        idx, order = order[: cfg.batch], order[cfg.batch:]
        x = _augment(to_tensor(data.images[idx.numpy()]), g)
        y = labels[idx]
        logits = model(x)
        loss = F.cross_entropy(logits, y, weight=weight)
        if teacher is not None or soft_source is not None:
            with torch.no_grad():
                t_logits = teacher(x) if teacher is not None else soft_source[idx]
                soft = F.softmax(t_logits / cfg.kd_temperature, dim=1)
            kl = F.kl_div(F.log_softmax(logits / cfg.kd_temperature, dim=1), soft,
                          reduction="batchmean")
            loss = cfg.kd_alpha * cfg.kd_temperature**2 * kl + (1 - cfg.kd_alpha) * loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        if step % 100 == 0 or step == steps:
            log.info("step %d/%d loss %.3f (%.0f s)", step, steps, loss.item(),
                     time.monotonic() - t0)
        if checkpoint is not None and (step % per_epoch == 0 or step == steps):
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "generator": g.get_state(),
                        "step": step, "order": order}, tmp)
            tmp.replace(checkpoint)
    model.eval()
    return model


def export_onnx(model: FireNet, path: Path, size: int, extra: dict[str, str] | None = None) -> Path:
    """ONNX with outputs ``logits`` and ``features``; class names, input size, mean/std and
    the linear head (for the CAM) in metadata_props."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    torch.onnx.export(
        _WithFeatures(model), torch.zeros(1, 3, size, size), str(path), dynamo=False,
        input_names=["images"], output_names=["logits", "features"], opset_version=17,
        dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}, "features": {0: "n"}},
    )
    proto = onnx.load(str(path))
    meta = {
        "class_names": json.dumps(list(LABELS)),
        "input_size": str(size),
        "mean": json.dumps(list(MEAN)),
        "std": json.dumps(list(STD)),
        "color": "RGB; resize whole crop to input_size (INTER_AREA), /255, (x-mean)/std",
        "head_weight": json.dumps(model.head.weight.detach().numpy().round(6).tolist()),
        "head_bias": json.dumps(model.head.bias.detach().numpy().round(6).tolist()),
        "crop_rule": f"box + {CONTEXT_MARGIN:.0%} margin, >= {MIN_WINDOW} x sqrt(H*W), square",
        "start_fire_max_area": str(START_FIRE_MAX_AREA),
        **(extra or {}),
    }
    onnx_tools.set_metadata(proto, meta)
    onnx.save(proto, str(path))
    return path


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class TrainReport:
    """What ``train_all`` produced: val metrics per model and the ONNX files in ``out_dir``."""

    metrics: dict[str, Metrics] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    onnx: dict[str, str] = field(default_factory=dict)
    agreement: dict[str, dict[str, float]] = field(default_factory=dict)
    chosen: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def train_all(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    size: int = 64,
    teacher_epochs: float = 10.0,
    student_epochs: float = 10.0,
    finetune_epochs: float = 3.0,
    prune_ratio: float = 0.5,
    limit: int | None = None,
    seed: int = 0,
    models_dir: str | Path | None = None,
    detector: str | Path | None = None,
) -> TrainReport:
    """Derive data, train teacher / student / student+KD / pruned student, export, compress.

    ``limit`` takes that many images per split (smoke tests). ``models_dir``, when given,
    receives ``fire-classifier-v1.onnx``: the better student (val macro F1, with or without KD).
    ``detector`` (the detector's ONNX) adds its proposals to the train crops: the veto's hard
    negatives (training.classifier_data).
    """
    torch.set_num_threads(1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "data"
    train_set = load_or_derive(Path(data_dir), "train", cache, size, limit, seed,
                               Path(detector) if detector is not None else None)
    val_set = load_or_derive(Path(data_dir), "val", cache, size, limit, seed)
    report = TrainReport()

    def run(name: str, model: FireNet, epochs: float, teacher: nn.Module | None = None) -> FireNet:
        t0 = time.monotonic()
        train(model, train_set, TrainConfig(epochs=epochs, seed=seed), teacher)
        report.train_seconds[name] = round(time.monotonic() - t0, 1)
        report.metrics[name] = evaluate(model, val_set)
        report.params[name] = n_params(model)
        torch.save(model, out / f"{name}.pt")
        report.onnx[name] = str(export_onnx(model, out / f"{name}.onnx", size))
        log.info("%s: %s", name, report.metrics[name])
        return model

    teacher = run("teacher", FireNet(**TEACHER), teacher_epochs)
    torch.manual_seed(seed)
    run("student", FireNet(**STUDENT), student_epochs)
    torch.manual_seed(seed)
    kd = run("student-kd", FireNet(**STUDENT), student_epochs, teacher)
    best = max(("student", "student-kd"), key=lambda n: report.metrics[n].macro_f1)
    base = kd if best == "student-kd" else torch.load(out / "student.pt", weights_only=False)
    pruned = compress_classifier.prune(base, prune_ratio, size)
    report.metrics["pruned-before-finetune"] = evaluate(pruned, val_set)
    run("pruned", pruned, finetune_epochs, teacher if best == "student-kd" else None)
    report.chosen = best

    calib = to_tensor(train_set.images[np.random.default_rng(seed).permutation(len(train_set))[:256]])
    variants = {"int8": compress_classifier.quantize_int8, "fp16": onnx_tools.to_fp16}
    for tag, fn in variants.items():
        src = Path(report.onnx[best])
        dst = out / f"{best}-{tag}.onnx"
        if tag == "int8":
            fn(src, dst, calib.numpy())
        else:
            fn(src, dst)
        report.onnx[f"{best}-{tag}"] = str(dst)
        report.agreement[f"{best}-{tag}"] = asdict(
            compress_classifier.compare(src, dst, to_tensor(val_set.images).numpy()))
    if models_dir is not None:
        # INT8 and FP16 stay in out_dir: on an AVX2 CPU without VNNI both ran slower than
        # FP32 (see models/fire-classifier.md), so only the FP32 model ships.
        Path(models_dir).mkdir(parents=True, exist_ok=True)
        shutil.copy(report.onnx[best], Path(models_dir) / SHIPPED_CLASSIFIERS["v1"].name)
    (out / "metrics.json").write_text(json.dumps(report.to_json(), indent=2))
    return report
