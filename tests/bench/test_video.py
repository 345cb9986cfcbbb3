"""The video benchmark: clips and onsets read from the shared data, replayed through the
real pipeline with the shipped detector, delays counted in seconds of video."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from bench.video import ClipResult, summarize, table, video_clips, sequence_clips
from firewatch.config import OPERATING_POINTS
from firewatch.paths import REPO_ROOT, SHIPPED_DETECTOR, data_root


def test_clips_and_onsets_come_from_labels_csv() -> None:
    clips = {c.name: c for c in video_clips(data_root())}
    assert len(clips) == 6
    assert {n for n, c in clips.items() if c.fire_free} == {
        "intel__car-detection", "intel__one-by-one-person-detection", "intel__bottle-detection"}
    assert clips["navid__fire1"].onset_frame == 15 and clips["navid__fire4"].onset_frame == 0
    assert all(c.frames[0].is_file() for c in clips.values())


def test_sequences_are_ordered_frames_of_one_video_with_a_labelled_onset() -> None:
    clips = sequence_clips(data_root(), ["val"])
    assert clips, "fire/val holds rf__ video sequences"
    for clip in clips:
        assert clip.set == "fire/val" and len(clip.frames) >= 8
        assert all(f.name.startswith(clip.name) for f in clip.frames)
        assert clip.onset_frame is not None and 0 <= clip.onset_frame < len(clip.frames)


def test_summary_counts_delays_misses_and_fire_free_alerts() -> None:
    results = [
        ClipResult("a", "videos", 100, 10, 13, "fire", 0.3, 1, 20.0),
        ClipResult("b", "videos", 100, 10, 40, "fire", 3.0, 2, 20.0),
        ClipResult("c", "videos", 100, 10, None, None, None, 0, 20.0),
        ClipResult("d", "videos", 100, None, 50, "smoke", None, 2, 20.0),
    ]
    s = summarize(results)
    assert (s.fire_clips, s.alerted, s.within_1s, s.worst_delay_s, s.fire_free_alerts) == (3, 2, 1, 3.0, 2)
    assert s.median_delay_s == 1.65
    text = table(results, s)
    assert "missed" in text and "alerted 2/3" in text


def _bench(tmp_path: Path, name: str, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "firewatch.cli", "bench", "video", *args, "--json", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    report["stdout"] = done.stdout
    return report


def test_cli_replays_a_clip_and_writes_json(tmp_path: Path) -> None:
    report = _bench(tmp_path, "video", "--clip", "navid__fire4")
    [clip] = report["clips"]
    assert clip["clip"] == "navid__fire4" and clip["frames"] == 101
    # A close-up fireplace in every frame: the shipped detector must alert on it.
    assert clip["first_alert_frame"] is not None and clip["alerts"] >= 1
    # The delay is the frames after onset at the clip's 10 FPS.
    assert clip["delay_s"] == round((clip["first_alert_frame"] - clip["onset_frame"]) / 10, 2)
    assert "navid__fire4" in report["stdout"]
    # The detector's boxes were cached; a second run reads them and finds the same alert.
    assert list((tmp_path / "cache" / "firewatch" / "bench-video").glob("*navid__fire4*.pkl"))
    again = _bench(tmp_path, "again", "--clip", "navid__fire4")
    assert again["clips"][0]["first_alert_frame"] == clip["first_alert_frame"]


def test_verification_alerts_a_fire_no_later_and_not_the_car_clip(tmp_path: Path) -> None:
    """At the threshold the daemon uses with verification, the car clip (cars seen from above,
    a camera that reads as moving while they pass) alerts through K-of-N alone; verified on
    aligned frames, it does not. The fireplace alerts at the same frame with verification as
    without it."""
    clips = ["--conf", str(OPERATING_POINTS["v2"][0]), "--clip", "navid__fire4", "--clip", "intel__car-detection"]
    on = {c["clip"]: c for c in _bench(tmp_path, "on", "--verify", "on", *clips)["clips"]}
    off = {c["clip"]: c for c in _bench(tmp_path, "off", "--verify", "off", *clips)["clips"]}
    assert off["intel__car-detection"]["alerts"] >= 1, "without verification the car clip alerts"
    assert on["intel__car-detection"]["alerts"] == 0
    assert on["navid__fire4"]["first_alert_frame"] is not None
    assert on["navid__fire4"]["first_alert_frame"] <= off["navid__fire4"]["first_alert_frame"]


# A fire-free val image (a lit room) that the detector confirms by K-of-N alone when held still,
# past both shipped classifiers' veto (models/report/classifier-v2/veto/bench-stills-*).
ROOM = "cairneg__room-004.jpg"


def test_stills_held_in_view_alert_only_without_verification(tmp_path: Path) -> None:
    """Held still for 3 s, a lamp-lit room and a photo of a fire are confirmed by K-of-N
    alone; with verification neither alerts (a photo of a fire is not a fire)."""
    from bench.video import still_images

    photo = next(p.name for p, fire in still_images(data_root()) if fire and p.name.startswith("lz__"))
    args = ["--stills", "--clip", ROOM, "--clip", photo]
    off = {s["image"]: s for s in _bench(tmp_path, "off", "--verify", "off", *args)["stills"]}
    on = {s["image"]: s for s in _bench(tmp_path, "on", "--verify", "on", *args)["stills"]}
    assert off.keys() == on.keys() == {ROOM, photo}
    assert off[ROOM]["alerts"] >= 1 and not off[ROOM]["fire"]
    assert off[photo]["alerts"] >= 1 and off[photo]["fire"]
    assert on[ROOM]["alerts"] == 0 and on[photo]["alerts"] == 0


def test_tiles_are_part_of_the_cache_key_and_still_alert_the_fireplace(tmp_path: Path) -> None:
    report = _bench(tmp_path, "tiles", "--tiles", "2", "--clip", "navid__fire4")
    assert report["clips"][0]["first_alert_frame"] is not None
    cached = sorted(p.name for p in (tmp_path / "cache" / "firewatch" / "bench-video").glob("*navid__fire4*.pkl"))
    assert len(cached) == 1 and "-tiles2-" in cached[0]
    # a change to the tiles' rules is a change of key, not a stale cache
    from bench.video import _cache_path
    from vision.detectors import Detector
    from vision.detectors.tiles import TiledDetector

    clip = next(c for c in video_clips(data_root()) if c.name == "navid__fire4")
    whole = Detector(SHIPPED_DETECTOR, conf_threshold=0.15, iou_threshold=0.5, threads=1)
    keys = {_cache_path(SHIPPED_DETECTOR, clip, 0.15, 0.5, d, 10.0) for d in
            (whole, TiledDetector(whole, 2), TiledDetector(whole, 2, clear_fire=0.7), TiledDetector(whole, 3))}
    assert len(keys | {_cache_path(SHIPPED_DETECTOR, clip, 0.15, 0.5, whole, 5.0)}) == 5


def _write_slowed(source: Path, out: Path, repeat: int) -> int:
    """``source`` with each frame written ``repeat`` times at ``repeat`` x its rate: the same
    seconds of video in more frames. Returns the frame count written."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS)
    writer, count = None, 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps * repeat, frame.shape[1::-1])
        for _ in range(repeat):
            writer.write(frame)
            count += 1
    capture.release()
    writer.release()
    return count


def test_a_faster_file_is_read_at_the_daemons_rate_and_timed_in_its_own_frames(tmp_path: Path) -> None:
    from bench.video import run

    shared = next(c for c in video_clips(data_root()) if c.name == "navid__fire2")
    videos = tmp_path / "data" / "videos"
    videos.mkdir(parents=True)
    frames = _write_slowed(shared.frames[0], videos / "fire2-30fps.mp4", 3)
    # no fps column: the file's own rate converts the onset frame to seconds
    (videos / "labels.csv").write_text(
        f"file,fire_free,fire_onset_frame\nfire2-30fps.mp4,0,{3 * shared.onset_frame}\n")
    fast = run(SHIPPED_DETECTOR, root=tmp_path / "data", cache=False)
    slow = run(SHIPPED_DETECTOR, names=["navid__fire2"], cache=False)
    assert [r.clip for r in fast] == ["fire2-30fps"] and fast[0].delay_s is not None
    # every third frame of the 30 FPS file is a frame of the 10 FPS one: the same replay
    assert fast[0].frames == slow[0].frames == -(-frames // 3)
    assert fast[0].delay_s == slow[0].delay_s
    assert fast[0].first_alert_frame == 3 * slow[0].first_alert_frame


def test_a_labels_row_without_its_onset_is_a_one_line_error(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "clip.mp4").write_bytes(b"")
    (videos / "labels.csv").write_text("file,fire_free,fire_onset_frame,fps\nclip.mp4,0,,10\n")
    with pytest.raises(ValueError, match="clip.mp4 is not fire_free but has no fire_onset_frame"):
        video_clips(tmp_path)
    (videos / "labels.csv").write_text("file,fire_free,fire_onset_frame,fps\nother.mp4,1,,10\n")
    with pytest.raises(FileNotFoundError, match="names other.mp4"):
        video_clips(tmp_path)
    assert video_clips(tmp_path / "nowhere") == []


def test_stills_fire_free_leaves_the_fire_photos_out(tmp_path: Path) -> None:
    from bench.video import still_images

    photo = next(p.name for p, fire in still_images(data_root()) if fire and p.name.startswith("lz__"))
    report = _bench(tmp_path, "free", "--stills", "--fire-free", "--verify", "off", "--clip", ROOM, "--clip", photo)
    assert [s["image"] for s in report["stills"]] == [ROOM]
    assert report["stills"][0]["alerts"] >= 1 and not report["stills"][0]["fire"]
