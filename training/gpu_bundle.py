"""Pack what ``training/gpu_job.sh`` needs on a lent GPU machine into one small folder.

The GPU machine receives the repository's working tree (code included) plus whatever
ignored folder is carried with it, 64 MiB in all, and cannot reach any server. So the
bundle holds the rest: the detector's dataset re-encoded small enough to fit (images
resized to the training input, JPEG at a chosen quality; labels unchanged, since they are
normalised), the wheels that machine lacks, and optionally the weights to start from.

    python -m training.gpu_bundle .bundle [--imgsz 320] [--quality 50] [--weights W.pt]

The report names every part's size and refuses a bundle that would not fit.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import yaml

from training import offline

MIB = 1024 * 1024
# The GPU machine has torch, torchvision, OpenCV, matplotlib and scipy but not these.
# polars (what ultralytics reads results.csv with) is ~55 MB: training/gpu_train.py
# reads that CSV without it instead.
WHEELS = (
    "ultralytics-opencv-headless==8.4.190",
    "ultralytics-thop==2.2.3",
    "efficientnet-lite-pytorch==0.1.0",
)
# The GPU machine's Python, for which the wheels are fetched.
GPU_PYTHON = "3.12"
_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


@dataclass(frozen=True)
class BundleReport:
    images: int
    data_bytes: int
    wheel_bytes: int
    weights_bytes: int
    tree_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.data_bytes + self.wheel_bytes + self.weights_bytes + self.tree_bytes

    def __str__(self) -> str:
        return (
            f"{self.images} images {self.data_bytes / MIB:.1f} MiB, wheels {self.wheel_bytes / MIB:.1f} MiB, "
            f"weights {self.weights_bytes / MIB:.1f} MiB, tracked tree {self.tree_bytes / MIB:.1f} MiB: "
            f"{self.total_bytes / MIB:.1f} MiB in all"
        )


def shrink_dataset(source: Path, target: Path, *, imgsz: int, quality: int, limit: int | None = None) -> int:
    """Copy a YOLO dataset with every image resized to at most ``imgsz`` on its long side.

    ``limit`` keeps the first N images of each split (sorted), for a quick test bundle.
    Returns the number of images written.
    """
    spec = yaml.safe_load((source / "data.yaml").read_text())
    written = 0
    for split in ("train", "val"):
        images = sorted((source / "images" / split).glob("*.jpg"))[:limit]
        (target / "images" / split).mkdir(parents=True, exist_ok=True)
        (target / "labels" / split).mkdir(parents=True, exist_ok=True)
        for image_path in images:
            image = cv2.imread(str(image_path))
            if image is None:
                raise ValueError(f"cannot read {image_path}")
            scale = imgsz / max(image.shape[:2])
            if scale < 1:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(target / "images" / split / image_path.name), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            label = source / "labels" / split / f"{image_path.stem}.txt"
            shutil.copyfile(label, target / "labels" / split / label.name)
            written += 1
    spec["path"] = "."
    (target / "data.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return written


def fetch_wheels(target: Path, requirements: tuple[str, ...] = WHEELS) -> None:
    """Download the wheels for the GPU machine's Python (no dependencies: it has the rest)."""
    target.mkdir(parents=True, exist_ok=True)
    platforms = [arg for p in _PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
         "--python-version", GPU_PYTHON, "--implementation", "cp", *platforms, "-d", str(target), *requirements],
        check=True,
    )


def tracked_tree_bytes(root: Path = offline.PROJECT_ROOT) -> int:
    """Size of the files git tracks: they travel to the GPU machine with the bundle."""
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return sum((root / name).stat().st_size for name in listing.decode().split("\0") if name and (root / name).is_file())


def initial_weights(target: Path) -> Path:
    """The untrained v2 detector (ImageNet backbone, fresh head) as fp16 weights.

    The GPU machine lacks the 17 MB package with the ImageNet file; this carries the same
    numbers in half the space.
    """
    import torch

    from training import detector

    YOLO = detector.ultralytics_yolo()
    model = YOLO(str(detector.model_yaml("lite0", target.parent))).model
    model.names = {0: "fire", 1: "smoke"}
    torch.save({"model": model.half(), "train_args": {}, "epoch": -1}, target)
    (target.parent / "fire-detector-lite0.yaml").unlink()
    return target


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def build_bundle(out: Path, data: Path, *, imgsz: int = 320, quality: int = 50, limit: int | None = None,
                 weights: Path | str = "init", wheels: bool = True, fire_only: Path | None = None) -> BundleReport:
    """Write ``out`` (``data/fire``, optionally ``data/fire-extra``, ``wheels/``, ``weights/``) and measure it.

    ``weights``: a .pt to start from, "init" (the ImageNet-initialised v2) or "none" (the job
    is then given ``--weights`` of a checkpoint the working tree already carries).
    """
    if out.exists():
        shutil.rmtree(out)
    images = shrink_dataset(data, out / "data" / "fire", imgsz=imgsz, quality=quality, limit=limit)
    if fire_only is not None:
        images += shrink_dataset(fire_only, out / "data" / "fire-extra", imgsz=imgsz, quality=quality, limit=limit)
    if wheels:
        fetch_wheels(out / "wheels")
    (out / "weights").mkdir(parents=True)
    if weights == "init":
        initial_weights(out / "weights" / "start.pt")
    elif weights != "none":
        shutil.copyfile(weights, out / "weights" / "start.pt")
    return BundleReport(images, folder_bytes(out / "data"), folder_bytes(out / "wheels"),
                        folder_bytes(out / "weights"), tracked_tree_bytes())


def main(argv: list[str] | None = None) -> int:
    from firewatch.paths import data_root

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="bundle folder (inside the repository, git-ignored, e.g. .bundle)")
    parser.add_argument("--data", type=Path, default=None, help="YOLO dataset (default: $FIREWATCH_DATA/fire)")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--quality", type=int, default=50, help="JPEG quality of the shrunk images")
    parser.add_argument("--limit", type=int, default=None, help="first N images per split (tests)")
    parser.add_argument("--weights", default="init",
                        help="a .pt to start from; init (default): the ImageNet-initialised v2; none: pack no "
                             "weights (pass the job --weights of a committed checkpoint, which travels with the tree)")
    parser.add_argument("--fire-only", type=Path, default=None,
                        help="also pack this fire-only set as data/fire-extra (e.g. $FIREWATCH_DATA/fire-extra)")
    parser.add_argument("--no-wheels", action="store_true", help="skip the wheel download (CPU test runs)")
    parser.add_argument("--budget-mib", type=float, default=64.0)
    args = parser.parse_args(argv)
    report = build_bundle(args.out, args.data or data_root() / "fire", imgsz=args.imgsz, quality=args.quality,
                          limit=args.limit, weights=args.weights, wheels=not args.no_wheels,
                          fire_only=args.fire_only)
    print(report)
    if report.total_bytes > args.budget_mib * MIB:
        print(f"over the {args.budget_mib:.0f} MiB a GPU call may carry: lower --quality or --imgsz", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
