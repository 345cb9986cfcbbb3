"""Is the camera itself moving? Global shift between consecutive frame thumbnails.

A panning, shaking or bumped camera makes every box "move" and "flicker", so a verification
that reads motion as evidence of fire must stand aside while it lasts (the caller then falls
back to the plain K-of-N rule). Phase correlation of two grey thumbnails gives one global
(dx, dy) and a peak response; a shift counts only when the textured parts of the picture
agree on it (3x3 cells vote), because one large moving object (a car, a person close to the
lens) can pull the global peak to its own motion while the camera stands still.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CameraMotionConfig:
    """``min_shift``: global shift in pixels of the half-size thumbnail (0.4 px of 80 is
    0.5 % of the width: 6 px at 720p) that counts as motion. ``min_response``:
    phase-correlation peak below which the shift is noise. ``min_agreement``: of the 3x3
    cells textured enough to tell, the fraction whose difference the shift explains; at
    least ``min_votes`` of them. ``settle_frames``: frames the camera still counts as moving
    after the last shift (auto-exposure and focus settle after a bump)."""

    min_shift: float = 0.4
    min_response: float = 0.05
    min_agreement: float = 0.8
    min_votes: int = 3
    settle_frames: int = 5


@dataclass(frozen=True)
class CameraMotion:
    """``moving``: the camera moved in this frame or within ``settle_frames`` before it.
    ``shift``: (dx, dy) of this frame against the previous one, as fractions of the width
    and height (so that it does not depend on the thumbnail's size).
    ``response``: phase-correlation peak (0..1). ``agreement``: fraction of the textured
    cells that the shift explains (0 when the shift was too small to ask)."""

    moving: bool
    shift: tuple[float, float]
    response: float
    agreement: float
    frames_since_motion: int | None

    @property
    def reason(self) -> str:
        dx, dy = self.shift
        if self.moving:
            return f"camera moving (shift {dx:+.1%}, {dy:+.1%} of the frame, {self.frames_since_motion} frames ago)"
        return "camera still"


STILL = CameraMotion(False, (0.0, 0.0), 0.0, 0.0, None)


# Mean absolute grey difference (0..255) below which a cell is too flat to vote.
_FLAT = 1.0


def _hann(shape: tuple[int, int], cache: dict[tuple[int, int], np.ndarray]) -> np.ndarray:
    """A Hann window of (h, w): it stops the borders from dominating the correlation."""
    if shape not in cache:
        cache[shape] = cv2.createHanningWindow((shape[1], shape[0]), cv2.CV_32F)
    return cache[shape]


def _dft_crop(image: np.ndarray) -> np.ndarray:
    """The top-left part with even sides that the DFT takes unpadded: on an odd or a padded
    size (45 or 44 rows) cv2.phaseCorrelate reports a half-pixel shift between two identical
    frames."""
    h, w = image.shape[:2]
    while h > 2 and (h % 2 or cv2.getOptimalDFTSize(h) != h):
        h -= 1
    while w > 2 and (w % 2 or cv2.getOptimalDFTSize(w) != w):
        w -= 1
    return image[:h, :w]


def _correlate(prev: np.ndarray, cur: np.ndarray, window: np.ndarray) -> tuple[tuple[float, float], float]:
    # Copies: with a window, cv2.phaseCorrelate multiplies its inputs in place (OpenCV 4.x),
    # which would corrupt the next frame's reference and the cell votes.
    (dx, dy), response = cv2.phaseCorrelate(prev.copy(), cur.copy(), window)
    return (float(dx), float(dy)), float(response)


def _agreement(prev: np.ndarray, cur: np.ndarray, shift: tuple[float, float], grid: int = 3) -> tuple[float, int]:
    """Do the parts of the picture agree that it moved by ``shift``?

    A camera that moves shifts every textured part of the picture; a car or a person shifts
    only the cells it is in, even when it dominates a plain background (a white car on dark
    asphalt pulls the global correlation peak to its own motion), and the still background's
    texture (lane marks) then matches better unshifted. Each of grid x grid cells votes for
    the shift (re-aligning it removes most of its difference), against it (it matches better
    as it is), or not at all (too flat to tell). Returns (for / (for + against), votes for).
    """
    h, w = cur.shape
    moved = cv2.warpAffine(prev, np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]), (w, h), flags=cv2.INTER_LINEAR)
    m = int(np.ceil(max(abs(shift[0]), abs(shift[1])))) + 1  # the warp's empty border
    raw = np.abs(cur - prev)[m : h - m, m : w - m]
    aligned = np.abs(cur - moved)[m : h - m, m : w - m]
    ch, cw = raw.shape[0] // grid, raw.shape[1] // grid
    if ch == 0 or cw == 0:  # a shift of most of the picture: nothing left to compare
        return 0.0, 0

    def cells(x: np.ndarray) -> np.ndarray:  # the mean of each cell, (grid, grid)
        return x[: grid * ch, : grid * cw].reshape(grid, ch, grid, cw).mean(axis=(1, 3))

    r, a = cells(raw), cells(aligned)
    textured = np.maximum(r, a) >= _FLAT
    votes_for = int(np.count_nonzero(textured & (a < 0.8 * r)))
    votes_against = int(np.count_nonzero(textured & (a >= r)))
    total = votes_for + votes_against
    return (votes_for / total if total else 0.0), votes_for


class CameraMotionDetector:
    """Feed it one grey thumbnail per frame (all of one size); it says whether the camera moves.

    The thumbnail is halved once more (about 80 px wide): a phase correlation on it costs
    well under 0.1 ms, and a camera shake is still a pixel or more there.
    """

    def __init__(self, config: CameraMotionConfig | None = None) -> None:
        self.config = config or CameraMotionConfig()
        self._windows: dict[tuple[int, int], np.ndarray] = {}
        self.reset()

    def update(self, grey: np.ndarray) -> CameraMotion:
        half = cv2.resize(grey, (max(8, grey.shape[1] // 2), max(8, grey.shape[0] // 2)), interpolation=cv2.INTER_AREA)
        cur = _dft_crop(half).astype(np.float32)
        prev, self._prev = self._prev, cur
        if prev is None or prev.shape != cur.shape:
            self._since = None
            return STILL
        cfg = self.config
        shift, response = _correlate(prev, cur, _hann(cur.shape, self._windows))
        agreement = 0.0
        if float(np.hypot(*shift)) >= cfg.min_shift and response >= cfg.min_response:
            agreement, votes = _agreement(prev, cur, shift)
            agreement = agreement if votes >= cfg.min_votes else 0.0
        if agreement >= cfg.min_agreement:
            self._since = 0
        elif self._since is not None:
            self._since += 1
        moving = self._since is not None and self._since <= cfg.settle_frames
        h, w = half.shape  # fractions of the whole picture, not of the part correlated
        return CameraMotion(moving, (shift[0] / w, shift[1] / h), response, agreement, self._since)

    def reset(self) -> None:
        """Forget the previous frame (e.g. after the source was lost and came back)."""
        self._prev: np.ndarray | None = None
        self._since: int | None = None
