"""Selfie faces: photo bytes -> one dlib encoding, and matching against enrolled templates.

Knows nothing of Telegram or the database: the bot enrols and matches, storage keeps
``encoding_to_bytes`` blobs and ``photo_hash`` values.
"""

from vision.faces.encoder import FaceEncoder, default_models_dir
from vision.faces.matching import (
    ENCODING_BYTES,
    ENCODING_DIM,
    Match,
    Spread,
    best_match,
    encoding_from_bytes,
    encoding_to_bytes,
    face_distance,
    template_spread,
)
from vision.faces.outcome import FaceResult, FaceStatus
from vision.faces.photo import MAX_PIXELS, MAX_SIDE, MIN_SIDE, DecodedPhoto, decode_photo, photo_hash

__all__ = [
    "ENCODING_BYTES",
    "ENCODING_DIM",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIN_SIDE",
    "DecodedPhoto",
    "FaceEncoder",
    "FaceResult",
    "FaceStatus",
    "Match",
    "Spread",
    "best_match",
    "decode_photo",
    "default_models_dir",
    "encoding_from_bytes",
    "encoding_to_bytes",
    "face_distance",
    "photo_hash",
    "template_spread",
]
