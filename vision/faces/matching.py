"""Compare dlib face encodings, and store them as bytes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ENCODING_DIM = 128
ENCODING_BYTES = ENCODING_DIM * 8  # float64
_STORED_DTYPE = np.dtype("<f8")  # fixed byte order: a DB row must read back on any machine


@dataclass(frozen=True)
class Match:
    """Closest template: ``index`` into the templates (None when there are none)."""

    index: int | None
    distance: float
    accepted: bool


def face_distance(templates: np.ndarray, encoding: np.ndarray) -> np.ndarray:
    """Euclidean distances, shape (K,), from each of ``templates`` (K, 128) to ``encoding`` (128,)."""
    probe = _check_encoding(encoding)
    stack = np.asarray(templates, dtype=np.float64)
    if stack.size == 0:
        return np.empty(0, dtype=np.float64)
    if stack.ndim != 2 or stack.shape[1] != ENCODING_DIM:
        raise ValueError(f"templates must have shape (K, {ENCODING_DIM}), got {stack.shape}")
    return np.linalg.norm(stack - probe, axis=1)


def best_match(templates: np.ndarray, encoding: np.ndarray, *, threshold: float) -> Match:
    """The nearest template; accepted when its distance is <= ``threshold`` (dlib: 0.6 usual, 0.5 strict).

    The nearest, not the mean or the templates' centroid: with several photos enrolled it
    accepts the most genuine selfies and no impostor (bench/face_templates.py; README)."""
    distances = face_distance(templates, encoding)
    if distances.size == 0:
        return Match(index=None, distance=float("inf"), accepted=False)
    index = int(np.argmin(distances))
    distance = float(distances[index])
    return Match(index=index, distance=distance, accepted=distance <= threshold)


@dataclass(frozen=True)
class Spread:
    """How far apart one person's templates are: the smallest, median and largest of their
    pairwise distances (None with fewer than two templates)."""

    count: int
    smallest: float | None = None
    median: float | None = None
    largest: float | None = None


def template_spread(templates: np.ndarray) -> Spread:
    stack = np.asarray(templates, dtype=np.float64).reshape(-1, ENCODING_DIM)
    if len(stack) < 2:
        return Spread(len(stack))
    rows, cols = np.triu_indices(len(stack), k=1)
    pairs = np.linalg.norm(stack[rows] - stack[cols], axis=1)
    return Spread(len(stack), float(pairs.min()), float(np.median(pairs)), float(pairs.max()))


def encoding_to_bytes(encoding: np.ndarray) -> bytes:
    """128 float64 little-endian values: 1024 bytes."""
    return _check_encoding(encoding).astype(_STORED_DTYPE, copy=False).tobytes()


def encoding_from_bytes(data: bytes) -> np.ndarray:
    """Inverse of ``encoding_to_bytes``; returns a writable (128,) float64 array."""
    if len(data) != ENCODING_BYTES:
        raise ValueError(f"a stored encoding is {ENCODING_BYTES} bytes, got {len(data)}")
    encoding = np.frombuffer(data, dtype=_STORED_DTYPE).astype(np.float64)
    return _check_encoding(encoding)


def _check_encoding(encoding: np.ndarray) -> np.ndarray:
    array = np.asarray(encoding, dtype=np.float64)
    if array.shape != (ENCODING_DIM,):
        raise ValueError(f"an encoding has shape ({ENCODING_DIM},), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("an encoding must be finite")
    return array
