"""Overlap measures shared by decoding, events and evaluation."""

from __future__ import annotations

import numpy as np

from vision.geometry import box_cover_matrix, box_iou_matrix


def test_cover_is_one_for_a_box_inside_another_where_iou_is_small():
    label = np.array([[0, 0, 100, 100]], np.float32)
    boxes = np.array([[20, 20, 70, 70],      # inside: IoU 0.25
                      [50, 0, 150, 100],     # half of each
                      [200, 200, 300, 300],  # apart
                      [10, 10, 10, 50]], np.float32)  # no area
    np.testing.assert_allclose(box_cover_matrix(label, boxes), [[1.0, 0.5, 0.0, 0.0]])
    np.testing.assert_allclose(box_iou_matrix(label, boxes), [[0.25, 1 / 3, 0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(box_cover_matrix(boxes[:1], label), [[1.0]])  # symmetric in the smaller box
