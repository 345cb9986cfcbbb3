"""Train on images whose smoke is not labelled without teaching "smoke is background".

``fire-extra`` labels fire only, although many of its pictures show smoke. Trained as
they are, those pictures would tell the smoke class that visible smoke is background. So
their smoke score is left out of the loss: for every training image that holds a picture
from a fire-only source, the smoke column of the classification loss is weighted 0; the
fire column and the boxes learn as usual.

Which pictures are fire-only has to survive mosaic augmentation, which stitches four
images into one and keeps only the first one's file name. Their boxes survive it, so the
dataset relabels the fire boxes of fire-only images as a marker class (``FIRE_ONLY``) in
memory; the loss finds the marker in each training image, zeroes that image's smoke
weight and maps the marker back to fire before assigning targets. A fire-only picture
whose boxes were all cropped away by the mosaic escapes the mask: rare, and no worse than
training without it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import v8DetectionLoss

FIRE, SMOKE = 0, 1
FIRE_ONLY = 2  # marker class, never seen by the model: one past the two real classes
# The key of the data YAML that lists image folders whose smoke is not labelled.
DATA_KEY = "smoke_unlabelled"


def smoke_weights(cls: torch.Tensor, batch_idx: torch.Tensor, batch_size: int, nc: int) -> torch.Tensor:
    """(batch, 1, nc) loss weights: 0 for the smoke column of images with a marked box."""
    weights = torch.ones(batch_size, 1, nc, device=cls.device)
    marked = cls.view(-1) == FIRE_ONLY
    if marked.any():
        weights[batch_idx.view(-1)[marked].long(), :, SMOKE] = 0.0
    return weights


class SmokeMaskedLoss(v8DetectionLoss):
    """ultralytics' detection loss with the smoke column masked on fire-only images."""

    def loss(self, preds: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]):  # type: ignore[override]
        batch_size = preds["boxes"].shape[0]
        cls = batch["cls"]
        # The per-image weights ride on ultralytics' own class-weight hook, which multiplies
        # the (batch, anchors, nc) BCE before it is summed.
        self.class_weights = self.weights(cls, batch["batch_idx"], batch_size)
        batch = {**batch, "cls": torch.where(cls == FIRE_ONLY, torch.full_like(cls, FIRE), cls)}
        return super().loss(preds, batch)

    def weights(self, cls: torch.Tensor, batch_idx: torch.Tensor, batch_size: int) -> torch.Tensor:
        """(batch, 1, nc) weights of the classification loss."""
        return smoke_weights(cls, batch_idx, batch_size, self.nc)


class SmokeMaskedDetectionModel(DetectionModel):
    """A DetectionModel whose training loss is :class:`SmokeMaskedLoss`."""

    def init_criterion(self):  # type: ignore[no-untyped-def]
        return SmokeMaskedLoss(self)


def mark_fire_only(labels: list[dict], folders: list[Path]) -> int:
    """Relabel, in place, the fire boxes of images under ``folders`` as ``FIRE_ONLY``; returns how many images."""
    roots = [str(Path(f).resolve()) + "/" for f in folders]
    marked = 0
    for label in labels:
        if any(str(Path(label["im_file"]).resolve()).startswith(root) for root in roots):
            cls = label["cls"]
            cls[cls == FIRE] = FIRE_ONLY
            marked += 1
    return marked


class SmokeMaskedTrainer(DetectionTrainer):
    """DetectionTrainer for a data YAML with a ``smoke_unlabelled`` list of image folders."""

    model_class: type[DetectionModel] = SmokeMaskedDetectionModel

    def get_model(self, cfg=None, weights=None, verbose: bool = True):  # type: ignore[no-untyped-def]
        model = self.set_model_names_for_load(
            self.model_class(cfg, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose)
        )
        if weights:
            model.load(weights)
        return model

    def build_dataset(self, img_path, mode: str = "train", batch=None):  # type: ignore[no-untyped-def]
        dataset = super().build_dataset(img_path, mode, batch)
        folders = [Path(f) for f in self.data.get(DATA_KEY) or []]
        if mode == "train" and folders:
            marked = mark_fire_only(dataset.labels, folders)
            from ultralytics.utils import LOGGER

            LOGGER.info(f"smoke loss masked on {marked} fire-only images of {len(dataset.labels)}")
        return dataset
