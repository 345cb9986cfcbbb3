"""Small ONNX file operations shared by the detector's and the classifier's compression."""

from __future__ import annotations

from pathlib import Path


def set_metadata(proto, meta: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Replace ``metadata_props`` of an ONNX ModelProto with ``meta``."""
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v


def copy_metadata(src: Path, dst: Path) -> None:
    """Class names, input size and the like live in metadata_props; converters drop them."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(src)).metadata_props}
    proto = onnx.load(str(dst))
    set_metadata(proto, meta)
    onnx.save(proto, str(dst))


def to_fp16(src: Path, dst: Path) -> Path:
    """FP16 weights and activations with float32 input and outputs, so callers need not change."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    proto = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(proto, str(dst))
    copy_metadata(src, dst)
    return dst
