"""The crop the fire classifier sees around a detector box.

One rule shared by training (which made the crops the classifier learnt from) and the
pipeline (which grades live detections), so that both see the same picture.
"""

from __future__ import annotations

import numpy as np

# Crop window: the box grown by CONTEXT_MARGIN, but never smaller than MIN_WINDOW times the
# frame's geometric-mean side, so a small fire stays small in the resized crop: scale is the
# only cue that separates start-fire from fire once the crop is resized.
CONTEXT_MARGIN = 0.5
MIN_WINDOW = 0.3


def context_window(
    box_xyxy: tuple[float, float, float, float] | np.ndarray,
    frame_hw: tuple[int, int],
    margin: float = CONTEXT_MARGIN,
    min_window: float = MIN_WINDOW,
) -> tuple[int, int, int, int]:
    """Pixel window (x1, y1, x2, y2) around a box: square, inside the frame where it fits."""
    h, w = frame_hw
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    side = max(max(x2 - x1, y2 - y1) * (1.0 + margin), min_window * float(np.sqrt(h * w)))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0

    def span(center: float, size: float, limit: int) -> tuple[int, int]:
        size = min(size, float(limit))
        lo = min(max(center - size / 2.0, 0.0), limit - size)  # shift inside, don't clip
        return int(round(lo)), int(round(lo + size))

    wx1, wx2 = span(cx, side, w)
    wy1, wy2 = span(cy, side, h)
    return wx1, wy1, max(wx2, wx1 + 1), max(wy2, wy1 + 1)


def context_crop(
    frame_bgr: np.ndarray, box_xyxy: tuple[float, float, float, float] | np.ndarray
) -> np.ndarray:
    """The crop the classifier expects for a detector box (see :func:`context_window`)."""
    x1, y1, x2, y2 = context_window(box_xyxy, frame_bgr.shape[:2])
    return frame_bgr[y1:y2, x1:x2]
