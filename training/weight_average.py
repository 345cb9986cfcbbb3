"""Average the weights of several checkpoints of one training run into one detector.

Checkpoints from the tail of one run lie close together in weight space, and their mean often
scores better than any of them (stochastic weight averaging; "model soups"). Parameters and
BatchNorm statistics are averaged uniformly with torch's ``AveragedModel``; the result is a
weights-only checkpoint in the slim format (fp16 EMA weights, no optimizer), which
``training.detector.export_detector`` exports like any other.

    python -m training.weight_average --out runs/avg.pt A.pt B.pt C.pt
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from training import offline
from training.detector import checkpoint_weights, slim_fields

log = logging.getLogger(__name__)


def _shapes(net) -> dict[str, tuple[int, ...]]:  # type: ignore[no-untyped-def]
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def average_checkpoints(sources: Sequence[Path], target: Path) -> Path:
    """Write the uniform average of ``sources`` (ultralytics or slim checkpoints of the same
    network) to ``target``; the other fields (epoch, training arguments) are the last source's."""
    import torch
    from torch.optim.swa_utils import AveragedModel

    if len(sources) < 2:
        raise ValueError("averaging needs at least two checkpoints")
    offline.prepare()  # unpickling a checkpoint imports ultralytics
    averaged = None
    for source in sources:
        checkpoint = torch.load(source, map_location="cpu", weights_only=False)
        net = checkpoint_weights(checkpoint).float()
        if averaged is None:
            averaged = AveragedModel(net, use_buffers=True)  # BatchNorm statistics are buffers
        elif _shapes(net) != _shapes(averaged.module):
            raise ValueError(f"{source} is not the same network as {sources[0]}")
        averaged.update_parameters(net)
        last = checkpoint
    slim = slim_fields(last, averaged.module.half()) | {"averaged_from": [Path(s).name for s in sources]}
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim, target)
    log.info("averaged %d checkpoints into %s", len(sources), target)
    return target


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", type=Path, nargs="+", help="checkpoints of one run (.pt)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    print(average_checkpoints(args.sources, args.out))


if __name__ == "__main__":
    main()
