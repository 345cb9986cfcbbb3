"""What a selfie analysis returns: a status the bot can act on, never an exception."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class FaceStatus(str, Enum):
    OK = "ok"
    NO_FACE = "no_face"
    MANY_FACES = "many_faces"
    UNREADABLE = "unreadable"
    TOO_SMALL_IMAGE = "too_small_image"
    TOO_LARGE = "too_large"


NO_FACE_MESSAGE = "No face found — face the camera in good light, about an arm's length away."
UNREADABLE_MESSAGE = "I couldn't read that image — send it as a photo (JPEG, PNG or WebP)."


@dataclass(frozen=True, eq=False)  # holds arrays: == would be ambiguous
class FaceResult:
    """Outcome of analysing one photo or frame.

    ``encoding`` is a (128,) float64 dlib descriptor, set only when ``status`` is OK.
    ``message`` is a short reply fit to send to the user as is.
    Times are in seconds (wall clock, including waiting for the encoder's lock).
    """

    status: FaceStatus
    message: str
    encoding: np.ndarray | None = None
    faces: int = 0
    decode_s: float = 0.0
    detect_s: float = 0.0
    encode_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is FaceStatus.OK

    @property
    def total_s(self) -> float:
        return self.decode_s + self.detect_s + self.encode_s
