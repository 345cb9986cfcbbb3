"""Fire-only images (fire-extra) train fire without teaching the smoke class "background"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("ultralytics", reason="training needs the train extra")

from training import detector  # noqa: E402
from training.smoke_mask import FIRE, FIRE_ONLY, SMOKE, SmokeMaskedDetectionModel, mark_fire_only, smoke_weights  # noqa: E402


def test_weights_zero_smoke_only_for_images_with_a_marked_box() -> None:
    cls = torch.tensor([[FIRE_ONLY], [FIRE], [SMOKE], [FIRE]], dtype=torch.float32)
    batch_idx = torch.tensor([0.0, 0.0, 1.0, 2.0])
    weights = smoke_weights(cls, batch_idx, batch_size=4, nc=2)
    assert weights.shape == (4, 1, 2)
    assert weights[0, 0].tolist() == [1.0, 0.0]
    assert weights[1:, 0].flatten().tolist() == [1.0] * 6


def test_mark_fire_only_relabels_fire_boxes_under_the_folders(tmp_path: Path) -> None:
    extra, main = tmp_path / "fire-extra" / "images" / "train", tmp_path / "fire" / "images" / "train"
    labels = [
        {"im_file": str(extra / "a.jpg"), "cls": np.array([[0.0], [0.0]], np.float32)},
        {"im_file": str(main / "b.jpg"), "cls": np.array([[0.0], [1.0]], np.float32)},
    ]
    assert mark_fire_only(labels, [extra]) == 1
    assert labels[0]["cls"].ravel().tolist() == [FIRE_ONLY, FIRE_ONLY]
    assert labels[1]["cls"].ravel().tolist() == [FIRE, SMOKE]


def _smoke_gradient(marker: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the real loss w.r.t. the smoke and fire logits of image 0 (image 1 unmarked)."""
    from ultralytics.cfg import get_cfg

    YOLO = detector.ultralytics_yolo()
    del YOLO
    torch.manual_seed(0)
    cfg = detector.model_yaml("p", Path(detector.RUNS) / "configs")
    model = SmokeMaskedDetectionModel(str(cfg), nc=2, verbose=False)
    model.args = get_cfg()
    model.train()
    preds = model(torch.rand(2, 3, 160, 160))
    preds = {k: (v.detach() if torch.is_tensor(v) else [f.detach() for f in v]) for k, v in preds.items()}
    preds["scores"].requires_grad_(True)
    batch = {
        "batch_idx": torch.tensor([0.0, 1.0]),
        "cls": torch.tensor([[marker], [FIRE]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.5, 0.5, 0.4, 0.4]]),
    }
    loss, _ = model.init_criterion()(preds, batch)
    loss.sum().backward()
    grad = preds["scores"].grad  # (batch, nc, anchors)
    return grad[0, SMOKE], grad[0, FIRE]


def test_loss_ignores_smoke_logits_of_fire_only_images() -> None:
    smoke, fire = _smoke_gradient(FIRE_ONLY)
    assert torch.count_nonzero(smoke) == 0
    assert torch.count_nonzero(fire) > 0
    smoke_plain, fire_plain = _smoke_gradient(FIRE)
    assert torch.count_nonzero(smoke_plain) > 0
    # The fire column learns exactly as it would for an ordinary image.
    assert torch.allclose(fire, fire_plain)
