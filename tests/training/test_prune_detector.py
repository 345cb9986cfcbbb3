"""Structured pruning of the detector on a tiny slice: channels really go, the pruned module is
what gets fine-tuned, and its ONNX loads in the daemon's Detector. Offline."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import yaml

from tests.support.yolo_data import tiny_dataset

pytest.importorskip("torch_pruning", reason="pruning needs the train extra")
pytest.importorskip("ultralytics", reason="training needs the train extra")


def _untrained_weights(path: Path) -> Path:
    """An ultralytics checkpoint of a freshly initialised scale-p detector."""
    from training import offline
    from training.detector import model_yaml

    offline.prepare()
    from ultralytics import YOLO

    model = YOLO(str(model_yaml("p", path.parent)))
    model.model.names = {0: "fire", 1: "smoke"}
    model.save(str(path))
    return path


def _conv_widths(model) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Output channels of every conv, by name, after the C2f split that pruning starts with."""
    import copy

    import torch

    from training.prune_detector import SplitC2f, split_c2f_blocks

    if not any(isinstance(m, SplitC2f) for m in model.model):
        model = copy.deepcopy(model)
        split_c2f_blocks(model)
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}


def test_split_c2f_blocks_compute_the_same(tmp_path: Path) -> None:
    import torch

    from training.prune_detector import SplitC2f, load_model, split_c2f_blocks

    torch.manual_seed(0)
    model = load_model(_untrained_weights(tmp_path / "base.pt")).eval()
    x = torch.rand(1, 3, 320, 320)
    with torch.no_grad():
        before = model(x)[0]
        assert split_c2f_blocks(model) == 8  # every C3k2 of the YOLO11 layout
        after = model(x)[0]
    assert any(isinstance(m, SplitC2f) for m in model.model)
    assert torch.allclose(before, after, atol=1e-5)


def test_fraction_samples_every_source(tmp_path: Path) -> None:
    from training.prune_detector import sampled_data_yaml

    train = tmp_path / "fire" / "images" / "train"
    train.mkdir(parents=True)
    names = [f"{source}__{i}.jpg" for source in ("aa", "zz") for i in range(10)]
    for name in names:
        (train / name).touch()
    (tmp_path / "fire" / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\n")

    spec = yaml.safe_load(sampled_data_yaml(tmp_path / "fire", tmp_path / "runs", 0.5, seed=0).read_text())
    picked = [Path(p).name for p in Path(spec["train"]).read_text().split()]
    assert len(picked) == 10 and {n[:2] for n in picked} == {"aa", "zz"}  # ultralytics' would be all "aa"
    again = yaml.safe_load(sampled_data_yaml(tmp_path / "fire", tmp_path / "runs", 0.5, seed=0).read_text())
    assert Path(again["train"]).read_text().split() == Path(spec["train"]).read_text().split()


@pytest.mark.slow
def test_prune_fine_tune_export(tmp_path: Path, no_network: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    from training.prune_detector import (
        kept_layers,
        load_model,
        model_size,
        prune,
        prune_detector,
    )
    from vision.detectors import Detector

    weights = _untrained_weights(tmp_path / "base.pt")
    base = load_model(weights)
    pruned = prune(base, 0.3, round_to=None)

    before, after = model_size(base), model_size(pruned)
    assert after.params < 0.7 * before.params and after.gflops < 0.7 * before.gflops
    widths, pruned_widths = _conv_widths(base), _conv_widths(pruned)
    assert widths.keys() == pruned_widths.keys()
    narrower = [n for n in widths if pruned_widths[n] < widths[n]]
    assert len(narrower) > 20, "conv weights must be physically smaller, not masked"
    # The head's output convs keep their widths: 4 x reg_max box bins, nc class logits, DFL.
    assert [m.out_channels for m in kept_layers(pruned) if isinstance(m, torch.nn.Conv2d)] == \
        [m.out_channels for m in kept_layers(base) if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        assert pruned.eval()(torch.rand(1, 3, 320, 320))[0].shape == (1, 6, 2100)

    # Widths rounded to multiples of 8: what onnxruntime's CPU kernels want.
    rounded_model = prune(base, 0.3, round_to=8)
    rounded = model_size(rounded_model)
    assert rounded.params < after.params
    assert all(w == widths[n] or w % 8 == 0 for n, w in _conv_widths(rounded_model).items())

    data = tiny_dataset(tmp_path / "fire")
    epochs_seen: list[int] = []
    result = prune_detector(weights, tmp_path / "pruned.onnx", data, ratio=0.3, epochs=1, fraction=0.5,
                            batch=4, workers=0, runs_dir=tmp_path / "runs",
                            callbacks={"on_train_epoch_end": lambda t: epochs_seen.append(t.epoch)})
    assert epochs_seen == [0]
    # A seeded random half of train, not ultralytics' first half by file name.
    train = next((tmp_path / "data").glob("*-train-0.5-seed0.txt")).read_text().split()
    assert len(train) == 4 and all(Path(p).parent == data / "images" / "train" for p in train)
    assert result.after == rounded
    # The fine-tuned checkpoint is the pruned architecture, not a rebuild from the YAML.
    assert model_size(load_model(result.weights)).params == rounded.params

    detector = Detector(result.onnx, threads=1)
    assert detector.names == {0: "fire", 1: "smoke"} and detector.imgsz == (320, 320)
    image = cv2.imread(str(next((data / "images" / "val").iterdir())))
    assert len(detector(image)) >= 0
    assert no_network == [], f"pruning reached for the network: {no_network}"


@pytest.mark.slow
def test_keep_backbone_prunes_only_the_neck_and_head() -> None:
    """v2's shipped weights: with keep_backbone the ImageNet backbone comes out untouched."""
    import torch
    from ultralytics.nn.modules.block import TorchVision

    from training.prune_detector import load_model, prune

    torch.set_num_threads(1)
    checkpoint = Path(__file__).parents[2] / "training" / "checkpoints" / "fire-detector-lite0-ft-avg-e8-e10.pt"
    base = load_model(checkpoint).float()
    kept = prune(base, 0.3, round_to=8, keep_backbone=True)
    whole = prune(base, 0.3, round_to=8)

    base_bb, kept_bb, whole_bb = (next(m for m in model.model if isinstance(m, TorchVision)).state_dict()
                                  for model in (base, kept, whole))
    assert kept_bb.keys() == base_bb.keys()
    assert all(torch.equal(kept_bb[k], base_bb[k].float()) for k in base_bb)
    assert any(whole_bb[k].shape != base_bb[k].shape for k in base_bb)
    widths, kept_widths = _conv_widths(base), _conv_widths(kept)
    neck_and_head = [n for n in widths if not n.startswith("model.0.")]
    assert sum(kept_widths[n] < widths[n] for n in neck_and_head) > 20
    with torch.no_grad():
        assert kept.eval()(torch.rand(1, 3, 320, 320))[0].shape == (1, 6, 2100)
