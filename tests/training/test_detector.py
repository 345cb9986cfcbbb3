"""The detector's training entry point, end to end on a tiny slice, offline and resumable."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest

from tests.support.yolo_data import tiny_dataset

pytest.importorskip("ultralytics", reason="training needs the train extra")


@pytest.mark.slow
def test_train_resume_finetune_and_export_offline(tmp_path: Path, no_network: list[str]) -> None:
    import torch

    torch.set_num_threads(1)
    from training.detector import export_detector, train_detector
    from vision.detectors import Detector, input_size

    data = tiny_dataset(tmp_path / "data")
    runs = tmp_path / "runs" / "detector"

    # `until` pauses the run once epoch 1 is saved, as at the end of a working session.
    train_detector(data, epochs=3, batch=4, workers=0, runs_dir=runs, until=1)
    from training.detector import DetectorRun

    run = DetectorRun("p", runs)
    assert run.last.is_file()
    assert len((run.dir / "results.csv").read_text().strip().splitlines()) == 2  # header + 1 epoch

    # A fresh checkout has no runs/: resume starts from the committed checkpoint copy.
    from training.detector import restore_checkpoint, save_checkpoint

    saved = tmp_path / "checkpoints"
    copy = save_checkpoint(run, saved)
    # Committed copies are slim: EMA weights and schedule, no optimizer state.
    slim = torch.load(copy, map_location="cpu", weights_only=False)
    assert slim["optimizer"] is None and slim["epoch"] == 0 and slim["ema"] is not None
    assert copy.stat().st_size < 0.6 * run.last.stat().st_size
    shutil.rmtree(runs)
    assert restore_checkpoint(run, saved) and run.last.is_file()

    from training.detector import set_schedule

    with pytest.raises(ValueError, match="1 epochs done"):
        set_schedule(run.last, 1)
    # Resuming on other data than the run started with is refused, not quietly done.
    with pytest.raises(ValueError, match="resume with the same --data, --fire-only and --negatives"):
        train_detector(data, runs_dir=runs, resume=True, negatives=[tmp_path / "background"])
    # Planned for 3 epochs, rescheduled to end after 2: the run finishes there.
    train_detector(data, epochs=3, batch=4, workers=0, runs_dir=runs, resume=True, schedule=2,
                   checkpoint_dir=saved)
    assert len((run.dir / "results.csv").read_text().strip().splitlines()) == 3  # epoch 2 added, no 3rd
    # The ended run's own last.pt has lost its epoch; lengthening it again resumes from
    # the committed copy, which still has it.
    train_detector(data, epochs=3, batch=4, workers=0, runs_dir=runs, resume=True, schedule=3,
                   checkpoint_dir=saved)
    assert len((run.dir / "results.csv").read_text().strip().splitlines()) == 4

    onnx = export_detector(run.best, tmp_path / "fire-detector.onnx")
    # An epoch-3 model is unsure of everything: a floor near zero shows its raw boxes.
    detector = Detector(onnx, threads=1, conf_threshold=0.001)
    assert detector.names == {0: "fire", 1: "smoke"} and detector.imgsz == (320, 320)
    image = cv2.imread(str(next((data / "images" / "val").iterdir())))
    found = detector(image)
    height, width = image.shape[:2]
    assert len(found) > 0 and set(found.class_id.tolist()) <= {0, 1}
    assert (found.xyxy >= 0).all() and (found.xyxy[:, [0, 2]] <= width).all() and (found.xyxy[:, [1, 3]] <= height).all()

    # Fine-tuning at a larger input starts a separate run from the given weights, not from scratch.
    from ultralytics import YOLO

    source = YOLO(str(run.last)).model.state_dict()
    started_from: dict[str, bool] = {}

    def compare(trainer) -> None:  # type: ignore[no-untyped-def]
        loaded = trainer.model.state_dict()
        started_from["same"] = all(torch.equal(loaded[k].float(), source[k].float()) for k in source)
        started_from["multi_scale"] = trainer.args.multi_scale
        started_from["zoom"] = trainer.args.scale

    tuned = train_detector(data, epochs=1, batch=4, workers=0, runs_dir=runs, imgsz=352,
                           finetune_from=run.last, multi_scale=0.3, zoom=0.8,
                           callbacks={"on_train_start": compare})
    assert started_from == {"same": True, "multi_scale": 0.3, "zoom": 0.8}
    assert tuned.dir.name == "fire-detector-p-352" and tuned.last.is_file()
    bigger_onnx = export_detector(tuned.best, tmp_path / "fire-detector-352.onnx")
    bigger = Detector(bigger_onnx, threads=1)
    assert bigger.imgsz == (352, 352)  # exported at the size it was trained at
    assert input_size(bigger_onnx) == (352, 352)  # what `bench models` reports for it
    assert no_network == [], f"training reached for the network: {no_network}"
    # The dataset is not ours to write to: no label cache is left beside its labels.
    assert sorted(data.rglob("*.cache")) == []


def test_each_scale_builds_its_own_size(tmp_path: Path) -> None:
    # ultralytics guesses the scale from a file name like "yolo11n.yaml"; ours must not
    # silently fall back to the first scale listed.
    from training import offline
    from training.detector import SCALES, model_yaml

    offline.prepare()
    from ultralytics import YOLO

    params = {s: sum(p.numel() for p in YOLO(str(model_yaml(s, tmp_path))).model.parameters()) for s in SCALES}
    assert params["n"] > 2.5 * params["p"], params


@pytest.mark.slow
def test_distillation_trains_the_student_with_the_v2_teacher(tmp_path: Path, no_network: list[str]) -> None:
    import csv

    import torch

    torch.set_num_threads(1)
    from training.detector import DetectorRun, export_detector, train_detector, ultralytics_yolo
    from vision.detectors import Detector

    data = tiny_dataset(tmp_path / "data")
    runs = tmp_path / "runs" / "detector"
    teacher = Path(__file__).parents[2] / "training" / "checkpoints" / "fire-detector-lite0-ft-avg-e8-e10.pt"
    train_detector(data, epochs=1, batch=4, workers=0, runs_dir=runs, until=1)  # a v1-sized student
    student = DetectorRun("p", runs).last

    run = train_detector(data, epochs=1, batch=4, workers=0, runs_dir=runs, variant="kd",
                         finetune_from=student, distill_from=teacher)
    rows = list(csv.DictReader((run.dir / "results.csv").open()))
    distill = [float(v) for k, v in rows[-1].items() if k.strip() == "train/dis_loss"]
    assert distill and distill[0] > 0, "the teacher's feature loss must be part of training"

    # What is saved and exported is the student alone, at its own size.
    YOLO = ultralytics_yolo()
    params = sum(p.numel() for p in YOLO(str(run.last)).model.parameters())
    assert params == sum(p.numel() for p in YOLO(str(student)).model.parameters()) < 1_000_000
    onnx = export_detector(run.last, tmp_path / "student.onnx")
    assert Detector(onnx, threads=1).names == {0: "fire", 1: "smoke"}
    assert no_network == [], f"distillation reached for the network: {no_network}"
