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


def fp16_storage(src: Path, dst: Path) -> Path:
    """Half the file, float32 compute: each float32 weight is stored as float16 and cast back
    by a Cast node, which onnxruntime folds into a float32 constant when it loads the session.

    For shipping a model in git: it runs exactly as fast as the float32 file (the folded graph
    is the same), and its outputs differ only by the weights' rounding to float16.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    src, dst = Path(src), Path(dst)
    proto = onnx.load(str(src))
    graph = proto.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or np.prod(init.dims) < 16:
            continue  # scalars and shape-like constants are not worth a Cast
        half = numpy_helper.to_array(init).astype(np.float16)
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, f"{name}__fp16"))
        casts.append(onnx.helper.make_node("Cast", [f"{name}__fp16"], [name], to=onnx.TensorProto.FLOAT,
                                           name=f"{name}__to_fp32"))
    # Casts first: every node that reads a weight comes after the Cast that makes it.
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(dst))
    return dst


def float32_weights(src: Path, dst: Path) -> Path:
    """Undo :func:`fp16_storage`: float32 weights and no Cast nodes in front of them, the graph
    that tools which rewrite weights (quantization, float16 compute) expect. A file without
    float16 storage is written out unchanged."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    src, dst = Path(src), Path(dst)
    proto = onnx.load(str(src))
    graph = proto.graph
    stored = {i.name for i in graph.initializer if i.name.endswith("__fp16")}
    casts = [n for n in graph.node if n.op_type == "Cast" and list(n.input) == [n.output[0] + "__fp16"]
             and n.input[0] in stored]
    for init in graph.initializer:
        if init.name in stored:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32),
                                                  init.name.removesuffix("__fp16")))
    for cast in casts:
        graph.node.remove(cast)
    onnx.checker.check_model(proto)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(dst))
    return dst
