"""A synthetic fire clip for ``firewatch demo``: a flickering flame over a still room,
rendered with numpy and OpenCV so that a fresh clone can try the pipeline without a camera,
a dataset or a download.

The flame is the classic "fire effect" cellular automaton: a hot bottom row whose heat
rises, drifts sideways at random and cools, mapped through a black-red-orange-yellow
palette. Its first second shows the empty room, so the demo also shows the time from the
flame's appearance to the alert. The same seed renders the same clip.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FPS = 10.0
EMPTY_S = 1.0
FIRE_S = 5.0
SIZE = (640, 480)  # (w, h)
_WARMUP = 40  # automaton steps before the first shown frame, so the flame is fully grown
# A real flame seen at 10 FPS changes a lot between frames; one automaton step is a
# smaller change than that.
_STEPS_PER_FRAME = 6
_PALETTE = ((0.0, (0, 0, 0)), (0.25, (10, 20, 140)), (0.5, (0, 90, 235)),
            (0.75, (40, 200, 255)), (1.0, (200, 245, 255)))  # heat -> BGR


def _palette() -> np.ndarray:
    heat = np.linspace(0.0, 1.0, 256)
    stops = np.array([s for s, _ in _PALETTE])
    colours = np.array([c for _, c in _PALETTE], dtype=np.float32)
    return np.stack([np.interp(heat, stops, colours[:, k]) for k in range(3)], axis=1).astype(np.float32)


def _room(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A lit room: papered wall, window, door, skirting and a plank floor, with a little sensor
    noise. Edges and furniture matter: a featureless grey wall reads as haze, and a pretrained
    detector rightly boxes haze as smoke."""
    room = np.empty((h, w, 3), np.float32)
    room[:] = (95, 140, 170)  # a warm painted wall
    room[:, ::24] *= 0.93  # wallpaper stripes
    floor = int(h * 0.72)
    room[floor:] = (40, 70, 110)
    for x in range(0, w + 60, 48):
        cv2.line(room, (x, floor), (x - 60, h), (30, 55, 90), 2)
    cv2.rectangle(room, (0, floor - 8), (w, floor), (200, 200, 205), -1)
    window = (int(w * 0.06), int(h * 0.12)), (int(w * 0.28), int(h * 0.45))
    cv2.rectangle(room, *window, (235, 215, 190), -1)
    cv2.rectangle(room, *window, (255, 255, 255), 5)
    cv2.line(room, (int(w * 0.17), window[0][1]), (int(w * 0.17), window[1][1]), (255, 255, 255), 4)
    cv2.rectangle(room, (int(w * 0.78), int(h * 0.22)), (int(w * 0.94), floor), (50, 80, 120), -1)
    cv2.circle(room, (int(w * 0.91), int(h * 0.48)), 5, (40, 180, 210), -1)
    return room + rng.normal(0, 3, room.shape).astype(np.float32)


class _Flame:
    def __init__(self, rng: np.random.Generator, cells: tuple[int, int] = (96, 120)) -> None:
        self.rng = rng
        self.w, self.h = cells
        self.heat = np.zeros((self.h, self.w), np.float32)
        # Hottest in the middle of the base, so the flame tapers like a real one.
        self._base = np.exp(-((np.arange(self.w) - self.w / 2) / (self.w * 0.22)) ** 2).astype(np.float32)

        # Gusts: the fuel's heat wanders slowly, so the flame grows, shrinks and brightens
        # over a second as real ones do (a flame of constant size reads as a lamp).
        self._gust = 1.0

    def step(self) -> np.ndarray:
        rng, heat = self.rng, self.heat
        self._gust = float(np.clip(0.7 * self._gust + 0.3 * rng.normal(1.0, 0.35), 0.45, 1.25))
        heat[-1] = np.clip(rng.normal(1.0, 0.15, self.w) * self._gust, 0, 1) * self._base
        above = heat[1:]
        drift = np.clip(np.arange(self.w)[None, :] + rng.integers(-1, 2, size=above.shape), 0, self.w - 1)
        risen = np.take_along_axis(above, drift, axis=1)
        heat[:-1] = np.clip(risen * rng.uniform(0.955, 0.995, size=risen.shape) - 0.004, 0, 1)
        self.heat = cv2.GaussianBlur(heat, (3, 3), 0)
        return self.heat


def render_frames(seed: int = 0, size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """The clip's BGR frames: ``EMPTY_S`` of the empty room, then ``FIRE_S`` of flame."""
    w, h = size
    rng = np.random.default_rng(seed)
    lut, room, flame = _palette(), _room(w, h, rng), _Flame(rng)
    fw, fh = int(w * 0.42), int(h * 0.62)
    x0, y0 = (w - fw) // 2, int(h * 0.78) - fh
    yy, xx = np.mgrid[0:h, 0:w]
    glow_shape = np.exp(-(((xx - w / 2) ** 2 + (yy - h * 0.65) ** 2) / (2 * (h * 0.2) ** 2))).astype(np.float32)
    frames = [np.clip(room, 0, 255).astype(np.uint8) for _ in range(round(EMPTY_S * FPS))]
    for _ in range(_WARMUP):
        flame.step()
    for _ in range(round(FIRE_S * FPS)):
        for _ in range(_STEPS_PER_FRAME - 1):
            flame.step()
        # The automaton's heat seldom reaches the palette's yellow-white, which a real flame's
        # core has; its faint fringe is left transparent rather than drawn as a dark haze.
        heat = np.clip(1.4 * cv2.resize(flame.step(), (fw, fh), interpolation=cv2.INTER_CUBIC), 0, 1)
        alpha = np.clip((heat - 0.06) * 4.0, 0, 1)[..., None]
        frame = room.copy()
        patch = frame[y0:y0 + fh, x0:x0 + fw]
        frame[y0:y0 + fh, x0:x0 + fw] = patch * (1 - alpha) + lut[(heat * 255).astype(np.uint8)] * alpha
        # The flame lights the room, faintly and in step with its own heat.
        frame += 0.6 * float(heat.mean()) * glow_shape[..., None] * np.array([20, 90, 200], np.float32)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def write_clip(path: Path, seed: int = 0) -> Path:
    """Render the clip into an mp4 at ``path`` (made once; an existing file is reused)."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = render_frames(seed)
    h, w = frames[0].shape[:2]
    partial = path.with_suffix(".partial.mp4")
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (w, h))
    if not writer.isOpened():
        raise OSError(f"cannot write video {partial}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    partial.replace(path)  # an interrupted render never leaves a short clip to be reused
    return path
