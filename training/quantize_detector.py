"""Compress the fire/smoke detector ONNX: static INT8 and FP16, each checked against FP32.

INT8 is onnxruntime static quantization (QDQ, per-channel weights) of Conv/MatMul/Gemm only,
calibrated on train images passed through the daemon's own letterbox. Quantizing every op
zeroes the YOLO scores (boxes and class scores would share one output scale), and the network's
first convolutions (:func:`stem_convs`) stay float: quantized, they cost v2 a third of its
mAP50 (0.376 against FP32's 0.556; 0.531 with them float, ``models/fire-detector-v2.md``). FP16 uses
onnxruntime's converter with float32 input/output kept, so the daemon feeds it unchanged.
:func:`compare` measures each variant against FP32 on real images: correlation of the raw
(1, 4 + nc, anchors) output and of its score rows, and box IoU of matched detections.

    python -m training.quantize_detector --src models/fire-detector.onnx --out-dir OUT

The source may be a shipped file with float16 storage (``training.onnx_tools.fp16_storage``):
its weights are restored to float32 first.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from firewatch.paths import SHIPPED_DETECTOR, data_root
from training.onnx_tools import copy_metadata, float32_weights, to_fp16
from vision.detectors import input_size

log = logging.getLogger(__name__)

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
# The Detect head's last 1x1 convs (box distribution cv2.i.2, class logits cv3.i.2) and the DFL
# conv write the raw output: one activation scale per tensor cannot hold box offsets and
# class logits at once, so these few layers stay float.
HEAD_OUTPUT_CONV = re.compile(r"/(cv2|cv3)\.\d+\.2/Conv$|/dfl/conv/Conv$")
# The stem: v2's first conv and first MBConv block (its depthwise and projection convs), v1's
# first three convs. Their activations carry the image's full range through few channels, and
# 8 bits per tensor there degrade everything after: keeping them float took v2's INT8 score
# correlation with FP32 from 0.68 to 0.95, for 4 % of its multiply-adds left in float.
STEM_CONVS = 3




def letterboxed(images: Sequence[Path], size: tuple[int, int]) -> np.ndarray:
    """(N, 3, h, w) float32 inputs made by the daemon's ``Letterbox`` from image files."""
    from vision.detectors.yolo import Letterbox

    letterbox = Letterbox(size)
    out = np.empty((len(images), 3, *size), np.float32)
    for i, path in enumerate(images):
        image = cv2.imread(str(path))
        if image is None:
            raise ValueError(f"cannot read image {path}")
        out[i] = letterbox(image)[0][0]  # the blob is a reused buffer: copy it out
    return out


def sample_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` images drawn at random (fixed seed) from ``folder``: calibration must see every source."""
    images = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not images:
        raise FileNotFoundError(f"no images in {folder}")
    idx = np.random.default_rng(seed).choice(len(images), size=min(n, len(images)), replace=False)
    return [images[i] for i in sorted(idx)]


class _Calibration:
    """onnxruntime CalibrationDataReader over (N, 3, h, w) float32 inputs, one image a batch
    (the exported detector has a fixed batch of 1)."""

    def __init__(self, inputs: np.ndarray, name: str) -> None:
        self._it = iter({name: inputs[i : i + 1]} for i in range(len(inputs)))

    def get_next(self):
        return next(self._it, None)


def head_output_convs(model: Path) -> list[str]:
    """Names of the Detect head's output convs in an ultralytics-exported graph."""
    import onnx

    graph = onnx.load(str(model)).graph
    return [n.name for n in graph.node if n.op_type == "Conv" and HEAD_OUTPUT_CONV.search(n.name)]


def stem_convs(model: Path, count: int = STEM_CONVS) -> list[str]:
    """Names of the first ``count`` convs in graph (that is, topological) order."""
    import onnx

    return [n.name for n in onnx.load(str(model)).graph.node if n.op_type == "Conv"][:count]


def quantize_int8(
    src: Path,
    dst: Path,
    calibration: np.ndarray,
    *,
    per_channel: bool = True,
    keep_head_float: bool = True,
    keep_stem_float: bool = True,
    op_types: Sequence[str] = QUANTIZED_OPS,
) -> Path:
    """Static INT8 (QDQ) of Conv/MatMul/Gemm, calibrated (MinMax) on ``calibration`` (N, 3, h, w).
    These stay float: with ``keep_head_float`` the head's output convs (:data:`HEAD_OUTPUT_CONV`), with
    ``keep_stem_float`` the stem (:func:`stem_convs`)."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    with tempfile.TemporaryDirectory() as tmp:
        # onnxruntime's recommended pre-pass (shape inference + graph optimisation) before calibration.
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared))
        exclude = (head_output_convs(prepared) if keep_head_float else []) + (
            stem_convs(prepared) if keep_stem_float else [])
        quantize_static(
            str(prepared), str(dst), _Calibration(calibration, name),
            quant_format=QuantFormat.QDQ, op_types_to_quantize=list(op_types), per_channel=per_channel,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude,
            extra_options={"CalibTensorRangeSymmetric": False},
        )
    copy_metadata(src, dst)
    return dst




@dataclass(frozen=True)
class Agreement:
    """A variant against its FP32 source on the same ``images`` inputs.

    ``output_corr``: Pearson correlation of the whole raw output (boxes and scores);
    ``score_corr``: of the class-score rows only (what thresholds act on);
    ``max_score_diff``: largest absolute score difference; ``score_spread``: standard deviation
    of the variant's scores over that of FP32 (near 0 when quantization flattened them);
    ``matched``: share of FP32 detections (at ``conf``) that the variant also gives, same class,
    IoU >= 0.5; ``mean_iou``: mean IoU of the best same-class variant box for each FP32
    detection (None when FP32 detects nothing on these images).
    """

    images: int
    output_corr: float
    score_corr: float
    max_score_diff: float
    score_spread: float
    fp32_detections: int
    variant_detections: int
    matched: float | None
    mean_iou: float | None


def raw_outputs(model: Path, inputs: np.ndarray, threads: int = 1) -> np.ndarray:
    """Raw model output for each input: (N, 4 + nc, anchors) float32."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    s = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    outputs = [s.run(None, {name: inputs[i : i + 1]})[0] for i in range(len(inputs))]
    return np.concatenate(outputs).astype(np.float32)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return float(np.array_equal(a, b))
    return float(np.corrcoef(a, b)[0, 1])


def compare(
    reference: Path, variant: Path, images: Sequence[Path], *, conf: float = 0.25, iou: float = 0.5
) -> Agreement:
    """Score ``variant`` against ``reference`` (FP32) on image files."""
    from vision.geometry import box_iou_matrix
    from vision.detectors.yolo import LetterboxGeometry, postprocess

    size = input_size(reference)
    inputs = letterboxed(images, size)
    ref, var = raw_outputs(reference, inputs), raw_outputs(variant, inputs)
    # Boxes are compared in model-input pixels: the geometry is the identity there.
    identity = LetterboxGeometry(size, 1.0, size, (0, 0))
    ious: list[float] = []
    n_ref = n_var = hits = 0
    for r, v in zip(ref, var):
        dr = postprocess(r[None], identity, conf, 0.5)
        dv = postprocess(v[None], identity, conf, 0.5)
        n_ref, n_var = n_ref + len(dr), n_var + len(dv)
        if not len(dr):
            continue
        m = box_iou_matrix(dr.xyxy, dv.xyxy) * (dr.class_id[:, None] == dv.class_id[None, :])
        best = m.max(axis=1) if len(dv) else np.zeros(len(dr))
        ious.extend(best.tolist())
        hits += int((best >= iou).sum())
    return Agreement(
        images=len(images),
        output_corr=round(_corr(ref, var), 5),
        score_corr=round(_corr(ref[:, 4:], var[:, 4:]), 5),
        max_score_diff=round(float(np.abs(ref[:, 4:] - var[:, 4:]).max()), 4),
        score_spread=round(float(var[:, 4:].std() / max(ref[:, 4:].std(), 1e-12)), 4),
        fp32_detections=n_ref,
        variant_detections=n_var,
        matched=round(hits / n_ref, 4) if n_ref else None,
        mean_iou=round(float(np.mean(ious)), 4) if ious else None,
    )


@dataclass(frozen=True)
class Variants:
    int8: Path
    fp16: Path


def compress(src: Path, out_dir: Path, data_dir: Path, *, calibration_images: int = 200, seed: int = 0) -> Variants:
    """Write ``<stem>-int8.onnx`` and ``<stem>-fp16.onnx`` of ``src`` into ``out_dir``."""
    src, out_dir = Path(src), Path(out_dir)
    train = sample_images(Path(data_dir) / "images" / "train", calibration_images, seed)
    calib = letterboxed(train, input_size(src))
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = float32_weights(src, Path(tmp) / src.name)
        int8 = quantize_int8(fp32, out_dir / f"{src.stem}-int8.onnx", calib)
        fp16 = to_fp16(fp32, out_dir / f"{src.stem}-fp16.onnx")
    return Variants(int8, fp16)


def main(argv: Sequence[str] | None = None) -> dict:
    """Compress, then check each variant against FP32 (agreement, and mAP on val unless skipped)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=SHIPPED_DETECTOR)
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=data_root() / "fire")
    ap.add_argument("--calibration-images", type=int, default=200)
    ap.add_argument("--check-images", type=int, default=50, help="val images for the agreement check")
    ap.add_argument("--eval-limit", type=int, default=0, help="val images for mAP (0: all, -1: skip)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    variants = compress(args.src, args.out_dir, args.data, calibration_images=args.calibration_images)
    check = sample_images(args.data / "images" / "val", args.check_images, seed=1)
    result: dict = {"src": str(args.src), "variants": {}}
    for name, path in (("int8", variants.int8), ("fp16", variants.fp16)):
        agreement = compare(args.src, path, check)
        result["variants"][name] = {"path": str(path), "size_kb": round(path.stat().st_size / 1024, 1),
                                    "agreement": asdict(agreement)}
        print(f"{name}: {path} ({path.stat().st_size / 1024:.0f} KB) vs FP32: {agreement}")
    if args.eval_limit >= 0:
        from training.evaluate import evaluate

        limit = args.eval_limit or None
        for name, path in (("fp32", args.src), ("int8", variants.int8), ("fp16", variants.fp16)):
            report = evaluate(args.data, path, limit=limit, verbose=False)
            result.setdefault("map", {})[name] = {"map50": report.map50, "map50_95": report.map50_95,
                                                  "image_fire_f1": report.image_fire.f1}
            print(f"{name}: mAP50 {report.map50:.4f}  mAP50-95 {report.map50_95:.4f}  "
                  f"image fire F1 {report.image_fire.f1:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
