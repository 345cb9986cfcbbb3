"""Retrain a detector's fire scores alone, with its smoke scores kept bit for bit.

Every fine-tune of the whole v2 detector on hard negatives so far made the fire scores
better and the smoke scores worse: smoke alerts on the fire-free car and bottle clips. So
this run moves only what makes fire scores:

- every layer but the class branch of the head (``Detect.cv3``) is frozen, batch-norm
  statistics included (ultralytics keeps frozen layers' BN in eval mode), so the features
  and the boxes stay those of the starting weights;
- the smoke column of the classification loss is weighted 0 on every image, so smoke
  labels only matter through box assignment;
- ``merge`` then builds the detector to ship: the tuned class branch gives the fire score,
  the starting one gives the smoke score, each cut down to its own output channel. Since
  both branches read the same frozen features, the smoke scores of the result equal the
  starting detector's, and only fire can have changed.

The merged head runs a second class branch at every level: 49 k more parameters and 2 % more
FLOPs (2.45 -> 2.50 GFLOPs at 320 px).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from training.detector import checkpoint_weights, save_weights
from training.smoke_mask import FIRE, SMOKE, SmokeMaskedDetectionModel, SmokeMaskedLoss, SmokeMaskedTrainer

# The head's class branch: the only part a fire-head run trains.
CLASS_BRANCH = "cv3"
BOX_BRANCH = "cv2"


def frozen_layers(model: nn.Module) -> list[str]:
    """ultralytics ``freeze`` entries for everything but the head's class branch."""
    head = len(model.model) - 1
    return [str(i) for i in range(head)] + [f"{head}.{BOX_BRANCH}"]


class FireOnlyLoss(SmokeMaskedLoss):
    """The detection loss with the smoke column weighted 0 on every image."""

    def weights(self, cls: torch.Tensor, batch_idx: torch.Tensor, batch_size: int) -> torch.Tensor:
        weights = super().weights(cls, batch_idx, batch_size)
        weights[:, :, SMOKE] = 0.0
        return weights


class FireHeadDetectionModel(SmokeMaskedDetectionModel):
    """A DetectionModel whose training loss is :class:`FireOnlyLoss`."""

    def init_criterion(self):  # type: ignore[no-untyped-def]
        return FireOnlyLoss(self)


class FireHeadTrainer(SmokeMaskedTrainer):
    """Trains the head's class branch only, for fire only (see the module's docstring)."""

    model_class = FireHeadDetectionModel

    def get_model(self, cfg=None, weights=None, verbose: bool = True):  # type: ignore[no-untyped-def]
        model = super().get_model(cfg, weights, verbose)
        # The trainer freezes after building the model, from these names.
        self.args.freeze = frozen_layers(model)
        return model


class FireSmokeBranches(nn.Module):
    """A class branch whose fire channel comes from one branch and smoke from another."""

    def __init__(self, fire: nn.Sequential, smoke: nn.Sequential) -> None:
        super().__init__()
        self.fire = _one_channel(fire, FIRE)
        self.smoke = _one_channel(smoke, SMOKE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.fire(x), self.smoke(x)], 1)


def _one_channel(branch: nn.Sequential, channel: int) -> nn.Sequential:
    """A copy of ``branch`` whose last 1x1 convolution keeps only output ``channel``."""
    last = branch[-1]
    conv = nn.Conv2d(last.in_channels, 1, 1)
    with torch.no_grad():
        conv.weight.copy_(last.weight[channel:channel + 1])
        conv.bias.copy_(last.bias[channel:channel + 1])
    return nn.Sequential(*list(branch[:-1]), conv)


def merge(tuned: Path, base: Path, out: Path) -> Path:
    """Write a checkpoint with ``tuned``'s fire scores and ``base``'s smoke scores.

    Refuses when anything outside the class branch differs: then the smoke branch would
    read other features than it was trained on.
    """
    tuned_ckpt = torch.load(tuned, map_location="cpu", weights_only=False)
    base_ckpt = torch.load(base, map_location="cpu", weights_only=False)
    model, source = checkpoint_weights(tuned_ckpt).float(), checkpoint_weights(base_ckpt).float()
    own, theirs = model.state_dict(), source.state_dict()
    marker = f".{CLASS_BRANCH}."
    moved = [k for k in own if marker not in k and not torch.equal(own[k], theirs[k])]
    if moved:
        raise ValueError(f"{tuned} differs from {base} outside the class branch ({len(moved)} tensors, "
                         f"e.g. {moved[0]}): it was not trained with FireHeadTrainer from these weights")
    head, source_head = model.model[-1], source.model[-1]
    head.cv3 = nn.ModuleList(FireSmokeBranches(f, s) for f, s in zip(head.cv3, source_head.cv3, strict=True))
    return save_weights(tuned_ckpt, model, out)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=merge.__doc__)
    parser.add_argument("tuned", type=Path, help="a fire-head run's weights (python -m training.detector --fire-head)")
    parser.add_argument("base", type=Path, help="the weights that run started from")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    # Imported by name, so that the checkpoint pickles its classes as training.fire_head's,
    # not __main__'s, and loads anywhere.
    from training.fire_head import merge as merge_by_name

    print(merge_by_name(args.tuned, args.base, args.out))
