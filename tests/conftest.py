"""Fixtures shared by several test modules (plain helpers live in ``tests.support``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage import Store, upgrade
from tests.support.bot_harness import TOKEN
from tests.support.botapi import BotApiServer
from tests.support.data import DATA
# The real servers (PostgreSQL, Mosquitto) and a fresh database per test.
from tests.support.servers import mqtt_broker, postgres_cluster, postgres_database, postgres_server  # noqa: F401

# Ultralytics probes the network when imported unless told it is offline; any test
# module may import it, so this must hold before the first import.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
# Exported absolute: tests run commands (and benchmarks) from temporary folders.
os.environ["FIREWATCH_DATA"] = str(DATA)


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained fire-detector (scale p) exported by ultralytics, as training/ would."""
    pytest.importorskip("ultralytics", reason="exporting a model needs the train extra")
    root = tmp_path_factory.mktemp("tiny-yolo")
    os.environ["YOLO_CONFIG_DIR"] = str(root / "config")
    import torch

    torch.set_num_threads(1)
    from training.detector import export_untrained

    return export_untrained(root / "fire-detector-p.onnx")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store of its own (modules that need more, or PostgreSQL, override it)."""
    url = f"sqlite:///{tmp_path / 'fw.db'}"
    upgrade(url)
    s = Store(url)
    yield s
    s.close()


@pytest.fixture
async def srv() -> AsyncIterator[BotApiServer]:
    """The fake Bot API server (real HTTP) for the shared test token, no users yet."""
    async with BotApiServer(token=TOKEN) as server:
        yield server
