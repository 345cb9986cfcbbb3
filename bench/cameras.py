"""Several cameras on one box: total and per-camera FPS with 1, 2 and 4 replayed cameras
sharing one detector session, round-robin (a lock) or batched (one run for the frames
waiting together).

Each camera replays one of the shared fire clips (``<data>/videos/*.mp4``) as fast as the
pipeline takes frames, through the daemon's ``Pipeline`` (letterbox, detector, zones,
tracker, events). Batched needs a dynamic batch dimension: the model is copied with one
(``onnx``, from the ``train`` extra) into a temporary folder.

    firewatch bench cameras [--cameras 1 2 4] [--modes round-robin batched] [--frames 150]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bench.help import user_help
from firewatch.paths import SHIPPED_DETECTOR, data_root
from firewatch.progress import progress_bar
from vision.detectors import RuntimeOptions, YoloDetector, open_runtime
from vision.detectors.shared import SHARING_MODES, share
from vision.pipeline import Pipeline
from vision.sources import open_source


def dynamic_batch_copy(model: Path, folder: Path) -> Path:
    """``model`` with its batch dimension made symbolic, so a batch of any size runs."""
    import onnx

    graph = onnx.load(str(model))
    for value in [*graph.graph.input, *graph.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    out = folder / f"{model.stem}-dynamic-batch.onnx"
    onnx.save(graph, str(out))
    return out


def run(model: Path, clips: Sequence[Path], mode: str, cameras: int, frames: int, threads: int) -> dict:
    """Replay ``cameras`` clips at once; FPS per camera and in total over the same wall time."""
    runtime = share(open_runtime("onnxruntime", model, RuntimeOptions(threads=threads)), mode, max_batch=cameras)
    pipelines = []
    for i in range(cameras):
        clip = clips[i % len(clips)]
        source = _Limited(open_source(clip, name=f"cam{i + 1}"), frames)
        pipelines.append(Pipeline(source, YoloDetector(runtime), camera=f"cam{i + 1}", sinks=[]))
    start = time.perf_counter()
    threads_ = [threading.Thread(target=p.run) for p in pipelines]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    wall = time.perf_counter() - start
    runtime.close()
    per_camera = [p.frames / wall for p in pipelines]
    return {"mode": mode, "cameras": cameras, "total_fps": sum(per_camera), "per_camera_fps": per_camera,
            "wall_s": wall}


def _cannot_batch(model: Path, batch: int) -> str | None:
    """Why ``model`` cannot run a batch of ``batch`` (a graph may fix the batch inside, e.g.
    in a Reshape of an attention block), or None."""
    import numpy as np

    runtime = open_runtime("onnxruntime", model, RuntimeOptions(threads=1))
    h, w = YoloDetector(runtime).imgsz
    try:
        runtime.run(np.zeros((batch, 3, h, w), runtime.input_dtype))
    except Exception as exc:  # onnxruntime raises its own Fail type
        return " ".join(str(exc).split())[:160]
    return None


class _Limited:
    """A source that ends after ``frames`` frames (every camera does the same work)."""

    def __init__(self, inner, frames: int) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.frames, self.name, self.live = inner, frames, inner.name, False
        self._read = 0

    def open(self) -> None:
        self.inner.open()
        self._read = 0

    def read(self):  # type: ignore[no-untyped-def]
        if self._read >= self.frames:
            return None
        frame = self.inner.read()
        if frame is None:  # a short clip starts over
            self.inner.open()
            frame = self.inner.read()
        self._read += 1
        return frame

    def close(self) -> None:
        self.inner.close()


def _row(bar, text: str) -> None:  # type: ignore[no-untyped-def]
    """One finished run: printed above the bar (never into it) and flushed at once, so a
    piped run shows each row as it finishes."""
    bar.write(text, file=sys.stdout)
    sys.stdout.flush()
    bar.update(1)


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=user_help(__doc__))
    parser.add_argument("--model", type=Path, default=SHIPPED_DETECTOR)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--modes", nargs="+", default=list(SHARING_MODES), choices=SHARING_MODES)
    parser.add_argument("--frames", type=int, default=150, help="frames per camera")
    parser.add_argument("--threads", type=int, default=1, help="inference threads of the shared session")
    args = parser.parse_args(argv)
    clips = sorted((data_root() / "videos").glob("*.mp4"))
    if not clips:
        parser.error(f"no clips in {data_root() / 'videos'}")
    runs = len(args.cameras) * len(args.modes)
    with tempfile.TemporaryDirectory() as tmp, progress_bar("bench cameras", total=runs, unit="run") as bar:
        batched_model = dynamic_batch_copy(args.model, Path(tmp)) if "batched" in args.modes else None
        bar.write(f"{'mode':<12} {'cameras':>7} {'total FPS':>9}  per-camera FPS", file=sys.stdout)
        for cameras in args.cameras:
            for mode in args.modes:
                model = batched_model if mode == "batched" and cameras > 1 else args.model
                if mode == "batched" and cameras > 1 and (reason := _cannot_batch(model, cameras)):  # type: ignore[arg-type]
                    _row(bar, f"{mode:<12} {cameras:>7} {'-':>9}  not run: {reason}")
                    continue
                row = run(model, clips, mode, cameras, args.frames, args.threads)  # type: ignore[arg-type]
                per = ", ".join(f"{fps:.1f}" for fps in row["per_camera_fps"])
                _row(bar, f"{mode:<12} {cameras:>7} {row['total_fps']:>9.1f}  {per}")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
