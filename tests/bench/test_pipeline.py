"""The pipeline benchmark runs end to end on a few real frames and returns sane, JSON-able
numbers (no timing assertions: speed targets live in the benchmark's own report)."""

from __future__ import annotations

import json

import pytest

from bench.pipeline import (
    STAGE_THREADS,
    STAGES,
    false_alerts_per_hour,
    find_sequences,
    fire_free_images,
    label_classes,
    main,
    table,
    time_to_alert,
)
from tests.support.data import DATA

FIRE = DATA / "fire"

pytestmark = pytest.mark.skipif(not FIRE.is_dir(), reason="dataset not available")


def test_pipeline_bench_structure(tiny_onnx):
    result = main(tiny_onnx, FIRE / "images" / "train", n_frames=8, threads=1, fire_free=2, rounds=2)
    json.dumps(result)  # JSON-able as returned
    assert result["frames"] == 8 and result["rounds"] == 2
    assert result["bare_fps"] > 0 and result["pipeline_fps"] > 0
    assert result["ratio"] > 0 and len(result["ratio_rounds"]) == 2
    assert 0 < result["inference_share"] < 1
    assert [s["stage"] for s in result["stages"]] == list(STAGES)
    stages = {s["stage"]: s for s in result["stages"]}
    assert all(s["ms_per_frame"] >= 0 for s in stages.values())
    for timed in ("letterbox", "session_run", "postprocess", "tracker", "events", "health"):
        assert stages[timed]["ms_per_frame"] > 0, timed
    # Each thread's stages add up to at most its whole time (they run side by side).
    for thread, names in STAGE_THREADS.items():
        assert {s["thread"] for s in result["stages"] if s["stage"] in names} == {thread}
        assert 0 < sum(stages[name]["share"] for name in names) <= 1.01, thread
    assert result["providers"] == ["CPUExecutionProvider"]
    assert "session.run" in table(result) and "infer" in table(result)


def test_pipeline_bench_with_tiles_runs_the_tiled_detector(tiny_onnx):
    result = main(tiny_onnx, FIRE / "images" / "train", n_frames=4, threads=1, rounds=1, tiles=2)
    assert (result["tiles"], result["frames"]) == (2, 4)
    assert result["bare_fps"] > 0 and result["pipeline_fps"] > 0
    assert "tiles 2" in table(result)


def test_sequences_follow_the_labels():
    sequences = {s.name: s for s in find_sequences(FIRE / "images" / "val")}
    seq = sequences["val/rf__pexels-alan-w-8365989_mp4"]
    numbers = [int(p.name.split("_mp4-")[1].split("_")[0]) for p in seq.frames]
    assert numbers == sorted(numbers) and len(numbers) == 22
    # smoke from the first frame, fire from frame 12 (see the label files)
    assert seq.first_with({1}) == 0 and seq.first_with({0}) == 12
    assert 0 not in label_classes(seq.frames[11]) and 0 in label_classes(seq.frames[12])


def test_alert_timing_and_false_alerts_run(tiny_onnx):
    seq = next(s for s in find_sequences(FIRE / "images" / "val") if s.name.endswith("smoke5_mp4"))
    (timing,) = time_to_alert(tiny_onnx, [seq], threads=1)
    assert timing.frames == 20 and timing.first_fire_frame == 14 and timing.first_labelled_frame == 0
    if timing.fire_alert_frame is not None:  # an untrained model rarely alerts at all
        assert timing.time_to_fire_alert_s == pytest.approx((timing.fire_alert_frame - 14) / 10)

    negatives = fire_free_images(FIRE / "images" / "val")[:3]
    assert negatives and all(not label_classes(p) for p in negatives)
    fa = false_alerts_per_hour(tiny_onnx, negatives, hold_frames=4, threads=1)
    assert fa.frames == 12 and fa.video_hours == pytest.approx(12 / 10 / 3600, abs=1e-4)
    assert fa.per_hour == pytest.approx(fa.started / (12 / 10 / 3600), rel=0.01)
