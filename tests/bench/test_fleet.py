"""The fleet bench, small: edge processes record alerts into one PostgreSQL, one bot's outbox
sends them to the fake Bot API, and every message is counted (no rate asserted: the rate is
the bench's report, docs/fleet.md "Sizing")."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from bench.fleet import LIMITERS, main, table
from tests.support.data import DATA

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATA / "fire").is_dir(), reason=f"shared data missing at {DATA}"),
]


def test_every_delivery_of_every_edge_arrives_once_under_both_limiters(postgres_server: str) -> None:
    runs = main(edges=3, alerts=4, rate=20.0, chats=3, database_url=postgres_server)
    assert [r.limiter for r in runs] == list(LIMITERS)
    for run in runs:
        assert (run.alerts, run.deliveries) == (12, 36)
        assert (run.sent, run.received, run.lost, run.duplicated) == (36, 36, 0, 0)
        assert run.per_s > 0 and run.drained_s > 0
    json.dumps([asdict(r) for r in runs])  # the --json output
    assert "bench-only-unlimited" in table(runs)
