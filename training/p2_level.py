"""A stride-4 level for small fires, trained alone on top of a trained detector.

At 320 px a fire of 0.5 % of the frame is about 23 px wide and one of 0.1 % about 10 px: at
the head's finest stride (8) that leaves one to a few anchor points inside the fire, and
ultralytics' assigner only takes anchors whose centre lies inside a label. Evaluation says
where the detector loses: fires under 0.5 % of the frame are found 22 % of the time (IoU
0.5), and the source with many small fires (``ig``) has the lowest fire AP.

``start_weights`` builds ``configs/fire-detector-lite0-p2.yaml``: the trained detector
unchanged (same layers, same order), plus a branch that upsamples the neck's stride-8 map,
joins the backbone's stride-4 map, and feeds a fourth head level (its box and class branches
start as copies of the stride-8 level's). ``P2Trainer`` freezes everything else, batch-norm
statistics included, so the three original levels give exactly the starting detector's
outputs and only the new level can add boxes. It costs 109 k parameters, 1.58 times the FLOPs
at 320 px and about twice the CPU time per frame (measured in the model card).

    python -m training.p2_level START.pt runs/p2-start.pt
    python -m training.detector --scale lite0 --variant p2 --p2 --finetune-from runs/p2-start.pt \\
        --epochs 2 --lr0 0.01 --fire-only $FIREWATCH_DATA/fire-extra --negatives runs/data/video-negatives
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from training.detector import checkpoint_weights, save_weights, ultralytics_yolo
from training.smoke_mask import SmokeMaskedTrainer

P2_CONFIG = Path(__file__).parent / "configs" / "fire-detector-lite0-p2.yaml"
# Layers of the branch the config adds, between the starting detector's neck and its head.
NEW_LAYERS = range(17, 21)
HEAD_BRANCHES = ("cv2", "cv3")  # box and class branches, one module per level


def frozen_layers(model: nn.Module) -> list[str]:
    """ultralytics ``freeze`` entries: every layer but the new branch, and the head's old levels."""
    head = len(model.model) - 1
    levels = len(model.model[-1].cv2)
    return ([str(i) for i in range(head) if i not in NEW_LAYERS]
            + [f"{head}.{branch}.{level}" for branch in HEAD_BRANCHES for level in range(1, levels)])


class P2Trainer(SmokeMaskedTrainer):
    """Trains the stride-4 branch and head level only (see the module's docstring)."""

    def get_model(self, cfg=None, weights=None, verbose: bool = True):  # type: ignore[no-untyped-def]
        model = super().get_model(cfg, weights, verbose)
        if len(model.model[-1].cv2) != 4:
            raise ValueError("a P2 run starts from training.p2_level's start weights (a four-level head)")
        # The trainer freezes after building the model, from these names.
        self.args.freeze = frozen_layers(model)
        return model


def _renamed(key: str, head: int, new_head: int) -> list[str]:
    """Where a starting detector's tensor goes in the four-level model (one or two places)."""
    match = re.match(rf"model\.{head}\.(cv2|cv3)\.(\d+)\.(.*)", key)
    if match:
        branch, level, rest = match.group(1), int(match.group(2)), match.group(3)
        moved = [f"model.{new_head}.{branch}.{level + 1}.{rest}"]
        # The new finest level starts as a copy of the old finest one.
        return moved + ([f"model.{new_head}.{branch}.0.{rest}"] if level == 0 else [])
    if key.startswith(f"model.{head}."):
        return [f"model.{new_head}." + key[len(f"model.{head}."):]]
    return [key]


def start_weights(base: Path, out: Path) -> Path:
    """The four-level detector whose original levels are ``base``'s, as a checkpoint to fine-tune."""
    ultralytics_yolo()  # registers the Lite0 backbone
    from ultralytics.nn.tasks import DetectionModel

    ckpt = torch.load(base, map_location="cpu", weights_only=False)
    source = checkpoint_weights(ckpt).float()
    model = DetectionModel(str(P2_CONFIG), nc=len(source.names), verbose=False)
    head, new_head = len(source.model) - 1, len(model.model) - 1
    own = model.state_dict()
    filled = set()
    for key, value in source.state_dict().items():
        for target in _renamed(key, head, new_head):
            if target not in own or own[target].shape != value.shape:
                raise ValueError(f"{base} does not fit {P2_CONFIG.name}: its {key} {tuple(value.shape)} "
                                 f"has no place of that shape")
            own[target] = value
            filled.add(target)
    new = tuple(f"model.{i}." for i in NEW_LAYERS)
    missing = [k for k in own if k not in filled and not k.startswith(new)]
    if missing:
        raise ValueError(f"{base} leaves {len(missing)} tensors of {P2_CONFIG.name} unset, e.g. {missing[0]}")
    model.load_state_dict(own)
    model.names = source.names
    model.args = source.args
    return save_weights(ckpt, model, out)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=start_weights.__doc__)
    parser.add_argument("base", type=Path, help="a trained three-level v2 detector (.pt)")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    # Imported by name, so that the checkpoint pickles as training.p2_level's classes, not __main__'s.
    from training.p2_level import start_weights as by_name

    print(by_name(args.base, args.out))
