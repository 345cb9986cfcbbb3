"""A P2 run adds a stride-4 head level and leaves the detector's three levels as they were."""

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

ROOT = Path(__file__).parents[2]
SHIPPED = ROOT / "training" / "checkpoints" / "fire-detector-lite0-ft-avg-e8-e10.pt"
# Anchors of the new level at 320 px (80 x 80); the original levels' follow them in the output.
P2_ANCHORS = 80 * 80


def _state(weights: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    return checkpoint_weights(ckpt).float().state_dict()


def _outputs(onnx: Path, images: list[np.ndarray]) -> np.ndarray:
    """Raw (images, 4 + classes, anchors) outputs of an exported detector."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: image})[0] for image in images])


@pytest.mark.slow
def test_p2_run_trains_only_the_new_level_and_keeps_the_old_outputs(tmp_path: Path, no_network: list[str]) -> None:
    torch.set_num_threads(1)
    from training.detector import export_detector, train_detector

    start = tmp_path / "p2-start.pt"
    # From the command line: the checkpoint must load outside that process too.
    subprocess.run([sys.executable, "-m", "training.p2_level", str(SHIPPED), str(start)], check=True, cwd=ROOT)
    data = tiny_dataset(tmp_path / "data")
    run = train_detector(data, scale="lite0", epochs=1, batch=4, workers=0, runs_dir=tmp_path / "runs",
                         finetune_from=start, lr0=0.05, p2=True)
    before, after = _state(start), _state(run.last)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    trained = ("model.17.", "model.18.", "model.19.", "model.20.", "model.21.cv2.0.", "model.21.cv3.0.")
    assert changed and all(k.startswith(trained) for k in changed), sorted(changed)[:5]
    assert any(k.startswith("model.21.cv3.0.") for k in changed)

    ours = export_detector(run.last, tmp_path / "p2.onnx")
    theirs = export_detector(SHIPPED, tmp_path / "base.onnx")
    rng = np.random.default_rng(0)
    images = [rng.random((1, 3, 320, 320), dtype=np.float32) for _ in range(2)]
    new, old = _outputs(ours, images), _outputs(theirs, images)
    assert new.shape[2] == old.shape[2] + P2_ANCHORS
    np.testing.assert_allclose(new[:, :, P2_ANCHORS:], old, atol=1e-3)  # boxes and scores of the old levels

    from training.p2_level import start_weights

    with pytest.raises(ValueError, match="does not fit"):  # a detector that has its P2 level already
        start_weights(start, tmp_path / "refused.pt")
    assert no_network == []

