"""Tiles for small fires: the grid's geometry, the merge rules, and the shipped detector
finding a small fire in a real val image that the whole frame misses."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from firewatch.config import ConfigError, load_settings
from firewatch.wiring import build_pipelines
from tests.support.data import FIRE, FIRE2, SHIPPED_DETECTOR, fire_free_cctv
from training.evaluate import GroundTruth
from vision.detectors import Detector
from vision.detectors.tiles import Tile, TiledDetector, tile_grid, tiled
from vision.geometry import box_iou_matrix
from vision.zones import ZoneSet, box_zone

# 512 × 288, one labelled fire of 0.22 % of the frame (about 23 × 14 px).
SMALL_FIRE = FIRE / "images" / "val" / "lz__train__fire_smoke_802.jpg"


def test_a_two_by_two_grid_covers_the_frame_with_overlapping_tiles():
    tiles = tile_grid((300, 500), grid=2, overlap=0.1)
    assert tiles == [Tile(0, 0, 180, 300), Tile(0, 200, 180, 300), Tile(120, 0, 180, 300), Tile(120, 200, 180, 300)]
    covered = np.zeros((300, 500), bool)
    for t in tiles:
        covered[t.y : t.y + t.h, t.x : t.x + t.w] = True
    assert covered.all()
    # neighbours share 0.1 of the frame's side
    assert tiles[0].x + tiles[0].w - tiles[1].x == 100 and tiles[0].y + tiles[0].h - tiles[2].y == 60
    with pytest.raises(ValueError, match="at least 2"):
        tile_grid((300, 500), grid=1, overlap=0.1)


def test_boxes_cut_by_an_inner_tile_edge_are_marked_and_frame_edges_are_not():
    top_left = Tile(0, 0, 180, 300)
    boxes = np.array([
        [0, 0, 40, 40],        # on the frame's own edges: whole
        [100, 50, 150, 90],    # inside
        [260, 50, 299, 90],    # reaches the tile's right edge, which lies inside the frame
        [100, 150, 150, 179],  # reaches its bottom edge, inside the frame too
    ], np.float32)
    assert top_left.cut(boxes, (300, 500)).tolist() == [False, False, True, True]
    bottom_right = Tile(120, 200, 180, 300)
    assert bottom_right.cut(np.array([[400, 250, 500, 300], [200, 200, 260, 260]], np.float32),
                            (300, 500)).tolist() == [False, True]


def fire_found(detections, label: np.ndarray, conf: float) -> bool:
    keep = (detections.class_id == 0) & (detections.confidence >= conf)
    return bool(len(label) and keep.any() and (box_iou_matrix(label, detections.xyxy[keep]) >= 0.5).any())


def fire_label(image: np.ndarray) -> np.ndarray:
    truth = GroundTruth.read(FIRE / "labels" / "val" / f"{SMALL_FIRE.stem}.txt", image.shape[:2])
    return truth.xyxy[truth.class_id == 0]


def test_tiles_find_a_small_fire_that_the_whole_frame_misses():
    image = cv2.imread(str(SMALL_FIRE))
    label = fire_label(image)
    assert len(label) == 1
    whole = Detector(SHIPPED_DETECTOR, conf_threshold=0.05, iou_threshold=0.5, threads=1)
    tiles = TiledDetector(whole, grid=2)
    assert not fire_found(whole(image), label, conf=0.15)
    found = tiles(image)
    assert fire_found(found, label, conf=0.15)
    # everything the whole frame found stays, and the tiles add fire boxes only
    alone = whole(image)
    assert len(found) >= len(alone)
    assert set(found.class_id[~np.isin(found.confidence, alone.confidence)].tolist()) <= {0}


def test_a_clear_large_fire_costs_one_model_call_and_comes_out_unchanged():
    """Fire2's flames fill a large part of the frame, confidently: the whole frame alerts on
    them by itself, so the tiles do not run. Made to run, their boxes of those flames are too
    big or cut by a tile edge, and the whole frame's detections still come out unchanged."""
    image = cv2.imread(str(FIRE2[6]))
    whole = Detector(SHIPPED_DETECTOR, conf_threshold=0.25, iou_threshold=0.5, threads=1)
    alone = whole(image)
    big = (alone.xyxy[:, 2] - alone.xyxy[:, 0]) * (alone.xyxy[:, 3] - alone.xyxy[:, 1]) / image.shape[0] / image.shape[1]
    assert ((alone.class_id == 0) & (big > 0.02) & (alone.confidence >= 0.5)).any()
    skipping = TiledDetector(whole, grid=2)
    np.testing.assert_array_equal(skipping(image).xyxy, alone.xyxy)
    assert (skipping.frames, skipping.tiled_frames) == (1, 0)
    running = TiledDetector(whole, grid=2, clear_fire=1.01)
    tiled_found = running(image)
    assert running.tiled_frames == 1
    np.testing.assert_allclose(tiled_found.xyxy[np.argsort(-tiled_found.confidence)][: len(alone)],
                               alone.xyxy[np.argsort(-alone.confidence)], atol=1e-3)


def test_a_clear_fire_in_an_ignore_zone_does_not_stop_the_tiles_elsewhere():
    """The small fire's scene beside fire2's large flames: the flames are a clear fire, so no
    tiles; inside an ignore zone (a fireplace) they no longer count, and the scene's smoke
    outside the zone opens the gate."""
    small = cv2.imread(str(SMALL_FIRE))
    big = cv2.imread(str(FIRE2[6]))
    big = cv2.resize(big, (round(big.shape[1] * small.shape[0] / big.shape[0]), small.shape[0]))
    scene = np.hstack([small, big])
    whole = Detector(SHIPPED_DETECTOR, conf_threshold=0.15, iou_threshold=0.5, threads=1)
    plain = TiledDetector(whole, grid=2)
    plain(scene)
    assert plain.tiled_frames == 0
    fireplace = ZoneSet([box_zone("fireplace", (small.shape[1] / scene.shape[1], 0, 1, 1), padding=0)])
    zoned = TiledDetector(whole, grid=2, zones=fireplace)
    zoned(scene)
    assert zoned.tiled_frames == 1
    # the whole of the scene inside the zone: nothing left to look closer at
    everything = TiledDetector(whole, grid=2, zones=ZoneSet([box_zone("all", (0, 0, 1, 1), padding=0)]))
    everything(scene)
    assert everything.tiled_frames == 0


def test_the_staged_calls_match_the_whole_call_and_feed_five_model_inputs():
    image = cv2.imread(str(SMALL_FIRE))
    tiles = TiledDetector(Detector(SHIPPED_DETECTOR, conf_threshold=0.05, iou_threshold=0.5, threads=1), grid=2)
    assert len(tiles.model_inputs(image)) == 5
    staged, whole = tiles.decode(tiles.infer(tiles.prepare(image))), tiles(image)
    np.testing.assert_array_equal(staged.xyxy, whole.xyxy)
    assert tiled(tiles.detector, 1) is tiles.detector


def test_tiles_leave_the_next_frames_letterbox_alone():
    """The pipeline letterboxes frame n+1 on its feed thread while frame n's tiles are
    letterboxed on the model's thread: the tiles must not write into the frame's buffers."""
    tiles = TiledDetector(Detector(SHIPPED_DETECTOR, conf_threshold=0.05, iou_threshold=0.5, threads=1), grid=2)
    current = tiles.prepare(cv2.imread(str(SMALL_FIRE)))
    following = tiles.prepare(cv2.imread(str(FIRE2[6])))
    canvas = tiles.detector.letterbox.canvas.copy()
    assert tiles.infer(current).tiles, "the small fire's frame runs its tiles"
    np.testing.assert_array_equal(tiles.detector.letterbox.canvas, canvas)
    np.testing.assert_array_equal(following.whole.blob, tiles.detector.prepare(cv2.imread(str(FIRE2[6]))).blob)


def test_tiles_run_only_where_the_whole_frame_has_a_candidate():
    """A fire-free CCTV frame costs one model call; the small fire's frame, where the whole
    frame sees its smoke but not its flame, gets its tiles."""
    quiet = cv2.imread(str(fire_free_cctv(1)[0]))
    small = cv2.imread(str(SMALL_FIRE))
    whole = Detector(SHIPPED_DETECTOR, conf_threshold=0.05, iou_threshold=0.5, threads=1)
    gated = TiledDetector(whole, grid=2, gate=0.15)
    alone = whole(quiet)
    assert not (alone.confidence >= 0.15).any()
    np.testing.assert_array_equal(gated(quiet).xyxy, alone.xyxy)
    assert (gated.frames, gated.tiled_frames) == (1, 0)
    gated(small)
    assert (gated.frames, gated.tiled_frames) == (2, 1)
    # with the gate above every score in the frame, the tiles never run
    top = whole(small).confidence.max()
    assert not fire_found(TiledDetector(whole, grid=2, gate=float(top) + 0.01)(small),
                          fire_label(small), conf=0.15)


def test_the_setting_and_a_camera_key_choose_tiles_per_camera(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0.jpg"), cv2.imread(str(FIRE2[0])))
    config = tmp_path / "firewatch.yaml"
    config.write_text(f"detector_tiles: 2\ncameras:\n  - name: yard\n    source: {frames}\n"
                      f"  - name: kitchen\n    source: {frames}\n    tiles: 1\n")
    monkeypatch.setenv("FIREWATCH_DETECTOR_MODEL", str(SHIPPED_DETECTOR))
    settings = load_settings(env_file=None, config_file=config)
    pipelines = build_pipelines(settings, sinks=[])
    assert isinstance(pipelines["yard"].detector, TiledDetector)
    assert pipelines["yard"].detector.zones is pipelines["yard"].zones  # zones the bot adds count too
    assert not isinstance(pipelines["kitchen"].detector, TiledDetector)
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"cameras:\n  - name: yard\n    source: {frames}\n    tiles: 9\n")
    with pytest.raises(ConfigError, match="tiles"):
        load_settings(env_file=None, config_file=bad)
