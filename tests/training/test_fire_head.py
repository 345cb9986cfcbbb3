"""A fire-head run changes the detector's fire scores and leaves its smoke scores as they were."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.yolo_data import tiny_dataset

pytest.importorskip("ultralytics", reason="training needs the train extra")

from training.detector import checkpoint_weights  # noqa: E402
from training.fire_head import FireOnlyLoss  # noqa: E402
from training.smoke_mask import FIRE, SMOKE  # noqa: E402

SHIPPED = Path(__file__).parents[2] / "training" / "checkpoints" / "fire-detector-lite0-ft-avg-e8-e10.pt"


def test_fire_only_loss_weights_smoke_zero_on_every_image() -> None:
    cls = torch.tensor([[FIRE], [SMOKE]], dtype=torch.float32)
    loss = FireOnlyLoss.__new__(FireOnlyLoss)  # weights() needs no model
    loss.nc = 2
    weights = loss.weights(cls, torch.tensor([0.0, 1.0]), batch_size=3)
    assert weights[:, 0, SMOKE].tolist() == [0.0, 0.0, 0.0]
    assert weights[:, 0, FIRE].tolist() == [1.0, 1.0, 1.0]


def _scores(onnx: Path, images: list[np.ndarray]) -> np.ndarray:
    """Raw (images, 4 + classes, anchors) outputs of an exported detector."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: image})[0] for image in images])


def _state(weights: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    return checkpoint_weights(ckpt).float().state_dict()


@pytest.mark.slow
def test_fire_head_run_keeps_smoke_and_boxes_and_moves_fire(tmp_path: Path, no_network: list[str]) -> None:
    torch.set_num_threads(1)
    from training.detector import export_detector, train_detector
    from training.fire_head import merge

    data = tiny_dataset(tmp_path / "data")
    run = train_detector(data, scale="lite0", epochs=1, batch=4, workers=0, runs_dir=tmp_path / "runs",
                         finetune_from=SHIPPED, lr0=0.05, fire_head=True)
    tuned, base = _state(run.last), _state(SHIPPED)
    changed = {k for k in base if not torch.equal(base[k], tuned[k])}
    assert changed and all(".cv3." in k for k in changed), sorted(changed)[:5]

    # As run from the command line, whose checkpoint must load outside that process too.
    merged = tmp_path / "merged.pt"
    subprocess.run([sys.executable, "-m", "training.fire_head", str(run.last), str(SHIPPED), str(merged)],
                   check=True, cwd=Path(__file__).parents[2])
    merged_onnx = export_detector(merged, tmp_path / "merged.onnx")
    base_onnx = export_detector(SHIPPED, tmp_path / "base.onnx")
    rng = np.random.default_rng(0)
    images = [rng.random((1, 3, 320, 320), dtype=np.float32) for _ in range(2)]
    ours, theirs = _scores(merged_onnx, images), _scores(base_onnx, images)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours[:, :4], theirs[:, :4], atol=1e-3)  # boxes
    np.testing.assert_allclose(ours[:, 4 + SMOKE], theirs[:, 4 + SMOKE], atol=1e-3)
    assert np.abs(ours[:, 4 + FIRE] - theirs[:, 4 + FIRE]).max() > 1e-3

    # Weights trained any other way are refused: their smoke branch would read moved features.
    with pytest.raises(ValueError, match="outside the class branch"):
        merge(SHIPPED, Path(__file__).parents[2] / "training" / "checkpoints" / "fire-detector-lite0-ft-last.pt",
              tmp_path / "refused.pt")
    assert no_network == []
