"""Train the fire + smoke detector from scratch with ultralytics and export it to ONNX.

Training on a 2-core CPU takes many hours, so a run is resumable: ultralytics writes
``last.pt`` after every epoch and ``train_detector(resume=True)`` carries on from it
with the same learning-rate schedule. ``export_detector`` writes the ONNX file the
daemon loads; ultralytics stores class names, stride and input size in its metadata.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from training import lite0, offline

log = logging.getLogger(__name__)

CONFIG = Path(__file__).parent / "configs" / "fire-detector.yaml"
# v2: a pretrained EfficientNet-Lite0 backbone (training/lite0.py) under the same head.
LITE0_CONFIG = Path(__file__).parent / "configs" / "fire-detector-lite0.yaml"
RUNS = offline.PROJECT_ROOT / "runs" / "detector"
# Committed copies of the run in progress, so that training continues in a fresh checkout.
CHECKPOINTS = Path(__file__).parent / "checkpoints"
SCALES = ("p", "n", "lite0")


def ultralytics_yolo():  # type: ignore[no-untyped-def]
    """ultralytics' YOLO class, imported offline, with the Lite0 backbone registered."""
    offline.prepare()
    lite0.register()
    from ultralytics import YOLO

    return YOLO


@dataclass(frozen=True)
class DetectorRun:
    """Where one training run lives on disk."""

    scale: str
    runs_dir: Path = RUNS
    imgsz: int = 320
    # Tells apart runs of one scale and size, e.g. "ft" for a fine-tune that starts from
    # another run's weights while that run's folder stays where it is.
    variant: str = ""

    @property
    def dir(self) -> Path:
        # Runs at the default input size keep the plain name their checkpoints were committed under.
        suffix = "" if self.imgsz == 320 else f"-{self.imgsz}"
        variant = f"-{self.variant}" if self.variant else ""
        return self.runs_dir / f"fire-detector-{self.scale}{suffix}{variant}"

    @property
    def last(self) -> Path:
        return self.dir / "weights" / "last.pt"

    @property
    def best(self) -> Path:
        """best.pt, or last.pt when the best was not kept (a run restored from a checkpoint)."""
        best = self.dir / "weights" / "best.pt"
        return best if best.exists() else self.last


def data_yaml(data_dir: Path, runs_dir: Path = RUNS, fire_only: Sequence[Path] = (),
              negatives: Sequence[Path] = ()) -> Path:
    """The dataset's data.yaml, with its relative ``path`` resolved.

    The shared dataset says ``path: .``; ultralytics would read that relative to its own
    datasets folder, so we hand it a copy that names the folder absolutely. Each of
    ``fire_only`` (YOLO folders with the same classes whose smoke is not labelled, such as
    ``fire-extra``) adds its train images, listed for ``training.smoke_mask``; validation
    stays on ``data_dir``'s val split, so that runs remain comparable. Each of ``negatives``
    (YOLO folders of unlabelled, fire-free images, see ``training.video_negatives``) adds
    its train images as background.
    """
    data_dir = Path(data_dir).resolve()
    source = data_dir / "data.yaml"
    spec = yaml.safe_load(source.read_text())
    spec["path"] = str(data_dir)
    extra = [str(Path(d).resolve() / "images" / "train") for d in fire_only]
    background = [str(Path(d).resolve() / "images" / "train") for d in negatives]
    if extra or background:
        spec["train"] = [str(data_dir / spec["train"]), *extra, *background]
        spec["val"] = str(data_dir / spec["val"])
    if extra:
        from training.smoke_mask import DATA_KEY

        spec[DATA_KEY] = extra
    key = ":".join([str(data_dir), *map(str, fire_only), *(f"-{n}" for n in negatives)])
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    out = Path(runs_dir).parent / "data" / f"{data_dir.name}-{digest}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(spec))
    return out


def model_yaml(scale: str, out_dir: Path) -> Path:
    """Copy the architecture YAML with ``scale`` fixed, so the size is explicit."""
    if scale not in SCALES:
        raise ValueError(f"unknown detector scale {scale!r}; choose one of {', '.join(SCALES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if scale == "lite0":
        out = out_dir / "fire-detector-lite0.yaml"
        shutil.copyfile(LITE0_CONFIG, out)
        return out
    spec = yaml.safe_load(CONFIG.read_text())
    # ultralytics overwrites ``scale`` with a guess from the file name ("yolo11n.yaml") and
    # otherwise takes the first entry of ``scales``: keep only the one we mean.
    spec["scales"] = {scale: spec["scales"][scale]}
    spec["scale"] = scale
    out = out_dir / f"fire-detector-{scale}.yaml"
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


def train_detector(
    data_dir: Path,
    *,
    scale: str = "p",
    epochs: int = 100,
    imgsz: int = 320,
    batch: int = 16,
    workers: int = 2,
    resume: bool = False,
    fraction: float = 1.0,
    runs_dir: Path = RUNS,
    device: str = "cpu",
    seed: int = 0,
    callbacks: dict[str, Callable[[object], None]] | None = None,
    checkpoint_dir: Path | None = None,
    until: int | None = None,
    schedule: int | None = None,
    finetune_from: Path | None = None,
    lr0: float = 0.002,
    freeze: int | None = None,
    fire_only: Sequence[Path] = (),
    negatives: Sequence[Path] = (),
    variant: str = "",
    distill_from: Path | None = None,
    multi_scale: float = 0.0,
    zoom: float | None = None,
    fire_head: bool = False,
    p2: bool = False,
) -> DetectorRun:
    """Train (or resume) one detector run; returns where its weights are.

    ``callbacks`` maps ultralytics event names (e.g. ``on_fit_epoch_end``) to functions
    of the trainer: tests use one to stop a run early and resume it. With
    ``checkpoint_dir``, last.pt and results.csv are copied there after every epoch, to
    be committed: a CPU run spans several working sessions. With ``until``, the run
    pauses after that epoch is saved and stays resumable (ultralytics' own stop would
    strip the optimizer from last.pt and end the schedule). With ``schedule`` (resume
    only), the run's schedule is shortened or lengthened to that many epochs in all.
    With ``finetune_from``, a new run (named after ``imgsz`` when it is not 320) starts
    from those weights instead of from scratch: a short warm restart at ``lr0``, e.g. to
    carry a 320 px model to a larger input where small fires cover more pixels.
    ``freeze`` keeps the first that many layers fixed (1 = the whole Lite0 backbone).
    ``variant`` names a separate run of the same scale and size (see ``DetectorRun``).
    ``fire_only`` adds datasets whose smoke is not labelled (see ``data_yaml``); the Lite0
    runs train with ``training.smoke_mask``'s trainer, which keeps their smoke out of the loss.
    ``negatives`` adds folders of fire-free background images.
    ``distill_from`` (a new run only) names a teacher checkpoint for ultralytics' knowledge
    distillation: the student's neck features at each of the head's levels are pulled towards
    the teacher's, weighted by the teacher's class scores, on top of the usual loss.
    ``multi_scale`` (a new run only) resizes each batch to a random size within that fraction
    of ``imgsz`` (ultralytics' own option), so that one model serves 320 px and larger inputs.
    ``zoom`` (a new run only) sets ultralytics' random rescale of each image (gain within
    1 ± zoom; its default is 0.5): a larger value shrinks large fires into small ones more often.
    ``fire_head`` (with ``finetune_from``) trains only the head's class branch, for fire only;
    ``python -m training.fire_head`` then merges it with the starting weights' smoke scores.
    ``p2`` (with ``finetune_from`` from ``training.p2_level``) trains only a stride-4 head level.
    """
    if (fire_head or p2) and finetune_from is None and not resume:
        raise ValueError("a fire-head or P2 run retrains a trained detector: give finetune_from")
    YOLO = ultralytics_yolo()

    run = DetectorRun(scale, Path(runs_dir), imgsz, variant)
    hooks = list((callbacks or {}).items())
    if checkpoint_dir is not None:
        hooks.insert(0, ("on_model_save", lambda trainer: save_checkpoint(run, checkpoint_dir)))
    if until is not None:
        hooks.append(("on_model_save", _pause_after(until)))
    data = str(data_yaml(data_dir, run.runs_dir, fire_only, negatives))
    trainer = trainer_for(scale, fire_head, p2)
    try:
        if resume:
            if not run.last.exists() or _stripped(run.last):
                restore_checkpoint(run, checkpoint_dir or CHECKPOINTS)
            if not run.last.exists():
                raise FileNotFoundError(f"nothing to resume: {run.last} does not exist")
            if schedule is not None:
                set_schedule(run.last, schedule)
            _same_data(run.last, data)
            log.info("resuming %s from %s", run.dir, run.last)
            model = _with_callbacks(YOLO(str(run.last)), hooks)
            # The path, not True: ultralytics refuses resume=True for a checkpoint without
            # optimizer state, which the committed slim copies lack on purpose.
            model.train(resume=str(run.last), data=data, workers=workers, device=device, trainer=trainer)
            return run
        _fresh_run(run, YOLO, hooks, data=data, epochs=epochs, batch=batch, workers=workers,
                   device=device, fraction=fraction, seed=seed, finetune_from=finetune_from, lr0=lr0,
                   freeze=freeze, distill_from=distill_from, multi_scale=multi_scale, zoom=zoom,
                   trainer=trainer)
    except Paused as paused:
        log.info("paused after epoch %d; continue with --resume", paused.epoch)
    return run


def trainer_for(scale: str, fire_head: bool = False, p2: bool = False):  # type: ignore[no-untyped-def]
    """The trainer class of a run: v2 masks unlabelled smoke; v1 keeps ultralytics' own."""
    if p2:
        from training.p2_level import P2Trainer

        return P2Trainer
    if fire_head:
        from training.fire_head import FireHeadTrainer

        return FireHeadTrainer
    if scale != "lite0":
        return None
    from training.smoke_mask import SmokeMaskedTrainer

    return SmokeMaskedTrainer


def set_schedule(last: Path, epochs: int) -> None:
    """Make a resumable run end after ``epochs`` epochs in all.

    ultralytics takes the total from the checkpoint's training arguments and refuses to
    change it on resume, yet the total sets where the learning rate decays to its floor
    and when mosaic augmentation stops (the last ``close_mosaic`` epochs). A CPU run
    planned for 100 epochs can thus be brought to its annealing tail sooner.
    """
    import torch

    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    done = ckpt["epoch"] + 1
    if epochs <= done:
        raise ValueError(f"{last} has {done} epochs done already; a schedule of {epochs} leaves nothing to train")
    if ckpt["train_args"]["epochs"] != epochs:
        log.info("schedule of %s: %d -> %d epochs", last, ckpt["train_args"]["epochs"], epochs)
        ckpt["train_args"]["epochs"] = epochs
        torch.save(ckpt, last)


def _same_data(last: Path, data: str) -> None:
    """Refuse to resume a run on other data than it started with.

    ultralytics takes the data of a resumed run from the command, not from the checkpoint:
    resuming a run that also trained on fire-extra without ``--fire-only`` would quietly go on
    without it. The data files are named by a digest of their parts, so names compare.
    """
    import torch

    started = torch.load(last, map_location="cpu", weights_only=False)["train_args"].get("data")
    if started and Path(started).name != Path(data).name:
        raise ValueError(f"{last} was trained on {Path(started).name}, not {Path(data).name}: "
                         "resume with the same --data, --fire-only and --negatives as its start")


def _stripped(last: Path) -> bool:
    """True for the last.pt of a run that ended: ultralytics strips its optimizer and
    epoch, so extending that run with ``--schedule`` has to start from the committed copy."""
    import torch

    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    return ckpt.get("optimizer") is None and not ckpt.get(SLIM_KEY)


class Paused(Exception):
    """Raised from a callback to leave training after an epoch was saved."""

    def __init__(self, epoch: int) -> None:
        super().__init__(f"paused after epoch {epoch}")
        self.epoch = epoch


def _pause_after(until: int) -> Callable[[object], None]:
    def check(trainer) -> None:  # type: ignore[no-untyped-def]
        done = trainer.epoch + 1  # ultralytics counts epochs from 0
        if done >= until:
            raise Paused(done)

    return check


def _fresh_run(run: DetectorRun, YOLO, hooks, *, data: str, epochs: int,  # type: ignore[no-untyped-def]
               batch: int, workers: int, device: str, fraction: float, seed: int,
               finetune_from: Path | None, lr0: float, freeze: int | None,
               distill_from: Path | None, multi_scale: float, zoom: float | None, trainer) -> None:
    if run.dir.exists():
        # ultralytics would silently start "fire-detector-p2"; a stale run is moved aside
        # instead so that the run name, and resume, stay predictable.
        backup = run.dir.with_name(run.dir.name + ".old")
        shutil.rmtree(backup, ignore_errors=True)
        run.dir.rename(backup)
    if finetune_from is None:
        source, schedule = str(model_yaml(run.scale, run.runs_dir / "configs")), {}
    else:
        # Left to itself ultralytics picks its own optimiser and rate for a short run and
        # ignores lr0. Plain SGD at a small lr0 is a gentle restart: it adapts the weights
        # to the new input size without undoing what the long run learnt.
        source = str(finetune_from)
        # Warm-up normally starts biases at lr 0.1, a jolt a trained head does not need.
        # pretrained=True is what makes ultralytics keep the loaded weights at all.
        schedule = dict(optimizer="SGD", lr0=lr0, warmup_epochs=1, warmup_bias_lr=lr0,
                        close_mosaic=max(1, epochs // 3), pretrained=True)
    model = _with_callbacks(YOLO(source), hooks)
    model.train(
        data=data,
        epochs=epochs,
        project=str(run.runs_dir),
        name=run.dir.name,
        cache="ram" if fraction >= 0.5 else False,
        verbose=True,
        trainer=trainer,
        **(train_args(imgsz=run.imgsz, batch=batch, workers=workers, device=device, fraction=fraction, seed=seed)
           | schedule | ({} if freeze is None else {"freeze": freeze})
           | ({} if distill_from is None else {"distill_model": str(distill_from)})
           | ({} if not multi_scale else {"multi_scale": multi_scale})
           | ({} if zoom is None else {"scale": zoom})),
    )


def train_args(*, imgsz: int, batch: int, workers: int, device: str, fraction: float, seed: int) -> dict:
    """ultralytics training arguments that every detector run shares: offline and reproducible."""
    return dict(
        imgsz=imgsz,
        batch=batch,
        workers=workers,
        device=device,
        fraction=fraction,
        exist_ok=True,
        pretrained=False,
        amp=False,  # the AMP check downloads a model
        seed=seed,
        deterministic=True,
        plots=False,
    )


# Marks a checkpoint written by ``slim_checkpoint``: resumable although it has no optimizer.
SLIM_KEY = "firewatch_slim"


def slim_checkpoint(last: Path, target: Path) -> Path:
    """A resumable copy of ``last`` at a third of its size, to be committed.

    It keeps the EMA weights in fp16, the epoch, the training arguments (so the learning-rate
    schedule and the mosaic-free tail continue where they were) and the best fitness; it
    drops the optimizer state and the raw (non-EMA) weights. A resume then starts the model
    from the EMA weights and refills the optimizer's moments within a few dozen steps.
    """
    import torch

    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim_fields(ckpt, checkpoint_weights(ckpt)), target)
    return target


def checkpoint_weights(ckpt: dict):  # type: ignore[no-untyped-def]
    """The network a checkpoint is evaluated with: its EMA copy, or the raw model."""
    return ckpt.get("ema") or ckpt["model"]


def slim_fields(ckpt: dict, weights) -> dict:  # type: ignore[no-untyped-def]
    """What a committed checkpoint keeps of ``ckpt`` (see ``slim_checkpoint``), with ``weights`` as its EMA."""
    slim = {key: ckpt.get(key) for key in ("epoch", "best_fitness", "updates", "train_args", "train_metrics",
                                              "date", "version", "license", "docs")}
    return slim | {"model": None, "ema": weights, "optimizer": None, SLIM_KEY: True}


def save_weights(ckpt: dict, weights, out: Path) -> Path:  # type: ignore[no-untyped-def]
    """Write ``weights`` (a model built from ``ckpt``'s run) as a slim fp16 checkpoint at ``out``."""
    import torch

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim_fields(ckpt, weights.half()), out)
    return out


def save_checkpoint(run: DetectorRun, to: Path = CHECKPOINTS) -> Path:
    """A slim copy of the run's last.pt, and its results.csv, in ``to`` (committed between sessions)."""
    to.mkdir(parents=True, exist_ok=True)
    target = slim_checkpoint(run.last, to / f"{run.dir.name}-last.pt")
    if (run.dir / "results.csv").exists():
        shutil.copyfile(run.dir / "results.csv", to / f"{run.dir.name}-results.csv")
    return target


def restore_checkpoint(run: DetectorRun, source: Path = CHECKPOINTS) -> bool:
    """Put a committed last.pt (and its results.csv) back where ultralytics resumes from."""
    saved = source / f"{run.dir.name}-last.pt"
    if not saved.exists():
        return False
    run.last.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(saved, run.last)
    results = source / f"{run.dir.name}-results.csv"
    if results.exists():
        shutil.copyfile(results, run.dir / "results.csv")
    log.info("restored %s from %s", run.last, saved)
    return True


def _with_callbacks(model, hooks):  # type: ignore[no-untyped-def]
    for event, func in hooks:
        model.add_callback(event, func)
    return model


def export_detector(weights: Path, out: Path, imgsz: int | None = None, half: bool = False) -> Path:
    """Export a trained checkpoint to a self-contained ONNX file at ``out``.

    The input size defaults to the one the checkpoint was trained at.
    """
    YOLO = ultralytics_yolo()

    size = {} if imgsz is None else {"imgsz": imgsz}
    exported = YOLO(str(weights)).export(
        format="onnx", dynamic=False, simplify=True, half=half, device="cpu", **size
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(exported, out)
    return out


def export_untrained(out: Path, scale: str = "p", imgsz: int = 320) -> Path:
    """Export a freshly initialised detector: the right graph and metadata, no skill.

    Tests use it to check loading and parsing without waiting for a trained model.
    """
    import contextlib

    YOLO = ultralytics_yolo()

    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    model = YOLO(str(model_yaml(scale, out.parent)))
    model.model.names = {0: "fire", 1: "smoke"}  # training takes them from data.yaml
    # A model built from a YAML is exported into the working directory: use a scratch one.
    scratch = out.parent / f".export-{out.stem}"
    scratch.mkdir(exist_ok=True)
    with contextlib.chdir(scratch):
        exported = Path(model.export(format="onnx", imgsz=imgsz, device="cpu")).resolve()
    shutil.move(exported, out)
    shutil.rmtree(scratch, ignore_errors=True)
    return out


if __name__ == "__main__":  # used to launch long background runs: python -m training.detector
    import argparse

    logging.basicConfig(level=logging.INFO)
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=None, help="YOLO dataset (default: $FIREWATCH_DATA/fire)")
    parser.add_argument("--scale", default="p", choices=SCALES)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--until", type=int, default=None)
    parser.add_argument("--schedule", type=int, default=None)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--finetune-from", type=Path, default=None)
    parser.add_argument("--lr0", type=float, default=0.002)
    parser.add_argument("--freeze", type=int, default=None)
    parser.add_argument("--variant", default="", help="a separate run of the same scale and size, e.g. ft")
    parser.add_argument("--fire-only", type=Path, action="append", default=[],
                        help="a YOLO folder whose smoke is not labelled (e.g. $FIREWATCH_DATA/fire-extra); repeatable")
    parser.add_argument("--negatives", type=Path, action="append", default=[],
                        help="a YOLO folder added to train with its labels as they are: fire-free frames "
                             "(python -m training.video_negatives) or mined images (python -m "
                             "training.hard_negatives [--positives]); repeatable")
    parser.add_argument("--distill-from", type=Path, default=None,
                        help="teacher checkpoint (.pt) for ultralytics' feature distillation, e.g. v2's for a v1 student")
    parser.add_argument("--multi-scale", type=float, default=0.0,
                        help="train on batches resized by up to this fraction of --imgsz, e.g. 0.3")
    parser.add_argument("--zoom", type=float, default=None,
                        help="random rescale of each training image, gain within 1 +- this (ultralytics' scale, default 0.5)")
    parser.add_argument("--fire-head", action="store_true",
                        help="train only the head's class branch, for fire (see training.fire_head); needs --finetune-from")
    parser.add_argument("--p2", action="store_true",
                        help="train only a stride-4 head level (see training.p2_level); needs its --finetune-from")
    args = parser.parse_args()
    from firewatch.paths import data_root

    train_detector(args.data or data_root() / "fire", scale=args.scale, epochs=args.epochs, resume=args.resume,
                   checkpoint_dir=CHECKPOINTS, until=args.until, schedule=args.schedule,
                   imgsz=args.imgsz, finetune_from=args.finetune_from, lr0=args.lr0,
                   freeze=args.freeze, fire_only=args.fire_only, negatives=args.negatives,
                   variant=args.variant, distill_from=args.distill_from, multi_scale=args.multi_scale,
                   zoom=args.zoom, fire_head=args.fire_head, p2=args.p2)
