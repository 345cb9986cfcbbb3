"""Does a tracked fire box move like fire? Temporal verification of each track.

The detector scores still images, so a lamp, a sunset window or a poster of flames held in
view confirms K-of-N at once. Real flames flicker (their brightness and outline change many
times a second) and grow; smoke drifts and spreads; pictures, lamps and screens do neither.
For each track this stage reads the last ``window`` frames (1.5 s at 10 FPS) of a shared
160 px thumbnail in the track's region and the track's boxes, computes a few features, and
scores them with a logistic regression fitted offline (``training/verification.py``) and
stored as plain numbers in ``models/verification.json``.

The pixels are read from every buffered frame, not only from those since the track was first
boxed: a fire that burned unseen before the detector boxed it has already flickered, so the
verdict can come as soon as K-of-N confirms. A window shorter than ``window`` (the stream just
started) is judged against a threshold of its own, chosen for that length.

A moving or shaking camera would make everything "move": each frame's global shift (phase
correlation, ``vision.camera_motion``) is undone before frames are compared, and the track's
region is followed back through the window by the accumulated shift, so a picture stays still
while the camera pans and a fire still flickers.

Per frame the stage makes one thumbnail (shared with camera-motion detection) and, while there
are tracks to judge, one aligned difference and one integral image of three planes (grey,
|difference|, reversed difference); every track's features are then rectangle sums gathered
for all tracks at once, so a track costs little more than its verdict's bookkeeping.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vision.camera_motion import CameraMotion, CameraMotionDetector
from vision.thumbnails import DEFAULT_WIDTH, Thumbnail, make_thumbnail
from vision.types import Detections

# Luminance (0..1) changes below this are sensor and compression noise, not flicker.
_NOISE = 0.004
# Planes of the per-frame integral image.
_GREY, _MOTION, _REVERSAL = range(3)


@dataclass(frozen=True)
class VerificationConfig:
    """``window``: frames the features look back over (including the current one).
    ``min_frames``: frames the track must have been boxed in, and frames buffered, before a
    verdict (3: K-of-N's own minimum, so the verdict never has to wait for more).
    ``ring``: width of the surrounding ring, as a fraction of the box's size.
    ``every``: features are recomputed every this many frames and reused in between (over a
    1.5 s window they change little in 0.1 s, and it halves the stage's cost with tracks in
    view); a track's first verdict is never delayed by it."""

    window: int = 15
    min_frames: int = 3
    ring: float = 0.5
    every: int = 2
    thumb_width: int = DEFAULT_WIDTH


@dataclass(frozen=True)
class TrackVerdict:
    """``verified``: True (moves like fire), False (held back), None (not enough frames yet).
    ``score``: the model's probability-like score in 0..1 (None without a verdict).
    ``features``: plain floats. ``camera_moving``: the camera moved within the window (its
    motion was compensated before judging)."""

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
    ``thresholds[k]`` verifies a new track from a window of ``min_frames + k`` frames (the
    last one serves every longer window, which is every window once the stream has run for
    ``window`` frames); each was chosen just above the most fire-like fire-free track of that
    window length (``training/verification.py``). ``hold_threshold`` (lower) keeps an open
    alert's track verified, so that one calm second does not flap an alert.
    """

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    thresholds: tuple[float, ...]
    hold_threshold: float
    log_offset: Mapping[str, float] = field(default_factory=dict)
    min_frames: int = 3  # the shortest window it was fitted and its thresholds chosen for

    @classmethod
    def load(cls, path: str | Path) -> VerificationModel:
        d = json.loads(Path(path).read_text())
        return cls(
            tuple(d["names"]), tuple(d["mean"]), tuple(d["scale"]), tuple(d["coef"]), float(d["intercept"]),
            tuple(float(t) for t in d["thresholds"]), float(d["hold_threshold"]),
            dict(d.get("log_offset", {})), int(d.get("min_frames", 3)),
        )

    def to_json(self) -> dict:
        return {
            "names": list(self.names), "mean": list(self.mean), "scale": list(self.scale),
            "coef": list(self.coef), "intercept": self.intercept,
            "thresholds": list(self.thresholds), "hold_threshold": self.hold_threshold, "log_offset": dict(self.log_offset),
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

    def scores(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """:meth:`score` of several tracks at once: one (K,) array per feature."""
        x = np.stack([features[n] for n in self.names], axis=1)
        logged = [i for i, n in enumerate(self.names) if n in self.log_offset]
        offsets = np.array([self.log_offset[self.names[i]] for i in logged])
        x[:, logged] = np.log(np.maximum(x[:, logged], 0.0) + offsets)
        z = self.intercept + ((x - self.mean) / np.asarray(self.scale)) @ np.asarray(self.coef)
        return 1.0 / (1.0 + np.exp(-z))

    def threshold_for(self, window: int) -> float:
        return self.thresholds[min(max(window - self.min_frames, 0), len(self.thresholds) - 1)]

    def decide(self, score: float, alert_open: bool, window: int = 1 << 30) -> bool:
        return score >= (self.hold_threshold if alert_open else self.threshold_for(window))


# -- features ------------------------------------------------------------------------------


def track_box_features(boxes: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Outline and area change of K tracks' boxes at once, any pixel unit. ``boxes``: (K, L, 4),
    each track's boxes in time order from index 0, ``counts[k]`` (>= 2) of them; the rest is
    padding (ignored). Returns one (K,) array per feature."""
    idx = np.arange(boxes.shape[1])
    pair = idx[None, :-1] < counts[:, None] - 1
    b = np.where((idx[None, :] < counts[:, None])[..., None], boxes, boxes[:, :1])  # padding: the first box
    wh = np.maximum(b[..., 2:] - b[..., :2], 1e-3)
    area = wh[..., 0] * wh[..., 1]
    x, y = b[:, :-1], b[:, 1:]
    inter = np.maximum(np.minimum(x[..., 2:], y[..., 2:]) - np.maximum(x[..., :2], y[..., :2]), 0).prod(axis=-1)
    iou = inter / np.maximum(area[:, :-1] + area[:, 1:] - inter, 1e-9)
    # Flames and smoke spread: the late third of the boxes against the early third.
    third = np.maximum(1, counts // 3)
    cum = np.concatenate([np.zeros((len(b), 1)), np.cumsum(np.log(area), axis=1)], axis=1)
    rows = np.arange(len(b))
    late = (cum[rows, counts] - cum[rows, counts - third]) / third
    return {
        "growth": np.exp(late - cum[rows, third] / third) - 1.0,
        "outline_change": np.where(pair, 1.0 - iou, 0.0).sum(axis=1) / np.maximum(counts - 1, 1),
    }


def box_features(boxes: np.ndarray) -> dict[str, float]:
    """:func:`track_box_features` of one track's boxes (k >= 2, 4)."""
    return {name: float(v[0]) for name, v in track_box_features(boxes[None], np.array([len(boxes)])).items()}


def regions(boxes: np.ndarray, shape: tuple[int, int], ring: float) -> np.ndarray:
    """(K, 2, 4) int: for each box (K, 4) in thumbnail pixels, the inner window and the outer
    one (box grown by ``ring`` of its size, at least 2 px), as (y0, y1, x0, x1), at least
    2 px a side, inside the frame. (Plain Python: for a handful of boxes it is several times
    faster than numpy's per-call overhead.)"""
    h, w = shape
    out = []
    for bx0, by0, bx1, by1 in boxes.tolist():
        x0, y0 = min(max(math.floor(bx0), 0), w - 2), min(max(math.floor(by0), 0), h - 2)
        x1, y1 = min(max(x0 + 2, math.ceil(bx1)), w), min(max(y0 + 2, math.ceil(by1)), h)
        gx, gy = max(2, round((x1 - x0) * ring)), max(2, round((y1 - y0) * ring))
        out.append(((y0, y1, x0, x1), (max(0, y0 - gy), min(h, y1 + gy), max(0, x0 - gx), min(w, x1 + gx))))
    return np.array(out, np.intp).reshape(-1, 2, 4)


class _Window:
    """The last ``n`` frames' grey thumbnails, and on demand their integral images of three
    planes, aligned for camera motion.

    Plane ``_GREY``: the thumbnail's grey level. ``_MOTION``: |grey - previous grey| after the
    previous frame was shifted onto this one. ``_REVERSAL``: the part of that change that
    reverses the previous frame's change (the smaller of two opposite steps): a flame
    brightens then darkens again within frames, something passing by changes each pixel
    once. ``position[slot]``: the camera's accumulated shift at that frame, in thumbnail
    pixels (content at x in frame i is at x + p_now - p_i now). The planes are made only when
    a track is judged (most frames of a fixed camera have none) and then once per frame; the
    fire colour is read from the latest frame alone.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.grey: np.ndarray | None = None
        self.position = np.zeros((n, 2), np.float64)
        self.shift = np.zeros((n, 2), np.float32)
        self.reset()

    def reset(self) -> None:
        self.count = 0  # frames since the buffer was (re)started
        self._made = np.full(self.n, -1)  # the frame count whose planes a slot holds
        self._bgr: np.ndarray | None = None
        self._at = np.zeros(2)

    def push(self, thumb: Thumbnail, shift: tuple[float, float]) -> None:
        h, w = thumb.shape
        if self.grey is None or self.grey.shape[1:] != (h, w):
            self.grey = np.empty((self.n, h, w), np.float32)
            self.diff = np.zeros((self.n, h, w), np.float32)
            self.integral = np.zeros((self.n, h + 1, w + 1, 3), np.float64)
            self.reset()
        slot = self.count % self.n
        self.grey[slot] = thumb.grey
        self.shift[slot] = shift
        self._at = self._at + np.asarray(shift)
        self.position[slot] = self._at
        self._bgr = thumb.bgr
        self.count += 1

    def _make_planes(self) -> None:
        """The planes of every frame of the window that has none yet, oldest first (each
        frame's reversal needs the previous frame's change)."""
        h, w = self.grey.shape[1:]
        for frame in range(self.count - self.length, self.count):
            slot = frame % self.n
            if self._made[slot] == frame:
                continue
            grey = self.grey[slot]
            if frame == self.count - self.length:  # its previous frame is gone: its change is never read
                self.diff[slot] = 0.0
                moved = reversal = self.diff[slot]
            else:
                prev, prev_diff = self.grey[(frame - 1) % self.n], self.diff[(frame - 1) % self.n]
                dx, dy = self.shift[slot]
                if dx or dy:
                    m = np.float32([[1, 0, dx], [0, 1, dy]])
                    prev = cv2.warpAffine(prev, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                    prev_diff = cv2.warpAffine(prev_diff, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                diff = np.subtract(grey, prev, out=self.diff[slot])
                moved = np.abs(diff)
                # min(|diff|, |prev_diff|) where the two have opposite signs, else 0 (a boolean
                # mask over the frame costs three times as much).
                reversal = np.maximum(np.minimum(diff, -prev_diff), 0) + np.maximum(np.minimum(-diff, prev_diff), 0)
            cv2.integral(cv2.merge((grey, moved, reversal)), self.integral[slot], cv2.CV_64F)
            self._made[slot] = frame

    @property
    def length(self) -> int:
        return min(self.count, self.n)

    def pixel_features(self, rects: np.ndarray) -> dict[str, np.ndarray]:
        """Flicker, motion and colour of each box against the ring around it, over the whole
        window. ``rects``: (K, 2, 4) from :func:`regions`, in the latest frame's pixels.
        Returns one (K,) array per feature."""
        self._make_planes()
        t = self.length
        slots = np.arange(self.count - t, self.count) % self.n  # time order
        h, w = self.integral.shape[1] - 1, self.integral.shape[2] - 1
        # Where each region was in each frame: back by the camera's shift since then.
        back = np.rint(self.position[slots] - self.position[slots[-1]]).astype(np.intp)  # (T, 2) x, y
        y = np.minimum(np.maximum(rects[None, :, :, 0:2] + back[:, None, None, 1:2], 0), h)  # (T, K, 2, 2)
        x = np.minimum(np.maximum(rects[None, :, :, 2:4] + back[:, None, None, 0:1], 0), w)
        # The four corners of every rectangle in one gather: + (y1, x1) + (y0, x0) - (y0, x1) - (y1, x0).
        c = self.integral[slots[:, None, None, None], y[..., [1, 0, 0, 1]], x[..., [1, 0, 1, 0]]]  # (T, K, 2, 4, 3)
        sums = c[..., 0, :] + c[..., 1, :] - c[..., 2, :] - c[..., 3, :]  # (T, K, 2, 3)
        area = np.maximum((y[..., 1] - y[..., 0]) * (x[..., 1] - x[..., 0]), 1)  # (T, K, 2)
        n_in, n_ring = area[..., 0], area[..., 1] - area[..., 0]
        inside = sums[:, :, 0] / (255.0 * n_in[..., None])  # (T, K, 3) means
        ring = (sums[:, :, 1] - sums[:, :, 0]) / (255.0 * np.maximum(n_ring, 1)[..., None])
        if not n_ring.all():  # a box that fills its window has no ring: read as its inside
            ring = np.where((n_ring > 0)[..., None], ring, inside)
        lum_in, lum_ring = inside[..., _GREY], ring[..., _GREY]
        flicker_in, flicker_ring = _std(lum_in[1:] - lum_in[:-1]), _std(lum_ring[1:] - lum_ring[:-1])
        # Changes within the window only: the first frame's is against a frame before it.
        motion_in = inside[1:, :, _MOTION].sum(axis=0) / (t - 1)
        motion_ring = ring[1:, :, _MOTION].sum(axis=0) / (t - 1)
        oscillation = inside[2:, :, _REVERSAL].sum(axis=0) / max(t - 2, 1)
        return {
            "flicker": flicker_in,
            "flicker_ratio": (flicker_in + _NOISE) / (flicker_ring + _NOISE),
            "motion_in": motion_in,
            "motion_ratio": (motion_in + _NOISE) / (motion_ring + _NOISE),
            "oscillation": oscillation,
            "brightness_ratio": (lum_in.sum(axis=0) / t + 0.02) / (lum_ring.sum(axis=0) / t + 0.02),
            "fire_colour": self._fire_colour(rects[:, 0]),
        }

    def _fire_colour(self, inner: np.ndarray) -> np.ndarray:
        """Share of each box (K, 4: y0, y1, x0, x1) that has fire's colour in the latest frame,
        by a rule of thumb (Chen et al.): red dominant and bright."""
        share = []
        for y0, y1, x0, x1 in inner.tolist():
            box = self._bgr[y0:y1, x0:x1]
            b, g, r = box[..., 0], box[..., 1], box[..., 2]
            share.append(np.count_nonzero((r >= g) & (g >= b) & (r >= 128)) / max((y1 - y0) * (x1 - x0), 1))
        return np.array(share)


def _std(x: np.ndarray) -> np.ndarray:
    """Standard deviation over the first axis (np.std's overhead is most of its cost here)."""
    mean = x.sum(axis=0) / len(x)
    return np.sqrt(((x - mean) ** 2).sum(axis=0) / len(x))


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


class Verifier:
    """Feed it every frame with the tracker's output; it returns a verdict per track."""

    def __init__(
        self,
        model: VerificationModel | None = None,
        config: VerificationConfig | None = None,
        camera_motion: CameraMotionDetector | None = None,
    ) -> None:
        self.model = model
        # The model's thresholds were chosen for verdicts from its own min_frames on.
        self.config = config or VerificationConfig(min_frames=model.min_frames if model else VerificationConfig.min_frames)
        self.camera_motion = camera_motion or CameraMotionDetector()
        self._window = _Window(self.config.window)
        # Each track's recent boxes, with the frame count and camera position they were seen at.
        self._boxes: dict[int, deque[tuple[int, np.ndarray]]] = {}
        self._features: dict[int, dict[str, float]] = {}  # the latest features per track
        self._scores: dict[int, float] = {}  # and their scores
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
        moved_now = camera.frames_since_motion == 0
        h, w = thumb.shape
        shift = (camera.shift[0] * w, camera.shift[1] * h) if moved_now else (0.0, 0.0)
        self._window.push(thumb, shift)
        now = self._window.count
        if moved_now:
            self._moved_at = now
        # Boxes are kept in the camera's frame of reference (accumulated shift removed), so
        # that a pan does not read as the box travelling.
        at = self._window.position[(now - 1) % self._window.n]
        offset = np.array([at[0], at[1], at[0], at[1]])
        ids = tracked.track_id.tolist()
        for tid, box in zip(ids, tracked.xyxy * np.float32(thumb.scale)):
            self._boxes.setdefault(tid, deque(maxlen=cfg.window)).append((now, box - offset))
        for tid, q in list(self._boxes.items()):
            while q and q[0][0] <= now - cfg.window:
                q.popleft()  # older than the window
            if not q:
                del self._boxes[tid]  # not seen for a whole window
                self._features.pop(tid, None)
                self._scores.pop(tid, None)
        moving = self._moved_at is not None and self._moved_at > now - cfg.window
        verdicts = self._verdicts(list(dict.fromkeys(ids)), offset, (h, w), camera, moving, open_tracks)
        return Verification(camera, verdicts)

    def _compute(self, ready: list[int], offset: np.ndarray, shape: tuple[int, int]) -> None:
        """Features (and scores) of the ``ready`` tracks over the current window."""
        cfg = self.config
        counts = np.array([len(self._boxes[tid]) for tid in ready])
        boxes = np.full((len(ready), cfg.window, 4), np.nan)
        for k, tid in enumerate(ready):
            boxes[k, : counts[k]] = [b for _, b in self._boxes[tid]]
        boxes += offset  # back into the latest frame's pixels
        # One region for the whole window (the median box): with a box that follows the
        # detector's jitter, a still picture's edges would slide in and out and read as flicker.
        ranked = np.sort(boxes, axis=1)  # the padding (NaN) sorts last
        rows = np.arange(len(ready))
        median = (ranked[rows, (counts - 1) // 2] + ranked[rows, counts // 2]) / 2
        features = self._window.pixel_features(regions(median, shape, cfg.ring))
        features |= track_box_features(boxes, counts)
        features |= {"frames": counts.astype(np.float64), "window": np.full(len(ready), float(self._window.length))}
        scores = None if self.model is None else self.model.scores(features).tolist()
        for k, tid in enumerate(ready):
            self._features[tid] = {name: float(v[k]) for name, v in features.items()}
            if scores is not None:
                self._scores[tid] = scores[k]

    def _verdicts(self, ids: list[int], offset: np.ndarray, shape: tuple[int, int], camera: CameraMotion,
                  moving: bool, open_tracks: Collection[int]) -> dict[int, TrackVerdict]:
        cfg = self.config
        now, window = self._window.count, self._window.length
        wait = "not enough frames yet" if not moving else f"not enough frames yet; {camera.reason}"
        verdicts = {tid: TrackVerdict(tid, None, None, {}, wait, moving) for tid in ids}
        ready = [tid for tid in ids if window >= cfg.min_frames and len(self._boxes[tid]) >= cfg.min_frames]
        if not ready:
            return verdicts
        if now % cfg.every == 0 or any(tid not in self._features for tid in ready):
            self._compute(ready, offset, shape)
        for tid in ready:
            f, score = self._features[tid], self._scores.get(tid)
            if score is None:
                verdicts[tid] = TrackVerdict(tid, None, None, f, reason(f, None), moving)
                continue
            verified = self.model.decide(score, tid in open_tracks, int(f["window"]))
            text = reason(f, verified) + ("; camera motion compensated" if moving else "")
            verdicts[tid] = TrackVerdict(tid, verified, score, f, text, moving)
        return verdicts
