"""The YOLO model format: letterboxed input, output decoding, and the detector built on them.

The only module that knows ultralytics' input geometry and output layout; it runs on any
runtime (``vision.detectors.registry``). Class names and input size come from the model's
metadata, so any model written by ``training/`` loads without extra configuration.
Pre-processing (letterbox) reuses its buffers; post-processing (confidence filter,
class-aware NMS) is vectorised numpy.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.detectors.base import ModelRuntime, RuntimeOptions
from vision.detectors.registry import DEFAULT_RUNTIME, open_runtime
from vision.geometry import class_nms
from vision.types import Detections

log = logging.getLogger(__name__)

# An untrained or confused model can pass thousands of anchors; NMS cost grows with them.
_MAX_CANDIDATES = 1000


@dataclass(frozen=True)
class LetterboxGeometry:
    """How an image of ``src`` (h, w) was placed into the model input: scaled by ``scale``
    to ``resized`` (h, w), then padded by ``pad`` (x, y) on the left/top."""

    src: tuple[int, int]
    scale: float
    resized: tuple[int, int]
    pad: tuple[int, int]

    @classmethod
    def fit(cls, src: tuple[int, int], dst: tuple[int, int]) -> LetterboxGeometry:
        """Same arithmetic as ultralytics' LetterBox (centred, no upscale limit)."""
        scale = min(dst[0] / src[0], dst[1] / src[1])
        new_h, new_w = int(round(src[0] * scale)), int(round(src[1] * scale))
        pad_y = int(round((dst[0] - new_h) / 2 - 0.1))
        pad_x = int(round((dst[1] - new_w) / 2 - 0.1))
        return cls(src, scale, (new_h, new_w), (pad_x, pad_y))

    def to_source(self, xyxy: np.ndarray) -> np.ndarray:
        """Map (N, 4) boxes from model-input pixels back to source pixels, clipped."""
        pad = np.array([*self.pad, *self.pad], dtype=np.float32)
        out = (xyxy - pad) / np.float32(self.scale)
        h, w = self.src
        np.clip(out[:, 0::2], 0, w, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, h, out=out[:, 1::2])
        return out

    def to_input(self, xyxy: np.ndarray) -> np.ndarray:
        """Map (N, 4) boxes from source pixels into model-input pixels."""
        pad = np.array([*self.pad, *self.pad], dtype=np.float32)
        return np.asarray(xyxy, np.float32) * np.float32(self.scale) + pad


@dataclass(frozen=True)
class Prepared:
    """A frame letterboxed into the model's input."""

    blob: np.ndarray
    geometry: LetterboxGeometry


@dataclass(frozen=True)
class Inferred:
    """The model's raw output for one frame, with the geometry that maps it back."""

    output: np.ndarray
    geometry: LetterboxGeometry


class Letterbox:
    """Resize-and-pad into a fixed (h, w) input, writing into buffers allocated once.

    The padding is only refilled when the source size changes (a camera's frames all have
    one size), so a frame costs one resize and one normalising copy.
    """

    def __init__(self, size: tuple[int, int], fill: int = 114) -> None:
        self.size = size
        self.fill = fill
        self.canvas = np.full((size[0], size[1], 3), fill, np.uint8)
        self.blob = np.empty((1, 3, size[0], size[1]), np.float32)
        self._geometry: LetterboxGeometry | None = None
        self._resized: np.ndarray | None = None

    def __call__(self, image: np.ndarray, fresh: bool = False) -> tuple[np.ndarray, LetterboxGeometry]:
        """Return the (1, 3, h, w) float32 RGB blob in [0, 1] and the geometry.

        The blob is a reused buffer unless ``fresh``: a staged pipeline letterboxes the next
        frame while the previous blob is still being inferred.
        """
        src = (image.shape[0], image.shape[1])
        geometry = self._geometry
        if geometry is None or geometry.src != src:
            geometry = self._geometry = LetterboxGeometry.fit(src, self.size)
            self.canvas.fill(self.fill)
            self._resized = np.empty((*geometry.resized, 3), np.uint8)
        new_h, new_w = geometry.resized
        if (new_h, new_w) == src:
            resized = image
        else:
            resized = cv2.resize(image, (new_w, new_h), dst=self._resized, interpolation=cv2.INTER_LINEAR)
        pad_x, pad_y = geometry.pad
        self.canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
        # BGR -> RGB, HWC -> CHW and scaling in one pass into the reused blob.
        blob = np.empty_like(self.blob) if fresh else self.blob
        np.multiply(self.canvas[..., ::-1].transpose(2, 0, 1), np.float32(1 / 255), out=blob[0])
        return blob, geometry


def postprocess(
    output: np.ndarray,
    geometry: LetterboxGeometry,
    conf_threshold: float,
    iou_threshold: float,
    max_det: int = 100,
) -> Detections:
    """Turn a raw YOLO output into source-pixel ``Detections``.

    ``output`` is either the usual (1, 4 + nc, anchors) head (cx, cy, w, h, class scores) or an
    end-to-end head (1, max_det, 6) of (x1, y1, x2, y2, score, class) that needs no NMS.
    """
    pred = output[0]
    if pred.ndim == 2 and pred.shape[-1] == 6 and pred.shape[0] != 6:  # end-to-end head
        pred = pred[pred[:, 4] >= conf_threshold][:max_det]
        return Detections(geometry.to_source(pred[:, :4]), pred[:, 4], pred[:, 5].astype(np.int32))
    scores = pred[4:]
    class_id = scores.argmax(axis=0)
    confidence = scores[class_id, np.arange(scores.shape[1])]
    mask = confidence >= conf_threshold
    if not mask.any():
        return Detections.empty()
    cxcywh = pred[:4, mask].T
    confidence, class_id = confidence[mask], class_id[mask]
    if len(confidence) > _MAX_CANDIDATES:
        top = np.argpartition(-confidence, _MAX_CANDIDATES)[:_MAX_CANDIDATES]
        cxcywh, confidence, class_id = cxcywh[top], confidence[top], class_id[top]
    half = cxcywh[:, 2:] / 2
    xyxy = np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1)
    keep = class_nms(xyxy, confidence, class_id, iou_threshold, max_det)
    return Detections(geometry.to_source(xyxy[keep]), confidence[keep], class_id[keep])


def read_metadata(meta: dict[str, str], input_shape: Sequence) -> tuple[dict[int, str], tuple[int, int]]:
    """Class names and input (h, w) from ultralytics' ONNX metadata, else from the input shape."""
    names = ast.literal_eval(meta["names"]) if "names" in meta else {}
    if "imgsz" in meta:
        imgsz = ast.literal_eval(meta["imgsz"])
        imgsz = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
    elif all(isinstance(d, int) for d in input_shape[2:4]):
        imgsz = (int(input_shape[2]), int(input_shape[3]))
    else:
        imgsz = (640, 640)
    return {int(k): str(v) for k, v in names.items()}, (int(imgsz[0]), int(imgsz[1]))


def input_size(model: str | Path, runtime: str = DEFAULT_RUNTIME) -> tuple[int, int]:
    """A model file's (h, w) input, as ``Detector`` reads it, without building a detector."""
    loaded = open_runtime(runtime, model, RuntimeOptions(threads=1, providers=["CPUExecutionProvider"]))
    return read_metadata(loaded.metadata, loaded.input_shape)[1]


class YoloDetector:
    """A YOLO model on a runtime: call it with a BGR image to get ``Detections`` in image
    pixels, or run its three stages apart (``vision.detectors.base.StagedDetector``)."""

    def __init__(
        self,
        runtime: ModelRuntime,
        *,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        max_det: int = 100,
        name: str = "model",
    ) -> None:
        self.runtime = runtime
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.max_det = max_det
        self.names, self.imgsz = read_metadata(runtime.metadata, runtime.input_shape)
        self.letterbox = Letterbox(self.imgsz)
        self._half = runtime.input_dtype == np.float16
        log.info("detector %s: classes %s, input %sx%s, providers %s",
                 name, self.names, self.imgsz[1], self.imgsz[0], self.providers)

    @property
    def providers(self) -> list[str]:
        return self.runtime.providers

    def class_name(self, class_id: int) -> str:
        return self.names.get(int(class_id), str(class_id))

    def __call__(self, image: np.ndarray) -> Detections:
        return self.decode(self.infer(self.prepare(image, fresh=False)))

    def prepare(self, image: np.ndarray, fresh: bool = True, letterbox: Letterbox | None = None) -> Prepared:
        """Letterbox ``image`` into the model's input (a new buffer unless ``fresh`` is False).
        ``letterbox``: other buffers than the detector's own, for a caller on another thread."""
        blob, geometry = (letterbox or self.letterbox)(image, fresh=fresh)
        return Prepared(blob.astype(np.float16) if self._half else blob, geometry)

    def infer(self, prepared: Prepared) -> Inferred:
        return Inferred(self.runtime.run(prepared.blob), prepared.geometry)

    def decode(self, inferred: Inferred) -> Detections:
        return postprocess(
            inferred.output.astype(np.float32, copy=False), inferred.geometry,
            self.conf_threshold, self.iou_threshold, self.max_det,
        )


class Detector(YoloDetector):
    """A YOLO model file on the runtime named ``runtime``: what the daemon, the tools and the
    tests build. ``threads``, ``providers`` and ``trt_cache_dir`` go to the runtime."""

    def __init__(
        self,
        model: str | Path,
        *,
        runtime: str = DEFAULT_RUNTIME,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        max_det: int = 100,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        trt_cache_dir: str | Path | None = None,
    ) -> None:
        self.path = Path(model)
        if not self.path.is_file():
            raise FileNotFoundError(f"detector model not found: {self.path}")
        options = RuntimeOptions(threads, providers, Path(trt_cache_dir) if trt_cache_dir else None)
        super().__init__(open_runtime(runtime, self.path, options), conf_threshold=conf_threshold,
                         iou_threshold=iou_threshold, max_det=max_det, name=self.path.name)
