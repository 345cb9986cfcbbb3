"""Every storage test runs on both databases firewatch supports: SQLite (one box) and
PostgreSQL (a fleet), each a real server or file, fresh for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from storage import Store, upgrade

DIALECTS = ["sqlite", "postgresql"]


@pytest.fixture(params=DIALECTS)
def blank_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty database, no migrations applied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sub' / 'firewatch.db'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def db_url(blank_url: str) -> str:
    upgrade(blank_url)
    return blank_url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()
