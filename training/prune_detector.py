"""Structured pruning of the fire/smoke detector: channels removed with torch-pruning, then fine-tuned.

Pruning removes whole channels by L2 group magnitude (physically smaller convolutions, as for
the classifier in ``training.compress_classifier``); a fraction ``ratio`` of every prunable
layer's channels goes. Three parts of the YOLO11 layout are treated specially:

* C2f / C3k2 split one conv's output in two halves with ``chunk(2)``, which only works while
  both halves keep the same width; each such block is first rewritten as :class:`SplitC2f`
  (two convs, same numbers) so that each half can lose its own channels.
* C2PSA's attention reshapes its channels into fixed heads and splits its input by a stored
  width: it is left whole (only its first conv's *input* may shrink with the layer before).
* The Detect head's output convs (box distribution, class logits) and the DFL conv keep their
  channels: they define the 1 x (4 + nc) x anchors output the daemon parses.

With ``keep_backbone`` a pretrained backbone (v2's ``TorchVision`` layer) is left whole and
only the neck and head, trained from scratch on our data, lose channels: pruning the ImageNet
features removes what a short fine-tune on 5 k images cannot rebuild.

Fine-tuning uses ultralytics' own ``DetectionTrainer`` handed the pruned module: ``YOLO.train``
would rebuild the model from its YAML and load only the weights whose shapes still match,
i.e. silently train the unpruned architecture. The ONNX export is ``export_detector``'s, so
class names, stride and input size land in the metadata as for the shipped detector.

    python -m training.prune_detector --weights base.pt --out /tmp/prune/pruned.onnx \\
        --ratio 0.3 --epochs 2 --fraction 0.5
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from firewatch.paths import data_root
from training import offline
from training.detector import data_yaml, export_detector, train_args

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Size:
    """Parameters and GFLOPs (2 x multiply-adds, ultralytics' convention) at one input size."""

    params: int
    gflops: float

    def __str__(self) -> str:
        return f"{self.params / 1e6:.3f} M params, {self.gflops:.2f} GFLOPs"


def model_size(model: nn.Module, imgsz: int = 320) -> Size:
    """Counted by ultralytics' profiler (thop), which also reaches into v2's Lite0 backbone:
    torch-pruning's own counter found 0.08 of the backbone's 1.59 GFLOPs."""
    from ultralytics.utils.torch_utils import get_flops

    # A copy in eval mode: the profiler runs forward passes, which in training mode would move
    # the BatchNorm statistics, and it leaves its hooks on the module it is given.
    gflops = get_flops(copy.deepcopy(model).eval(), imgsz)
    if not gflops:
        raise RuntimeError("ultralytics could not profile the model's FLOPs")
    return Size(sum(p.numel() for p in model.parameters()), round(gflops, 3))


def _conv_rows(conv: nn.Module, rows: slice) -> nn.Module:
    """A copy of an ultralytics ``Conv`` (conv + BatchNorm + act) keeping only output channels ``rows``."""
    part = copy.deepcopy(conv)
    part.conv.weight = nn.Parameter(conv.conv.weight.data[rows].clone())
    part.conv.out_channels = part.conv.weight.shape[0]
    bn = part.bn
    bn.weight = nn.Parameter(conv.bn.weight.data[rows].clone())
    bn.bias = nn.Parameter(conv.bn.bias.data[rows].clone())
    bn.running_mean = conv.bn.running_mean[rows].clone()
    bn.running_var = conv.bn.running_var[rows].clone()
    bn.num_features = bn.weight.shape[0]
    return part


class SplitC2f(nn.Module):
    """A C2f (or C3k2) whose first conv is two convs, one per half of its output.

    Same function as the block it replaces; the halves may then be pruned to different widths,
    which ``chunk(2)`` in the original forward cannot follow.
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        half = block.cv1.conv.out_channels // 2
        self.cv0 = _conv_rows(block.cv1, slice(0, half))
        self.cv1 = _conv_rows(block.cv1, slice(half, 2 * half))
        self.cv2 = block.cv2
        self.m = block.m
        # DetectionModel's forward routes tensors between layers with these.
        for attr in ("f", "i", "type", "np"):
            if hasattr(block, attr):
                setattr(self, attr, getattr(block, attr))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv0(x), self.cv1(x)]
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


def split_c2f_blocks(model: nn.Module) -> int:
    """Replace every C2f-family block of ``model.model`` by a :class:`SplitC2f`; returns how many."""
    from ultralytics.nn.modules.block import C2f

    n = 0
    for i, layer in enumerate(model.model):
        if isinstance(layer, C2f):
            model.model[i] = SplitC2f(layer)
            n += 1
    return n


def kept_layers(model: nn.Module, keep_backbone: bool = False) -> list[nn.Module]:
    """Modules whose output channels pruning must leave alone (see the module docstring)."""
    from ultralytics.nn.modules.block import C2PSA, TorchVision
    from ultralytics.nn.modules.head import Detect

    kept: list[nn.Module] = []
    for m in model.modules():
        if isinstance(m, C2PSA) or (keep_backbone and isinstance(m, TorchVision)):
            kept.append(m)
        elif isinstance(m, Detect):
            for name in ("cv2", "cv3", "one2one_cv2", "one2one_cv3"):
                for branch in getattr(m, name, None) or []:
                    kept.append(branch[-1])
            kept.append(m.dfl)
    return kept


def prune(model: nn.Module, ratio: float, imgsz: int = 320, round_to: int | None = None,
          keep_backbone: bool = False) -> nn.Module:
    """A pruned copy of an ultralytics DetectionModel: ``ratio`` of the channels of every
    prunable conv group removed by L2 magnitude (with ``round_to``, widths stay multiples of it;
    with ``keep_backbone``, a pretrained ``TorchVision`` backbone keeps all of its channels)."""
    import torch_pruning as tp

    if not 0 <= ratio < 1:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")
    model = copy.deepcopy(model).float().eval()
    if ratio == 0:  # the control: the same fine-tuning budget spent on the unpruned model
        return model
    split_c2f_blocks(model)
    for p in model.parameters():
        p.requires_grad_(True)  # the dependency graph is traced through autograd
    pruner = tp.pruner.MetaPruner(
        model,
        torch.zeros(1, 3, imgsz, imgsz),
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=ratio,
        ignored_layers=kept_layers(model, keep_backbone),
        round_to=round_to,
    )
    pruner.step()
    return model


def save_weights(model: nn.Module, path: Path) -> Path:
    """An ultralytics-loadable checkpoint of ``model`` (the pickled module keeps the pruned shapes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": copy.deepcopy(model).float(), "train_args": dict(getattr(model, "args", {}) or {})}, path)
    return path


def load_model(weights: Path) -> nn.Module:
    offline.prepare()
    from ultralytics import YOLO

    return YOLO(str(weights)).model


def sampled_data_yaml(data_dir: Path, runs_dir: Path, fraction: float, seed: int = 0) -> Path:
    """The dataset's data.yaml, its train split cut to a seeded random ``fraction`` of the images.

    ultralytics' own ``fraction`` keeps the first files by name, and our file names begin with
    their source: half of train would hold no ``rf__`` image at all and fine-tune away from it.
    """
    import yaml

    from training.quantize_detector import sample_images

    full = data_yaml(data_dir, runs_dir)
    if fraction >= 1:
        return full
    spec = yaml.safe_load(full.read_text())
    folder = Path(spec["path"]) / spec["train"]
    n = len([p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")])
    listing = full.with_name(f"{full.stem}-train-{fraction:g}-seed{seed}.txt")
    listing.write_text("".join(f"{p}\n" for p in sample_images(folder, round(n * fraction), seed)))
    spec["train"] = str(listing)
    out = listing.with_suffix(".yaml")
    out.write_text(yaml.safe_dump(spec))
    return out


def fine_tune(
    model: nn.Module,
    data_dir: Path,
    runs_dir: Path,
    *,
    name: str = "pruned",
    epochs: int = 2,
    fraction: float = 1.0,
    imgsz: int = 320,
    batch: int = 16,
    workers: int = 2,
    seed: int = 0,
    lr0: float | None = None,
    callbacks: dict[str, Callable[[object], None]] | None = None,
) -> Path:
    """Train the given (pruned) module further on ``data_dir``; returns the final best.pt.

    With ``lr0`` the optimiser is plain SGD at that rate, as for stage 2 of v2's training
    (``training.detector``); without it ultralytics picks its own (AdamW for a short run), a
    rate that suits the from-scratch v1 but jolts a pretrained backbone.

    Only the last epoch is validated (that is where ultralytics then writes best.pt): the
    budget goes to training, and ``training.evaluate`` measures the exported file anyway.
    """
    offline.prepare()
    from ultralytics.models.yolo.detect import DetectionTrainer

    runs_dir = Path(runs_dir).resolve()
    trainer = DetectionTrainer(overrides=dict(
        model=str(runs_dir / f"{name}.pt"),  # only named in logs: the module is handed over below
        data=str(sampled_data_yaml(data_dir, runs_dir, fraction, seed)),
        epochs=epochs, project=str(runs_dir), name=name, val=False, cache=False,
        # Fine-tuning starts from trained weights: no warm-up from lr 0, and the mosaic
        # augmentation of the base run (still on at the epoch it was pruned) stays on.
        warmup_epochs=0, close_mosaic=0,
        **({} if lr0 is None else dict(optimizer="SGD", lr0=lr0, warmup_bias_lr=lr0)),
        **train_args(imgsz=imgsz, batch=batch, workers=workers, device="cpu", fraction=1.0, seed=seed),
    ))
    for event, func in (callbacks or {}).items():
        trainer.add_callback(event, func)
    trainer.model = model  # setup_model() keeps a module it is given; see the module docstring
    trainer.train()
    return trainer.best if trainer.best.exists() else trainer.last


@dataclass(frozen=True)
class PruneResult:
    before: Size
    after: Size
    pruned_weights: Path
    weights: Path
    onnx: Path


def prune_detector(
    weights: Path,
    out: Path,
    data_dir: Path,
    *,
    ratio: float = 0.3,
    epochs: int = 2,
    fraction: float = 1.0,
    runs_dir: Path | None = None,
    imgsz: int = 320,
    batch: int = 16,
    workers: int = 2,
    seed: int = 0,
    round_to: int | None = 8,
    keep_backbone: bool = False,
    lr0: float | None = None,
    callbacks: dict[str, Callable[[object], None]] | None = None,
) -> PruneResult:
    """Prune ``weights`` (an ultralytics .pt), fine-tune ``epochs`` (0: none), export ONNX to ``out``."""
    out = Path(out)
    runs_dir = Path(runs_dir) if runs_dir else out.parent / f"{out.stem}-runs"
    base = load_model(weights)
    before = model_size(base, imgsz)
    pruned = prune(base, ratio, imgsz, round_to, keep_backbone)
    after = model_size(pruned, imgsz)
    log.info("pruned %.0f %%: %s -> %s", ratio * 100, before, after)
    pruned_pt = save_weights(pruned, runs_dir / "pruned.pt")
    final = pruned_pt
    if epochs > 0:
        final = fine_tune(pruned, data_dir, runs_dir, epochs=epochs, fraction=fraction, imgsz=imgsz,
                          batch=batch, workers=workers, seed=seed, lr0=lr0, callbacks=callbacks)
    onnx = export_detector(final, out, imgsz=imgsz)
    return PruneResult(before, after, pruned_pt, final, onnx)


def main(argv: list[str] | None = None) -> PruneResult:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, required=True, help="ultralytics checkpoint (.pt) to prune")
    ap.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    ap.add_argument("--data", type=Path,
                    default=data_root() / "fire")
    ap.add_argument("--ratio", type=float, default=0.3, help="share of each layer's channels to remove (0: none, a control run)")
    ap.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs (0: prune and export only)")
    ap.add_argument("--fraction", type=float, default=1.0, help="seeded random share of the train split to fine-tune on")
    ap.add_argument("--runs", type=Path, default=None, help="ultralytics run folder (default: next to --out)")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    # onnxruntime's CPU convolutions work on blocks of 8 channels (AVX2): unrounded widths are
    # padded back, and a 0.3 prune without rounding measured no faster than the unpruned model.
    ap.add_argument("--round-to", type=int, default=8, help="keep channel counts multiples of this (0: off)")
    ap.add_argument("--keep-backbone", action="store_true",
                    help="leave a pretrained (TorchVision) backbone whole; prune the neck and head only")
    ap.add_argument("--lr0", type=float, default=None,
                    help="fine-tune with plain SGD at this rate (default: ultralytics' own choice)")
    ap.add_argument("--json", type=Path, help="write sizes and paths here")
    args = ap.parse_args(argv)

    result = prune_detector(args.weights, args.out, args.data, ratio=args.ratio, epochs=args.epochs,
                            fraction=args.fraction, runs_dir=args.runs, imgsz=args.imgsz, batch=args.batch,
                            workers=args.workers, seed=args.seed, round_to=args.round_to or None,
                            keep_backbone=args.keep_backbone, lr0=args.lr0)
    print(f"before: {result.before}\nafter:  {result.after} "
          f"({result.after.params / result.before.params:.2f} x params, "
          f"{result.after.gflops / result.before.gflops:.2f} x GFLOPs)\n"
          f"weights: {result.weights}\nonnx:    {result.onnx}")
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2, default=str))
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    # Run through the importable module, not __main__: the checkpoints pickle SplitC2f by its
    # module path, and "__main__.SplitC2f" could not be loaded by any other process.
    from training.prune_detector import main as _main

    _main()
