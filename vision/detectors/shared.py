"""One model session shared by several cameras' pipelines.

Each camera keeps its own ``YoloDetector`` (its letterbox buffers, its confidence threshold)
over one of these runtimes, so the model's weights and its threads exist once per box:

- ``RoundRobinRuntime``: a lock around the session; the cameras' infer threads take turns,
  one frame each, in the order they ask (the lock is fair enough: each camera's next frame
  waits behind its own letterbox, so no camera can hold the model twice in a row while
  another waits).
- ``BatchingRuntime``: a scheduler thread collects the frames waiting at that moment (up to
  ``max_batch``) and runs them as one batch; needs a model with a dynamic batch dimension.

``bench/cameras.py`` measures both; the daemon uses round-robin (see README, Performance).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from vision.detectors.base import ModelRuntime

SHARING_MODES = ("round-robin", "batched")


class RoundRobinRuntime:
    """A ``ModelRuntime`` that many threads may call: one ``run`` at a time."""

    def __init__(self, runtime: ModelRuntime) -> None:
        self.inner = runtime
        self._lock = threading.Lock()

    providers = property(lambda self: self.inner.providers)
    metadata: Mapping[str, str] = property(lambda self: self.inner.metadata)  # type: ignore[assignment]
    input_shape: Sequence[Any] = property(lambda self: self.inner.input_shape)  # type: ignore[assignment]
    input_dtype = property(lambda self: self.inner.input_dtype)

    def run(self, blob: np.ndarray) -> np.ndarray:
        with self._lock:
            return self.inner.run(blob)

    def close(self) -> None:
        """Nothing to stop (the same call as ``BatchingRuntime.close``)."""


class BatchingRuntime(RoundRobinRuntime):
    """A ``ModelRuntime`` that runs the frames of several threads as one batch."""

    def __init__(self, runtime: ModelRuntime, max_batch: int = 4) -> None:
        super().__init__(runtime)
        if runtime.input_shape and runtime.input_shape[0] == 1 and max_batch > 1:
            raise ValueError("batched sharing needs a model exported with a dynamic batch dimension")
        self.max_batch = max_batch
        self._requests: queue.Queue[tuple[np.ndarray, Future[np.ndarray]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="detector-batch", daemon=True)
        self._thread.start()

    def run(self, blob: np.ndarray) -> np.ndarray:
        future: Future[np.ndarray] = Future()
        self._requests.put((blob, future))
        return future.result()

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(5)

    def _serve(self) -> None:
        while (first := self._requests.get()) is not None:
            batch = [first]
            # Whatever else is already waiting joins this batch; nothing waits for more.
            while len(batch) < self.max_batch:
                try:
                    request = self._requests.get_nowait()
                except queue.Empty:
                    break
                if request is None:
                    self._requests.put(None)
                    break
                batch.append(request)
            try:
                output = self.inner.run(np.concatenate([blob for blob, _ in batch]))
            except Exception as exc:  # every waiting camera learns of the failure
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for i, (_, future) in enumerate(batch):
                future.set_result(output[i : i + 1])


def share(runtime: ModelRuntime, mode: str = "round-robin", max_batch: int = 4) -> RoundRobinRuntime:
    """``runtime`` wrapped for several cameras (``mode``: one of ``SHARING_MODES``)."""
    if mode == "round-robin":
        return RoundRobinRuntime(runtime)
    if mode == "batched":
        return BatchingRuntime(runtime, max_batch)
    raise ValueError(f"unknown sharing mode {mode!r}: known are {', '.join(SHARING_MODES)}")
