"""Does a tracked fire box move like fire? Temporal verification of each track.

The detector scores still images, so a lamp, a sunset window or a poster of flames held in
view confirms K-of-N at once. Real flames flicker (their brightness and outline change many
times a second) and grow; smoke drifts and spreads; pictures, lamps and screens do neither.
For each track this stage reads the last ``window`` frames (1.5 s at 10 FPS) of a shared
160 px thumbnail and the track's boxes, computes a few features (:func:`track_features`),
and scores them with a logistic regression fitted offline (``training/verification.py``)
and stored as plain numbers in ``models/verification.json``.

Per frame it costs one thumbnail (about 0.2 ms at 720p, shared with camera-motion
detection) plus a few small numpy reductions per track on at most 24x24 pixels per frame.

The caller passes every frame with the tracker's output, and the ids of tracks whose alert
is open (they need only ``hold_threshold``: hysteresis). While the camera moves, verdicts
say ``camera_moving`` and the caller falls back to the plain K-of-N rule.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vision.camera_motion import CameraMotion, CameraMotionDetector
from vision.thumbnails import DEFAULT_WIDTH, Thumbnail, make_thumbnail
from vision.types import Detections

# Region pixels sampled per frame (each side): bounds the cost of a box that fills the frame.
_MAX_SIDE = 24
# Luminance (0..1) changes below this are sensor and compression noise, not flicker.
_NOISE = 0.004


@dataclass(frozen=True)
class VerificationConfig:
    """``window``: frames the features look back over (including the current one).
    ``min_frames``: frames of the window the track must have been seen in before a verdict.
    ``ring``: width of the surrounding ring, as a fraction of the box's size.
    ``every``: a track's features are recomputed every this many frames (staggered across
    tracks) and reused in between: over a 1.5 s window they change little in 0.1 s, and it
    halves the stage's per-track cost. The first verdict is never delayed by it."""

    window: int = 15
    min_frames: int = 8
    ring: float = 0.5
    every: int = 2
    thumb_width: int = DEFAULT_WIDTH


@dataclass(frozen=True)
class TrackVerdict:
    """``verified``: True (moves like fire), False (held back), None (not enough frames yet, or
    the camera moved within the window: see ``camera_moving``). ``score``: the model's
    probability-like score in 0..1 (None without a verdict). ``features``: plain floats."""

    track_id: int
    verified: bool | None
    score: float | None
    features: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    camera_moving: bool = False

    def to_dict(self) -> dict:
        """For the JSONL events and ``/alert ID``."""
        return {
            "verified": self.verified,
            "score": None if self.score is None else round(self.score, 4),
            "reason": self.reason,
            "camera_moving": self.camera_moving,
            "features": {k: round(v, 5) for k, v in self.features.items()},
        }


@dataclass(frozen=True)
class Verification:
    """One frame's result: the camera's motion and a verdict for each track in the frame."""

    camera: CameraMotion
    verdicts: Mapping[int, TrackVerdict]


@dataclass(frozen=True)
class VerificationModel:
    """A logistic regression on transformed, standardised features.

    score = sigmoid(intercept + sum(coef_i * (t_i(f_i) - mean_i) / scale_i)) where t_i is
    log(f + offset_i) for features listed in ``log_offset``, else the identity.
    ``threshold`` verifies a new track; ``hold_threshold`` (lower) keeps an open alert's
    track verified, so that one calm second does not flap an alert.
    """

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    hold_threshold: float
    log_offset: Mapping[str, float] = field(default_factory=dict)
    min_frames: int = 8  # what it was fitted and its threshold chosen with

    @classmethod
    def load(cls, path: str | Path) -> VerificationModel:
        d = json.loads(Path(path).read_text())
        return cls(
            tuple(d["names"]), tuple(d["mean"]), tuple(d["scale"]), tuple(d["coef"]),
            float(d["intercept"]), float(d["threshold"]), float(d["hold_threshold"]),
            dict(d.get("log_offset", {})), int(d.get("min_frames", 8)),
        )

    def to_json(self) -> dict:
        return {
            "names": list(self.names), "mean": list(self.mean), "scale": list(self.scale),
            "coef": list(self.coef), "intercept": self.intercept, "threshold": self.threshold,
            "hold_threshold": self.hold_threshold, "log_offset": dict(self.log_offset),
            "min_frames": self.min_frames,
        }

    def transform(self, features: Mapping[str, float]) -> np.ndarray:
        x = np.array([features[n] for n in self.names], np.float64)
        for i, name in enumerate(self.names):
            if name in self.log_offset:
                x[i] = np.log(max(x[i], 0.0) + self.log_offset[name])
        return (x - np.asarray(self.mean)) / np.asarray(self.scale)

    def score(self, features: Mapping[str, float]) -> float:
        z = self.intercept + float(self.transform(features) @ np.asarray(self.coef))
        return float(1.0 / (1.0 + np.exp(-z)))

    def decide(self, score: float, alert_open: bool) -> bool:
        return score >= (self.hold_threshold if alert_open else self.threshold)


# -- features ------------------------------------------------------------------------------


def _iou_consecutive(boxes: np.ndarray) -> np.ndarray:
    a, b = boxes[:-1], boxes[1:]
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def box_features(boxes: np.ndarray) -> dict[str, float]:
    """Outline and area change of a track's boxes (k, 4), in time order, any pixel unit."""
    wh = np.clip(boxes[:, 2:] - boxes[:, :2], 1e-3, None)
    log_area = np.log(wh[:, 0] * wh[:, 1])
    third = max(1, len(boxes) // 3)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    path = float(np.linalg.norm(np.diff(centre, axis=0), axis=1).sum())
    net = float(np.linalg.norm(centre[-1] - centre[0]))
    return {
        # A car or a person travels (net displacement close to the path walked); a flame's
        # box jitters about one place; the small floor keeps a still box at 0, not 0/0.
        "travel": net / (path + 0.05 * float(np.sqrt(wh[:, 0] * wh[:, 1]).mean())),
        # Flames and smoke spread: the late boxes of the window against the early ones.
        "growth": float(np.exp(log_area[-third:].mean() - log_area[:third].mean()) - 1.0),
        "area_jitter": float(np.std(np.diff(log_area))),
        "outline_change": float(np.mean(1.0 - _iou_consecutive(boxes))),
    }


def _region(box: np.ndarray, shape: tuple[int, int], ring: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Inner (y0, y1, x0, x1) and outer window (box grown by ``ring``) in thumbnail pixels."""
    h, w = shape
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    x1, y1 = max(x0 + 2, int(np.ceil(box[2]))), max(y0 + 2, int(np.ceil(box[3])))
    x0, x1 = max(0, min(x0, w - 2)), min(w, x1)
    y0, y1 = max(0, min(y0, h - 2)), min(h, y1)
    gx, gy = max(2, int(round((x1 - x0) * ring))), max(2, int(round((y1 - y0) * ring)))
    return (y0, y1, x0, x1), (max(0, y0 - gy), min(h, y1 + gy), max(0, x0 - gx), min(w, x1 + gx))


def pixel_features(
    grey: np.ndarray, order: np.ndarray, bgr_last: np.ndarray, inner: tuple[int, ...], outer: tuple[int, ...]
) -> dict[str, float]:
    """Flicker, motion and colour of a box against the ring around it.

    ``grey``: (N, H, W) uint8 thumbnails, ``order`` the indices of the window's frames in time
    order (the region is cut before they are gathered, so only it is copied); ``bgr_last``:
    the latest (H, W, 3) thumbnail; ``inner`` / ``outer``: (y0, y1, x0, x1) of the box and of
    the box with its ring.
    """
    oy0, oy1, ox0, ox1 = outer
    step = max(1, int(np.ceil(max(oy1 - oy0, ox1 - ox0) / _MAX_SIDE)))
    # Sums over rectangles rather than means over boolean masks: a dozen numpy calls per
    # track and frame, each on at most 15x24x24 values, is what keeps the stage cheap.
    g = grey[:, oy0:oy1:step, ox0:ox1:step][order].astype(np.float32)
    iy0, iy1, ix0, ix1 = inner
    ys = slice((iy0 - oy0 + step - 1) // step, (iy1 - oy0 + step - 1) // step)
    xs = slice((ix0 - ox0 + step - 1) // step, (ix1 - ox0 + step - 1) // step)
    if ys.start >= min(ys.stop, g.shape[1]) or xs.start >= min(xs.stop, g.shape[2]):
        ys, xs = slice((iy0 - oy0) // step, (iy0 - oy0) // step + 1), slice((ix0 - ox0) // step, (ix0 - ox0) // step + 1)
    t = len(g)
    box = g[:, ys, xs]
    n_in, n_all = box[0].size, g[0].size
    n_ring = n_all - n_in
    sum_in, sum_all = box.sum(axis=(1, 2)), g.sum(axis=(1, 2))
    lum_in = sum_in / (255.0 * n_in)
    lum_ring = (sum_all - sum_in) / (255.0 * n_ring) if n_ring else lum_in  # a box that fills its window

    signed = np.diff(g, axis=0)
    diff = np.abs(signed)
    diff_in = diff[:, ys, xs]
    d_in, d_all = float(diff_in.sum()), float(diff.sum())
    motion_in = d_in / (255.0 * (t - 1) * n_in)
    motion_ring = (d_all - d_in) / (255.0 * (t - 1) * n_ring) if n_ring else motion_in
    # Flames flicker: a pixel brightens then darkens again within frames. Something that
    # passes through (a car, a hand) changes each pixel once. Oscillation counts only the
    # change that reverses, as the smaller of the two opposite steps.
    oscillation = 0.0
    if t > 2:
        inside = signed[:, ys, xs]
        reversed_steps = np.minimum(diff_in[1:], diff_in[:-1]) * (inside[1:] * inside[:-1] < 0)
        oscillation = float(reversed_steps.sum()) / (255.0 * (t - 2) * n_in)
    flicker_in, flicker_ring = float(np.std(np.diff(lum_in))), float(np.std(np.diff(lum_ring)))

    box_bgr = bgr_last[iy0:iy1:step, ix0:ix1:step].reshape(-1, 3).astype(np.int16)
    b, gr, r = box_bgr[:, 0], box_bgr[:, 1], box_bgr[:, 2]
    # A fire-colour rule of thumb (Chen et al.): red dominant and bright.
    fire_colour = float(np.count_nonzero((r >= gr) & (gr >= b) & (r >= 128))) / max(1, len(box_bgr))
    return {
        "flicker": flicker_in,
        "flicker_ratio": (flicker_in + _NOISE) / (flicker_ring + _NOISE),
        "motion_in": motion_in,
        "motion_ratio": (motion_in + _NOISE) / (motion_ring + _NOISE),
        "oscillation": oscillation,
        "brightness_ratio": float((lum_in.sum() / t + 0.02) / (lum_ring.sum() / t + 0.02)),
        "fire_colour": fire_colour,
    }


def reason(features: Mapping[str, float], verified: bool | None) -> str:
    """One line an operator can read: what moved, and how much."""
    f = features
    text = (
        f"flicker {f['flicker'] * 100:.2f} % ({f['flicker_ratio']:.1f}x ring), growth {f['growth']:+.0%}, "
        f"outline change {f['outline_change']:.0%}, inside motion {f['motion_ratio']:.1f}x outside"
    )
    if f["flicker"] < _NOISE and f["motion_in"] < _NOISE and f["outline_change"] < 0.05:
        text = "static: no flicker, no motion, steady outline; " + text
    return text if verified is None else ("moves like fire: " if verified else "held back: ") + text


# -- the stage -------------------------------------------------------------------------------


class _Frames:
    """The last ``n`` thumbnails in preallocated ring buffers (sized on the first frame)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.grey: np.ndarray | None = None
        self.bgr: np.ndarray | None = None

    def push(self, thumb: Thumbnail) -> None:
        if self.grey is None or self.grey.shape[1:] != thumb.grey.shape:
            self.grey = np.empty((self.n, *thumb.grey.shape), np.uint8)
            self.bgr = np.empty((self.n, *thumb.bgr.shape), np.uint8)
            self.count = 0
        slot = self.count % self.n
        self.grey[slot] = thumb.grey
        self.bgr[slot] = thumb.bgr
        self.count += 1

    def last(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Slot indices of the last k frames in time order, and the latest bgr thumbnail."""
        k = min(k, self.count, self.n)
        order = (np.arange(self.count - k, self.count)) % self.n
        return order, self.bgr[order[-1]]


class Verifier:
    """Feed it every frame with the tracker's output; it returns a verdict per track."""

    def __init__(
        self,
        model: VerificationModel | None = None,
        config: VerificationConfig | None = None,
        camera_motion: CameraMotionDetector | None = None,
    ) -> None:
        self.model = model
        # The model's threshold was chosen for verdicts from its own min_frames on.
        self.config = config or VerificationConfig(min_frames=model.min_frames if model else VerificationConfig.min_frames)
        self.camera_motion = camera_motion or CameraMotionDetector()
        self._frames = _Frames(self.config.window)
        self._boxes: dict[int, deque[tuple[int, np.ndarray]]] = {}
        self._computed: dict[int, dict[str, float]] = {}  # the latest features per track
        self._moved_at: int | None = None

    def update(self, image: np.ndarray, tracked: Detections, open_tracks: Collection[int] = ()) -> Verification:
        """``image``: the BGR frame; ``tracked``: its tracked detections (``track_id`` set);
        ``open_tracks``: ids of tracks whose alert is open (hysteresis)."""
        thumb = make_thumbnail(image, self.config.thumb_width)
        return self.update_thumbnail(thumb, tracked, open_tracks)

    def update_thumbnail(self, thumb: Thumbnail, tracked: Detections, open_tracks: Collection[int] = ()) -> Verification:
        """As :meth:`update`, with a thumbnail the caller already made (shared with others)."""
        if tracked.track_id is None:
            raise ValueError("Verifier needs tracked detections (track_id set)")
        cfg = self.config
        camera = self.camera_motion.update(thumb.grey)
        self._frames.push(thumb)
        now = self._frames.count
        if camera.moving:
            self._moved_at = now
        for tid, box in zip(tracked.track_id.tolist(), tracked.xyxy * np.float32(thumb.scale)):
            self._boxes.setdefault(tid, deque(maxlen=cfg.window)).append((now, box))
        for tid in [t for t, q in self._boxes.items() if q[-1][0] <= now - cfg.window]:
            del self._boxes[tid]  # not seen for a whole window: its history is stale
            self._computed.pop(tid, None)
        verdicts = {
            tid: self._verdict(tid, camera, tid in open_tracks)
            for tid in dict.fromkeys(tracked.track_id.tolist())
        }
        return Verification(camera, verdicts)

    def features(self, track_id: int) -> dict[str, float] | None:
        """The track's features over the current window, or None with too few frames."""
        cfg = self.config
        now = self._frames.count
        seen = [(i, b) for i, b in self._boxes.get(track_id, ()) if i > now - cfg.window]
        if len(seen) < cfg.min_frames:
            return None
        boxes = np.stack([b for _, b in seen])
        order, bgr_last = self._frames.last(now - seen[0][0] + 1)
        # One region for the whole window (the median box): with a box that follows the
        # detector's jitter, a still picture's edges would slide in and out and read as flicker.
        ranked = np.sort(boxes, axis=0)  # the median box, without np.median's overhead
        median = (ranked[(len(ranked) - 1) // 2] + ranked[len(ranked) // 2]) / 2
        inner, outer = _region(median, self._frames.grey.shape[1:], cfg.ring)
        pixels = pixel_features(self._frames.grey, order, bgr_last, inner, outer)
        return {**pixels, **box_features(boxes), "frames": float(len(seen))}

    def _verdict(self, tid: int, camera: CameraMotion, alert_open: bool) -> TrackVerdict:
        now = self._frames.count
        if self._moved_at is not None and self._moved_at > now - self.config.window:
            return TrackVerdict(tid, None, None, {}, camera.reason, camera_moving=True)
        features = self._computed.get(tid)
        if features is None or (now + tid) % self.config.every == 0:
            features = self.features(tid)
            if features is not None:
                self._computed[tid] = features
        if features is None:
            return TrackVerdict(tid, None, None, {}, "not enough frames yet")
        if self.model is None:
            return TrackVerdict(tid, None, None, features, reason(features, None))
        score = self.model.score(features)
        verified = self.model.decide(score, alert_open)
        return TrackVerdict(tid, verified, score, features, reason(features, verified))
