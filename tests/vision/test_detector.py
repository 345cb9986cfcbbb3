"""Detector: letterbox / NMS / output parsing against hand-computed boxes, and a tiny YOLO
that the tests export themselves (no training: shapes, metadata, providers)."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from firewatch.paths import SHIPPED_DETECTORS
from tests.support.data import FIRE2, SHIPPED_DETECTOR
from vision.detectors import Detector
from vision.detectors.onnxruntime import choose_providers
from vision.detectors.yolo import Letterbox, LetterboxGeometry, postprocess, read_metadata
from vision.geometry import class_nms, nms
from vision.types import Detections

REAL_MODEL = SHIPPED_DETECTOR


# -- pre-processing ---------------------------------------------------------------------


def test_letterbox_geometry_hand_computed():
    g = LetterboxGeometry.fit((360, 640), (320, 320))
    assert g.scale == 0.5
    assert g.resized == (180, 320)
    assert g.pad == (0, 70)  # (320 - 180) / 2 rows above
    box = np.array([[100, 50, 300, 250]], np.float32)
    assert g.to_input(box).tolist() == [[50, 95, 150, 195]]
    np.testing.assert_allclose(g.to_source(g.to_input(box)), box)
    # boxes reaching into the padding are clipped to the image
    assert g.to_source(np.array([[-10, 0, 330, 320]], np.float32)).tolist() == [[0, 0, 640, 360]]


def test_letterbox_fills_reused_buffers_with_rgb_scaled_pixels():
    image = np.zeros((360, 640, 3), np.uint8)
    image[:, :] = (10, 20, 30)  # BGR
    image[:, 320:] = (200, 100, 0)
    letterbox = Letterbox((320, 320))
    blob, g = letterbox(image)
    assert blob.shape == (1, 3, 320, 320) and blob.dtype == np.float32
    # padding rows are grey 114, image rows are RGB / 255
    np.testing.assert_allclose(blob[0, :, 0, 0], [114 / 255] * 3, rtol=1e-6)
    np.testing.assert_allclose(blob[0, :, 100, 10], [30 / 255, 20 / 255, 10 / 255], rtol=1e-6)
    np.testing.assert_allclose(blob[0, :, 100, 300], [0, 100 / 255, 200 / 255], rtol=1e-6)
    again, _ = letterbox(image)
    assert again is blob  # no per-frame allocation of the input tensor
    # a different frame size re-pads: a portrait frame is padded left/right instead
    blob, g = letterbox(np.full((640, 320, 3), 50, np.uint8))
    assert g.pad == (80, 0)
    np.testing.assert_allclose(blob[0, 0, 100, 0], 114 / 255, rtol=1e-6)
    np.testing.assert_allclose(blob[0, 0, 100, 160], 50 / 255, rtol=1e-6)


# -- post-processing --------------------------------------------------------------------


def test_nms_hand_computed():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # IoU(0,1) = 81 / 119 = 0.68; IoU(3,0) = 90 / 100 = 0.9; IoU(3,1) = 72 / 118 = 0.61
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert nms(boxes, scores, 0.65).tolist() == [3, 1, 2]  # 0 goes (0.9 with 3); 1 stays (0.61 with 3)
    assert nms(boxes, scores, 0.95).tolist() == [3, 0, 1, 2]
    assert nms(boxes[:0], scores[:0], 0.5).tolist() == []


def test_class_nms_never_suppresses_across_classes_even_past_the_frame_edge():
    # A fire box in the far corner and a smoke box reaching past the frame's other corner:
    # shifting smoke by the largest coordinate alone would land it on the fire box (IoU 0.51).
    boxes = np.array([[290, 290, 320, 320], [-30, -30, 10, 10], [-30, -30, 9, 9]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert class_nms(boxes, scores, np.array([0, 1, 1]), 0.5).tolist() == [0, 1]
    assert class_nms(boxes, scores, np.array([0, 1, 0]), 0.5).tolist() == [0, 1, 2]
    assert class_nms(boxes[:0], scores[:0], np.zeros(0, int), 0.5).tolist() == []


def test_postprocess_filters_suppresses_per_class_and_maps_back():
    g = LetterboxGeometry.fit((360, 640), (320, 320))  # scale 0.5, pad y 70
    # anchors as columns: cx, cy, w, h, score(fire), score(smoke)
    anchors = np.array(
        [
            [100, 100, 40, 20, 0.90, 0.05],  # fire, kept
            [102, 100, 40, 20, 0.80, 0.10],  # same fire, suppressed
            [100, 100, 40, 20, 0.05, 0.60],  # smoke on the same spot: other class, kept
            [200, 200, 20, 20, 0.20, 0.10],  # below threshold
        ],
        np.float32,
    )
    dets = postprocess(anchors.T[None], g, conf_threshold=0.25, iou_threshold=0.45)
    assert dets.class_id.tolist() == [0, 1]
    np.testing.assert_allclose(dets.confidence, [0.9, 0.6])
    # input (80, 90, 120, 110) -> source ((80-0)/0.5, (90-70)/0.5, ...)
    np.testing.assert_allclose(dets.xyxy, [[160, 40, 240, 80], [160, 40, 240, 80]])
    none = postprocess(anchors.T[None] * [[1], [1], [1], [1], [0], [0]], g, 0.25, 0.45)
    assert len(none) == 0 and none.xyxy.shape == (0, 4)


def test_postprocess_end_to_end_head():
    g = LetterboxGeometry.fit((320, 320), (320, 320))
    rows = np.array([[[10, 10, 50, 60, 0.9, 1], [0, 0, 5, 5, 0.1, 0]]], np.float32)
    dets = postprocess(rows, g, 0.25, 0.45)
    assert dets.class_id.tolist() == [1] and dets.xyxy.tolist() == [[10, 10, 50, 60]]


def test_provider_preference():
    assert choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    available = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    assert choose_providers(available) == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(available, ["CUDAExecutionProvider"]) == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_metadata_fallbacks():
    names, imgsz = read_metadata({"names": "{0: 'fire', 1: 'smoke'}", "imgsz": "[384, 640]"}, [1, 3, 384, 640])
    assert names == {0: "fire", 1: "smoke"} and imgsz == (384, 640)
    assert read_metadata({}, [1, 3, 256, 256]) == ({}, (256, 256))


# -- a real ONNX model ------------------------------------------------------------------


def test_tiny_model_metadata_output_and_providers(tiny_onnx, caplog):
    caplog.set_level(logging.INFO, logger="vision.detectors")
    detector = Detector(tiny_onnx, conf_threshold=0.0, threads=1, max_det=50)
    assert detector.names == {0: "fire", 1: "smoke"}
    assert detector.imgsz == (320, 320)
    assert detector.providers == ["CPUExecutionProvider"]
    assert "providers ['CPUExecutionProvider']" in caplog.text

    image = cv2.imread(str(FIRE2[0]))
    wide = cv2.resize(image, (640, 360))
    dets = detector(wide)
    assert isinstance(dets, Detections)
    assert 0 < len(dets) <= 50  # threshold 0 keeps boxes; NMS and max_det bound them
    assert dets.xyxy.dtype == np.float32 and dets.class_id.dtype == np.int32
    assert (dets.xyxy[:, [0, 2]] <= 640).all() and (dets.xyxy[:, [1, 3]] <= 360).all() and (dets.xyxy >= 0).all()
    assert set(dets.class_id.tolist()) <= {0, 1}
    assert np.all(np.diff(dets.confidence) <= 0)  # best first
    # the same input twice gives the same answer (reused buffers are not stale)
    dets2 = detector(wide)
    np.testing.assert_array_equal(dets.xyxy, dets2.xyxy)


def test_replay_end_to_end_through_onnx_detector(tiny_onnx, tmp_path):
    from vision.replay import replay

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, path in enumerate(FIRE2[:8]):
        (folder / f"{i:03d}.jpg").symlink_to(path)
    summary = replay(
        folder, model=tiny_onnx, events=tmp_path / "events.jsonl", out_video=tmp_path / "out.mp4",
        snapshots=tmp_path / "snaps", fps=10, threads=1, camera="yard",
    )
    assert summary.frames == 8
    assert summary.providers == ["CPUExecutionProvider"]
    assert summary.source_seconds == pytest.approx(0.7)
    video = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    video.release()
    for line in (tmp_path / "events.jsonl").read_text().splitlines():
        assert json.loads(line)["event"] in {"started", "updated", "cleared", "health"}


@pytest.mark.parametrize("name", sorted(SHIPPED_DETECTORS))
def test_every_shipped_detector_finds_the_fire_in_fire2(tmp_path, name):
    from vision.replay import replay

    detector = Detector(SHIPPED_DETECTORS[name][0], threads=2)
    assert set(detector.names.values()) >= {"fire", "smoke"}
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, path in enumerate(FIRE2[:40]):  # the frames with fire
        (folder / f"{i:03d}.jpg").symlink_to(path)
    summary = replay(folder, detector=detector, events=tmp_path / "events.jsonl", fps=10)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert any(e["event"] == "started" and e["class"] == "fire" for e in events), summary
