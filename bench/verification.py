"""Per-frame cost of temporal verification at 720p with 0, 1, 3 and 10 tracks.

A benchmark, not a test: it prints milliseconds per frame for the whole stage (thumbnail,
camera motion, features and score for every track) on real frames of a shared fire clip
upscaled to 1280x720, with boxes scattered over the frame as a tracker would report them,
beside the shipped detector's time on the same frames (one thread, as the daemon runs it).
CPU time is the one to read on a shared machine; the ratio to the detector moves least.

    python -m bench.verification [--frames 200] [--tracks 0 1 3 10]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from firewatch.paths import SHIPPED_DETECTOR, SHIPPED_VERIFICATION
from vision.types import Detections
from vision.verification import VerificationModel, Verifier

ROOT = Path(__file__).resolve().parent.parent
CLIP = Path(os.environ.get("FIREWATCH_DATA", ROOT.parent / "shared" / "data")) / "videos" / "navid__fire4.mp4"


def frames_720p(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(CLIP))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(cv2.resize(frame, (1280, 720)))
    return frames


def tracks(n: int, rng: np.random.Generator) -> Detections:
    """``n`` boxes of 2-15 % of the frame's side, tracked as ids 1..n."""
    side = rng.uniform(0.02, 0.15, (n, 2)) * (1280, 720)
    corner = rng.uniform(0, 1, (n, 2)) * ((1280, 720) - side)
    xyxy = np.concatenate([corner, corner + side], axis=1)
    return Detections(xyxy, np.full(n, 0.5), np.zeros(n), np.arange(1, n + 1))


def cost_ms(frames: list[np.ndarray], n_tracks: int, model: VerificationModel) -> tuple[float, float]:
    """(wall, CPU) milliseconds per frame. CPU time is this process's: on a shared machine
    it moves less than wall time, which also counts waiting for a core."""
    rng = np.random.default_rng(n_tracks)
    base = tracks(n_tracks, rng)
    verifier = Verifier(model)
    jitter = [base.xyxy + rng.normal(0, 3, base.xyxy.shape).astype(np.float32) for _ in frames]
    dets = [Detections(j, base.confidence, base.class_id, base.track_id) for j in jitter]
    for f, d in zip(frames[:20], dets[:20]):  # fill the window first: verdicts from here on
        verifier.update(f, d)
    start, cpu = time.perf_counter(), time.process_time()
    for f, d in zip(frames[20:], dets[20:]):
        verifier.update(f, d)
    n = len(frames) - 20
    return (time.perf_counter() - start) / n * 1e3, (time.process_time() - cpu) / n * 1e3


def detector_ms(frames: list[np.ndarray]) -> float:
    """CPU milliseconds per frame of the shipped detector (preprocessing, model, decoding)."""
    from vision.detectors import Detector

    detector = Detector(SHIPPED_DETECTOR, conf_threshold=0.25, iou_threshold=0.5, threads=1)
    for f in frames[:5]:
        detector(f)
    cpu = time.process_time()
    for f in frames:
        detector(f)
    return (time.process_time() - cpu) / len(frames) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--tracks", type=int, nargs="+", default=[0, 1, 3, 10],
                        help="0: the per-frame base (thumbnail and camera motion) alone")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds (a shared machine)")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # the daemon's post thread: one core
    frames = frames_720p(args.frames + 20)
    model = VerificationModel.load(SHIPPED_VERIFICATION)
    detector = min(detector_ms(frames[:50]) for _ in range(args.rounds))
    print(f"1280x720, {args.frames} frames, best of {args.rounds} rounds (ms per frame)")
    print(f"detector (shipped, 1 thread): {detector:.2f} ms CPU")
    print("tracks  wall   cpu    cpu/detector  (wall of every round)")
    for n in args.tracks:
        runs = [cost_ms(frames, n, model) for _ in range(args.rounds)]
        wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        print(f"{n:6d}  {wall:5.3f}  {cpu:5.3f}  {cpu / detector:12.1%}  ({' '.join(f'{r[0]:.3f}' for r in runs)})")


if __name__ == "__main__":
    main()
