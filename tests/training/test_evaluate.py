"""Detector evaluation: the metric code against hand-made detections on real val images,
and a real ONNX run (the shipped model, else an untrained export) writing JSON and plots."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.data import DATA, SHIPPED_DETECTOR
from vision.types import Detections

pytest.importorskip("ultralytics", reason="evaluation uses ultralytics' metrics (train extra)")

from training.evaluate import (  # noqa: E402
    EvalAccumulator,
    GroundTruth,
    SweepRow,
    evaluate,
    find_samples,
    SmallFireImages,
    match,
    source_of,
)

FIRE = DATA / "fire"
NAMES = {0: "fire", 1: "smoke"}


def _pick(kind: str, n: int) -> list[str]:
    """``n`` val images of one kind from the manifest: fire, smoke-only or empty."""
    with open(FIRE / "manifest.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "val"]
    wanted = {
        "fire": lambda r: int(r["n_fire"]) > 0,
        "smoke": lambda r: int(r["n_fire"]) == 0 and int(r["n_smoke"]) > 0,
        "empty": lambda r: int(r["n_fire"]) == 0 and int(r["n_smoke"]) == 0,
    }[kind]
    return [Path(r["file"]).stem for r in rows if wanted(r)][:n]


@pytest.fixture(scope="module")
def tiny_yolo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """images/ + labels/ with 3 fire, 2 smoke-only and 2 label-free val images."""
    root = tmp_path_factory.mktemp("tiny-val")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    for kind, n in (("fire", 3), ("smoke", 2), ("empty", 2)):
        for stem in _pick(kind, n):
            shutil.copy(FIRE / "images" / "val" / f"{stem}.jpg", root / "images")
            shutil.copy(FIRE / "labels" / "val" / f"{stem}.txt", root / "labels")
    return root


def _truths(root: Path) -> list[GroundTruth]:
    out = []
    for s in find_samples(root):
        image = cv2.imread(str(s.image))
        out.append(GroundTruth.read(s.label, image.shape[:2]))
    return out


# -- data and matching ------------------------------------------------------------------


def test_find_samples_reads_the_val_split_of_a_data_yaml():
    samples = find_samples(FIRE)
    assert len(samples) == 944  # the README's val count
    assert all(s.label.parent == FIRE / "labels" / "val" for s in samples)
    subset = find_samples(FIRE / "data.yaml", limit=10)
    assert len(subset) == 10
    assert subset[0] == samples[0] and subset[-1] == samples[-1]  # evenly spaced over all sources


def test_ground_truth_from_normalised_labels(tmp_path):
    label = tmp_path / "a.txt"
    label.write_text("0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.2 0.2\n")
    gt = GroundTruth.read(label, (100, 200))  # h, w
    np.testing.assert_allclose(gt.xyxy, [[80, 30, 120, 70], [0, 0, 40, 20]])
    assert gt.class_id.tolist() == [0, 1]
    assert len(GroundTruth.read(tmp_path / "missing.txt", (100, 200))) == 0


def test_match_is_greedy_one_to_one_and_class_aware():
    gt = GroundTruth(np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32), np.array([0, 0], np.int32))
    dets = Detections(
        np.array([[0, 0, 10, 10], [0, 0, 10, 8], [20, 20, 30, 36], [20, 20, 30, 30]], np.float32),
        np.array([0.5, 0.9, 0.8, 0.7], np.float32),
        np.array([0, 0, 0, 1], np.int32),
    )
    correct = match(dets, gt, np.array([0.5, 0.75, 0.95]))
    # det 1 (0.9, IoU 0.8) claims label 0 first, so the exact box 0 (0.5) finds it taken;
    # det 2 has IoU 100/160 = 0.625 with label 1; det 3 is the wrong class.
    assert correct.tolist() == [
        [False, False, True],  # at 0.95 label 0 is still free when det 0 comes
        [True, True, False],
        [True, False, False],
        [False, False, False],
    ]


# -- the metric code, fed by hand -------------------------------------------------------


def test_ground_truth_fed_back_scores_one(tiny_yolo, tmp_path):
    acc = EvalAccumulator(NAMES, conf=0.35, iou=0.5)
    for gt in _truths(tiny_yolo):
        acc.add(gt, Detections(gt.xyxy, np.full(len(gt), 0.9), gt.class_id))
    report = acc.report(out_dir=tmp_path)
    # 0.995 is ultralytics' ceiling: its 101-point curve is integrated with the trapezoid rule
    # and drops to precision 0 at recall 1.0 (pycocotools would say 1.0). Kept so that numbers
    # compare with `yolo val` and the training log.
    assert report.map50 == report.map50_95 == 0.995
    for c in report.classes.values():
        assert c.labels > 0 and (c.precision, c.recall, c.f1) == (1.0, 1.0, 1.0)
    assert report.image_fire.f1 == 1.0 and report.image_fire.positives == 3
    assert (report.fp_rate_fire_free.images, report.fp_rate_fire_free.rate) == (4, 0.0)
    assert (report.fp_rate_no_labels.images, report.fp_rate_no_labels.rate) == (2, 0.0)
    cm = np.array(report.confusion_matrix)
    assert cm[0, 0] == report.classes["fire"].labels and cm[1, 1] == report.classes["smoke"].labels
    assert cm.sum() == cm.trace()
    assert Path(report.plots["pr_curve"]).stat().st_size > 0


def test_misses_and_false_alarms_are_counted(tiny_yolo):
    truths = _truths(tiny_yolo)
    fire = [g for g in truths if (g.class_id == 0).any()]
    smoke_only = [g for g in truths if len(g) and not (g.class_id == 0).any()]
    empty = [g for g in truths if not len(g)]
    assert (len(fire), len(smoke_only), len(empty)) == (3, 2, 2)
    box = Detections(np.array([[10, 10, 60, 60]], np.float32), [0.8], [0])
    acc = EvalAccumulator(NAMES, conf=0.35, iou=0.5)
    acc.add(fire[0], Detections.empty())  # a missed fire image
    for gt in fire[1:]:
        acc.add(gt, Detections(gt.xyxy, np.full(len(gt), 0.9), gt.class_id))
    acc.add(smoke_only[0], box)  # fire alarm on a smoke-only image
    acc.add(smoke_only[1], Detections.empty())
    acc.add(empty[0], box)  # fire alarm on a label-free image
    acc.add(empty[1], Detections(box.xyxy, [0.2], [0]))  # below the operating threshold
    report = acc.report()
    f = report.image_fire
    assert (f.positives, f.predicted, f.true_positives) == (3, 4, 2)
    assert f.precision == 0.5 and f.recall == pytest.approx(2 / 3, abs=1e-4)
    assert (report.fp_rate_fire_free.flagged, report.fp_rate_fire_free.rate) == (2, 0.5)
    assert (report.fp_rate_no_labels.flagged, report.fp_rate_no_labels.rate) == (1, 0.5)
    fire_labels = sum(int((g.class_id == 0).sum()) for g in fire)
    found = fire_labels - int((fire[0].class_id == 0).sum())
    assert report.classes["fire"].recall == pytest.approx(found / fire_labels, abs=1e-4)
    assert report.classes["fire"].detections == found + 2  # the 0.2 one is below the threshold
    assert report.classes["fire"].ap50 < 1.0
    assert report.classes["smoke"].recall < 1.0 and report.classes["smoke"].ap50 < 1.0  # smoke-only images
    # by size: every fire label in one bucket; the missed image's labels are the only misses
    buckets = report.fire_recall_by_size
    assert sum(b.labels for b in buckets) == fire_labels and sum(b.found for b in buckets) == found
    h, w = fire[0].shape
    for xyxy in fire[0].xyxy[fire[0].class_id == 0]:
        share = (xyxy[2] - xyxy[0]) * (xyxy[3] - xyxy[1]) / (h * w)
        bucket = next(b for b in buckets if b.lo <= share < b.hi)
        assert bucket.found < bucket.labels


def test_threshold_sweep_with_and_without_the_veto(tiny_yolo):
    truths = _truths(tiny_yolo)
    fire = [g for g in truths if (g.class_id == 0).any()]
    smoke_only = [g for g in truths if len(g) and not (g.class_id == 0).any()]
    empty = [g for g in truths if not len(g)]
    box = Detections(np.array([[10, 10, 60, 60]], np.float32), [0.8], [0])
    acc = EvalAccumulator(NAMES, conf=0.25, iou=0.5)
    acc.add(fire[0], Detections.empty(), np.zeros(0, bool))
    for gt in fire[1:]:
        acc.add(gt, Detections(gt.xyxy, np.full(len(gt), 0.9), gt.class_id), np.zeros(len(gt), bool))
    acc.add(smoke_only[0], box, np.array([True]))  # the classifier vetoes this false fire
    acc.add(smoke_only[1], Detections.empty(), np.zeros(0, bool))
    acc.add(empty[0], box, np.array([False]))  # ... but not this one
    acc.add(empty[1], Detections(box.xyxy, [0.2], [0]), np.array([False]))
    rows = {r.conf: r for r in acc.report().image_sweep}
    at25, at10 = rows[0.25], rows[0.10]
    # 0.25: fire images 2/3 found; false fire on 2 of the 4 fire-free images, 1 after the veto
    assert (at25.precision, at25.recall, at25.fp_rate) == (0.5, pytest.approx(2 / 3, abs=1e-4), 0.5)
    assert (at25.precision_veto, at25.recall_veto, at25.fp_rate_veto) == (
        pytest.approx(2 / 3, abs=1e-4), pytest.approx(2 / 3, abs=1e-4), 0.25)
    # 0.10 also flags the 0.2 box
    assert (at10.precision, at10.fp_rate, at10.fp_rate_veto) == (0.4, 0.75, 0.5)
    assert rows[0.5] == SweepRow(0.5, *(getattr(at25, f) for f in ("precision", "recall", "f1", "fp_rate",
                                                                   "precision_veto", "recall_veto", "f1_veto",
                                                                   "fp_rate_veto")))
    # the sweep agrees with the operating-point numbers at the operating threshold
    assert at25.f1 == acc.report().image_fire.f1


def _fire(*boxes: tuple[float, float, float, float], shape: tuple[int, int] = (1000, 1000)) -> GroundTruth:
    return GroundTruth(np.array(boxes, np.float32).reshape(-1, 4), np.zeros(len(boxes), np.int32), shape)


def _dets(*boxes: tuple[float, float, float, float], conf: float = 0.9) -> Detections:
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), conf), np.zeros(len(boxes)))


def test_a_box_drawn_narrower_than_the_label_counts_at_iou_03_only():
    acc = EvalAccumulator(NAMES, conf=0.25, iou=0.5)
    acc.add(_fire((0, 0, 100, 100)), _dets((0, 0, 100, 45)))  # IoU 0.45: the same fire, half drawn
    fire = acc.report().classes["fire"]
    assert fire.ap50 == 0.0 and fire.ap30 == 0.995
    assert acc.report().classes["smoke"].ap30 is None  # no smoke labels


def test_image_level_fire_ap_ranks_images_by_their_best_fire_box():
    acc = EvalAccumulator(NAMES, conf=0.25, iou=0.5)
    acc.add(_fire((0, 0, 100, 100)), _dets((0, 0, 100, 100), conf=0.9))
    acc.add(_fire((0, 0, 100, 100)), _dets((500, 500, 600, 600), conf=0.3))  # a box, on the wrong spot
    acc.add(_fire(), _dets((0, 0, 50, 50), conf=0.5))  # fire-free, ranked between them
    acc.add(_fire(), Detections.empty())
    # ranks: fire 0.9 (precision 1/1), fire-free 0.5, fire 0.3 (2/3): AP = (1 + 2/3) / 2
    assert acc.report().image_fire_ap == pytest.approx(5 / 6, abs=1e-4)


def test_images_with_only_small_fires_count_a_box_on_one_of_them():
    acc = EvalAccumulator(NAMES, conf=0.25, iou=0.5)
    # 1 % of the frame, boxed by a smaller box inside it (IoU 0.25, but it is on the fire)
    acc.add(_fire((0, 0, 100, 100), (300, 300, 310, 310)), _dets((20, 20, 70, 70)))
    acc.add(_fire((0, 0, 100, 100)), _dets((500, 500, 600, 600)))  # boxed elsewhere: not found
    acc.add(_fire((0, 0, 100, 100)), _dets((0, 0, 100, 100), conf=0.1))  # below the threshold
    acc.add(_fire((0, 0, 100, 100), (0, 0, 400, 400)), Detections.empty())  # has a large fire: not counted
    assert acc.report().small_fire_images == SmallFireImages(0.02, 3, 1, round(1 / 3, 4))


def test_ap_by_source_from_file_name_prefixes():
    assert (source_of(Path("lz__train__x.jpg")), source_of(Path("x.jpg"))) == ("lz", "")
    acc = EvalAccumulator(NAMES, conf=0.25, iou=0.5)
    acc.add(_fire((0, 0, 100, 100)), _dets((0, 0, 100, 100)), source="good")
    acc.add(_fire((0, 0, 100, 100)), _dets((0, 0, 100, 45)), source="narrow")
    acc.add(_fire(), _dets((0, 0, 50, 50)), source="empty")
    by = acc.report().by_source
    assert (by["good"].ap50["fire"], by["narrow"].ap50["fire"], by["narrow"].ap30["fire"]) == (0.995, 0.0, 0.995)
    assert by["empty"].labels == {"fire": 0, "smoke": 0} and by["empty"].ap50["fire"] is None
    assert by["good"].images == 1 and by["good"].ap50["smoke"] is None
    one = EvalAccumulator(NAMES, conf=0.25, iou=0.5)
    one.add(_fire((0, 0, 100, 100)), _dets((0, 0, 100, 100)))
    assert one.report().by_source == {}


# -- a real model -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector_model(request) -> Path:
    """The shipped detector if there is one, else an untrained export (metrics near 0)."""
    return SHIPPED_DETECTOR if SHIPPED_DETECTOR.is_file() else request.getfixturevalue("tiny_onnx")


def test_real_onnx_run_writes_json_and_plots(tiny_yolo, detector_model, tmp_path):
    report = evaluate(
        tiny_yolo, detector_model, conf=0.35, threads=1, out_dir=tmp_path / "plots", json_path=tmp_path / "r.json"
    )
    saved = json.loads((tmp_path / "r.json").read_text())
    assert {"map50", "map50_95", "classes", "image_fire", "fp_rate_fire_free", "fp_rate_no_labels",
            "confusion_matrix", "plots"} <= saved.keys()
    assert saved["images"] == 7 and set(saved["classes"]) == {"fire", "smoke"}
    assert saved["classes"]["fire"]["labels"] == sum(int((g.class_id == 0).sum()) for g in _truths(tiny_yolo))
    assert 0.0 <= saved["map50_95"] <= saved["map50"] <= 1.0
    for c in saved["classes"].values():
        assert c["ap50"] <= c["ap30"]  # a hit at IoU 0.5 is a hit at 0.3
    assert 0.0 < saved["image_fire_ap"] <= 1.0
    sources = {source_of(s.image) for s in find_samples(tiny_yolo)}
    assert set(saved["by_source"]) == (sources if len(sources) > 1 else set())  # one source: no breakdown
    assert (saved["fp_rate_fire_free"]["images"], saved["fp_rate_no_labels"]["images"]) == (4, 2)
    # every label lands in one column of the confusion matrix (found or missed)
    cm = np.array(saved["confusion_matrix"])
    assert cm[:, :2].sum() == sum(len(g) for g in _truths(tiny_yolo))
    for key in ("pr_curve", "confusion_matrix", "confusion_matrix_normalized"):
        png = Path(saved["plots"][key])
        assert png.suffix == ".png" and png.read_bytes()[:4] == b"\x89PNG"
    assert report.ms_per_image and report.ms_per_image > 0


def test_classifier_veto_only_ever_removes_fire_flags(tiny_yolo, detector_model):
    from tests.support.data import SHIPPED_CLASSIFIER

    if not SHIPPED_CLASSIFIER.is_file():
        pytest.skip("no shipped classifier")
    report = evaluate(tiny_yolo, detector_model, conf=0.25, threads=1, classifier=SHIPPED_CLASSIFIER, verbose=False)
    assert report.veto == 0.9 and len(report.image_sweep) >= 5
    for row in report.image_sweep:
        assert row.fp_rate_veto is not None and row.fp_rate_veto <= row.fp_rate
        assert row.recall_veto <= row.recall
    assert "F1 veto" in report.table()
    plain = evaluate(tiny_yolo, detector_model, conf=0.25, threads=1, verbose=False)
    assert plain.veto is None and all(r.f1_veto is None for r in plain.image_sweep)
    assert [r.f1 for r in plain.image_sweep] == [r.f1 for r in report.image_sweep]


def test_false_alarm_sheet_lists_what_evaluate_counts(tiny_yolo, detector_model, tmp_path):
    from training.false_alarm_sheet import TILE, main

    conf = 0.05  # low, so that the 4 fire-free images raise some alarms to draw
    report = evaluate(tiny_yolo, detector_model, conf=conf, threads=1, verbose=False)
    out = tmp_path / "sheet.png"
    alarms = main(["--data", str(tiny_yolo), "--model", str(detector_model), "--conf", str(conf), "--out", str(out)])
    assert len(alarms) == report.fp_rate_fire_free.flagged
    for alarm in alarms:
        label = tiny_yolo / "labels" / f"{alarm.image.stem}.txt"
        assert not label.is_file() or not any(line.split()[0] == "0" for line in label.read_text().splitlines())
        assert alarm.scores and min(alarm.scores) >= conf and list(alarm.scores) == sorted(alarm.scores, reverse=True)
    if alarms:
        sheet = cv2.imread(str(out))
        assert sheet.shape[1] == 6 * TILE[0] and sheet.shape[0] == -(-len(alarms) // 6) * TILE[1]


def test_tiles_find_more_small_fires_in_the_same_evaluation(tmp_path):
    """The daemon's tile setting, evaluated: a small fire that the whole frame misses is found,
    and the labels counted stay the same."""
    small = "lz__train__fire_smoke_802"  # one fire of 0.22 % of a 512 x 288 frame
    root = tmp_path / "val"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for stem in [small, *_pick("fire", 2), *_pick("empty", 1)]:
        shutil.copy(FIRE / "images" / "val" / f"{stem}.jpg", root / "images")
        shutil.copy(FIRE / "labels" / "val" / f"{stem}.txt", root / "labels")
    whole = evaluate(root, SHIPPED_DETECTOR, conf=0.15, threads=1, verbose=False)
    tiled = evaluate(root, SHIPPED_DETECTOR, conf=0.15, threads=1, verbose=False, tiles=2)
    smallest = (whole.fire_recall_by_size[0], tiled.fire_recall_by_size[0])
    assert smallest[0].labels == smallest[1].labels >= 1
    assert smallest[1].found > smallest[0].found
    assert tiled.classes["fire"].labels == whole.classes["fire"].labels
