"""Box labels stay readable where flames usually are: at the top of the frame, under the
caption bar, and at its right edge. Asserted on pixels of the annotated image."""

from __future__ import annotations

import cv2
import numpy as np

from vision.annotate import annotate, box_label, caption_height, label_scale
from vision.types import Detections

RED = (0, 0, 255)  # the fire colour: box outline and label background
GREY = 128
LABEL = "fire 0.87"


def _annotate(w: int, h: int, box: list[float]) -> np.ndarray:
    image = np.full((h, w, 3), GREY, np.uint8)
    dets = Detections([box], [0.87], [0], [3])
    return annotate(image, dets, {0: "fire"}, camera="yard", wall=1_700_000_000.0)


def _label_rows(out: np.ndarray, min_red: int) -> np.ndarray:
    """Rows holding a label: red background or white text, wider than a box's vertical edges."""
    label = np.all(out == RED, axis=2) | (out.min(axis=2) > 150)
    label[: caption_height(label_scale(out.shape[1::-1]))] = False  # the caption's white text
    return np.flatnonzero(label.sum(axis=1) >= min_red)


def _text_width(w: int, h: int) -> int:
    (tw, _), _ = cv2.getTextSize(LABEL, cv2.FONT_HERSHEY_SIMPLEX, label_scale((w, h)), 1)
    return tw


def test_label_of_a_box_at_the_top_is_below_the_caption_bar() -> None:
    w, h = 640, 480
    out = _annotate(w, h, [100, 0, 400, 300])
    bar = caption_height(label_scale((w, h)))
    rows = _label_rows(out, min_red=40)
    rows = rows[rows != 300]  # the box's bottom edge
    assert rows.size, "no label visible"
    assert rows.min() > bar  # not under the bar
    label = out[rows.min():rows.max() + 1, 100:100 + _text_width(w, h)]
    assert (label.min(axis=2) > 200).sum() > 20  # white text drawn on it
    assert not np.all(out[:bar] == RED, axis=2).any()  # the bar is intact


def test_label_on_a_240_line_frame_box_touching_the_top() -> None:
    w, h = 320, 240
    out = _annotate(w, h, [10, 2, 200, 120])
    bar = caption_height(label_scale((w, h)))
    rows = _label_rows(out, min_red=30)
    rows = rows[rows != 120]
    assert rows.size and rows.min() > bar
    assert rows.max() < 120  # inside the box, which has room for it
    white = out[bar + 1:rows.max() + 1].min(axis=2) > 200
    assert white.sum() > 20


def test_label_at_the_right_edge_is_shifted_into_the_frame() -> None:
    w, h = 320, 240
    out = _annotate(w, h, [290, 100, 319, 160])
    rows = _label_rows(out, min_red=30)
    rows = rows[rows < 100]  # above the box (there is room), not its edges
    assert rows.size
    red = np.all(out[rows] == RED, axis=2)
    left = int(np.flatnonzero(red.any(axis=0)).min())
    # The whole label fits: it starts far enough left to end inside the frame.
    assert left <= w - _text_width(w, h) - 2


def test_label_of_a_box_at_the_bottom_stays_in_the_frame() -> None:
    w, h = 320, 240
    out = _annotate(w, h, [20, 232, 120, 239])
    rows = _label_rows(out, min_red=20)  # a short label on 240 lines: ~50 px wide
    assert (rows < 232).sum() >= 8  # a full label's height above the box


def test_label_says_class_severity_and_confidence_without_the_track_number() -> None:
    assert box_label("fire", 0.87) == LABEL
    assert box_label("fire", 0.87, "fire") == LABEL
    assert box_label("fire", 0.41, "start-fire") == "starting fire 0.41"
    assert box_label("smoke", 0.5) == "smoke 0.50"
