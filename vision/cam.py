"""Heat-map overlay for class-activation maps (see :meth:`FireClassifier.cam`)."""

from __future__ import annotations

import cv2
import numpy as np


def overlay(image_bgr: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a (H, W) 0..1 heat map over a BGR image of the same size (JET colour map)."""
    if heat.shape[:2] != image_bgr.shape[:2]:
        heat = cv2.resize(heat, (image_bgr.shape[1], image_bgr.shape[0]))
    colour = cv2.applyColorMap(
        np.clip(heat * 255.0, 0, 255).astype(np.uint8), cv2.COLORMAP_JET
    )
    return cv2.addWeighted(image_bgr, 1.0 - alpha, colour, alpha, 0.0)
