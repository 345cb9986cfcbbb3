"""Turn photo bytes as received from Telegram into an upright 8-bit RGB array, bounded in size."""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from vision.faces.outcome import UNREADABLE_MESSAGE, FaceStatus

# 60 MP covers every phone camera in use (up to ~50 MP sensors) yet stays far below what
# would exhaust memory: a JPEG is decoded at 1/2..1/8 scale (draft), other formats at full
# size (~240 MB for 60 MP RGBA), then shrunk.
MAX_PIXELS = 60_000_000
# The HOG detector finds faces down to ~40 px with one upsampling: smaller images cannot
# hold a usable face.
MIN_SIDE = 40
# A selfie face stays far above the detector's 80 px minimum at this size, and
# detection + encoding stay well under the 0.5 s budget.
MAX_SIDE = 1024

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_UNBOUNDED_MODES = frozenset({"I", "F"})


class PhotoRejected(Exception):
    """A photo that cannot be analysed; ``status`` and ``message`` go into a FaceResult."""

    def __init__(self, status: FaceStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, eq=False)  # holds arrays: == would be ambiguous
class DecodedPhoto:
    """``rgb``: (H, W, 3) uint8, upright, longest side <= max_side.

    ``original_size`` is (width, height) as stored in the file (before EXIF rotation).
    """

    rgb: np.ndarray
    original_size: tuple[int, int]


def photo_hash(data: bytes) -> str:
    """SHA-256 hex of the raw bytes.

    Telegram serves the very same file when a photo is resent or forwarded, so raw bytes
    catch a replayed selfie. A pixel hash would buy nothing: a re-upload is re-compressed
    by the client, which changes pixels as well as bytes.
    """
    return hashlib.sha256(data).hexdigest()


def decode_photo(
    data: bytes,
    *,
    max_side: int = MAX_SIDE,
    max_pixels: int = MAX_PIXELS,
    min_side: int = MIN_SIDE,
) -> DecodedPhoto:
    """Decode, honour EXIF orientation, convert to 8-bit RGB, shrink to ``max_side``.

    Raises PhotoRejected (UNREADABLE, TOO_SMALL_IMAGE, TOO_LARGE) for photos it refuses.
    """
    if not data:
        raise PhotoRejected(FaceStatus.UNREADABLE, UNREADABLE_MESSAGE)
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        # Pillow refuses > 2 x MAX_IMAGE_PIXELS (~179 MP) itself, before we can look.
        raise PhotoRejected(FaceStatus.TOO_LARGE, _too_large_message(None, max_pixels)) from None
    except Exception:
        # Pillow's format parsers raise a zoo of types (OSError, ValueError, SyntaxError,
        # struct.error...) on malformed input: all mean the same to the user.
        raise PhotoRejected(FaceStatus.UNREADABLE, UNREADABLE_MESSAGE) from None

    width, height = image.size  # from the header only: nothing decoded yet
    if width * height > max_pixels:
        raise PhotoRejected(FaceStatus.TOO_LARGE, _too_large_message(width * height, max_pixels))
    if min(width, height) < min_side:
        raise PhotoRejected(
            FaceStatus.TOO_SMALL_IMAGE,
            f"That image is too small ({width}×{height} px) — send a normal camera photo.",
        )

    try:
        _draft(image, max_side)
        image = ImageOps.exif_transpose(image)
        image = _to_rgb8(image)
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
        rgb = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    except Exception:
        # Truncated or corrupt pixel data only shows up when decoding.
        raise PhotoRejected(FaceStatus.UNREADABLE, UNREADABLE_MESSAGE) from None
    return DecodedPhoto(rgb=rgb, original_size=(width, height))


def _too_large_message(pixels: int | None, max_pixels: int) -> str:
    size = f" ({pixels / 1e6:.0f} MP)" if pixels else ""
    return (
        f"That image is too large{size} — send a photo of at most "
        f"{max_pixels / 1e6:.0f} megapixels."
    )


def _draft(image: Image.Image, max_side: int) -> None:
    """Let the JPEG decoder scale down by 1/2..1/8 while decoding (no-op for other formats).

    This is what keeps a 50 MP JPEG at ~0.3 s and ~30 MB instead of seconds and 150 MB.
    The target keeps the long side >= max_side so the final resize only ever shrinks.
    """
    width, height = image.size
    longest = max(width, height)
    if longest <= max_side:
        return
    ratio = max_side / longest
    image.draft(None, (math.ceil(width * ratio), math.ceil(height * ratio)))


def _to_rgb8(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode in _UNBOUNDED_MODES:
        # Pillow's convert("RGB") clips these to 0..255 instead of scaling: do it here.
        values = np.asarray(image, dtype=np.float64)
        if mode in _SIXTEEN_BIT_MODES:
            values = values / 257.0
        else:
            low, high = float(values.min()), float(values.max())
            values = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if "A" in mode or "a" in mode or (mode == "P" and "transparency" in image.info):
        # Transparent pixels carry arbitrary colour (often black): flatten onto white, as a
        # viewer would show them, so no hidden content reaches the detector.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode != "RGB":
        return image.convert("RGB")
    return image
