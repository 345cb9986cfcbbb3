"""Box geometry on xyxy pixel boxes: IoU, cover and non-maximum suppression.

One implementation for the detector's decoding, the event rules (joining a tracker id
switch to its alert) and the evaluation of detectors against labels, so that "overlap"
means the same number everywhere.
"""

from __future__ import annotations

import numpy as np


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersections (M, N) of xyxy boxes (M, 4) x (N, 4), and the areas of each side."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    return inter, area_a, area_b


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes (M, 4) x (N, 4) -> (M, N); a degenerate box overlaps nothing."""
    inter, area_a, area_b = _overlap(a, b)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def box_cover_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the smaller box, (M, 4) x (N, 4) -> (M, N): 1 when one box lies
    inside the other, whatever their sizes."""
    inter, area_a, area_b = _overlap(a, b)
    return inter / np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-9)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box (4,) with many (N, 4); returns (N,)."""
    return box_iou_matrix(np.asarray(box).reshape(1, 4), np.asarray(boxes).reshape(-1, 4))[0]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, highest score first.

    One vectorised IoU per kept box: the loop runs over survivors (at most ``max_keep``),
    never over pixels.
    """
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and (max_keep is None or len(keep) < max_keep):
        best = order[0]
        keep.append(int(best))
        rest = order[1:]
        order = rest[box_iou(boxes[best], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def class_nms(boxes: np.ndarray, scores: np.ndarray, class_id: np.ndarray, iou_threshold: float,
              max_keep: int | None = None) -> np.ndarray:
    """``nms`` within each class: a box never suppresses one of another class.

    Each class is shifted by more than the span of all coordinates (boxes may reach past
    the frame's edges into negative values), so no two classes overlap and one pass does it.
    """
    if not len(scores):
        return np.zeros(0, np.int64)
    offset = np.float32(boxes.max() - boxes.min() + 1)
    return nms(boxes + (class_id.astype(np.float32) * offset)[:, None], scores, iou_threshold, max_keep)
