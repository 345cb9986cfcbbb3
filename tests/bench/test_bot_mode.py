"""The bot-mode bench, short: the real daemon pushes its alerts to the fake Bot API over HTTP
and the bench times each one (no timing targets asserted: they live in the bench's report)."""

from __future__ import annotations

import json
import math

import pytest

from tests.support.data import DATA, SHIPPED_DETECTOR

pytest.importorskip("psutil")
from bench.bot_mode import STAGES, main, table  # after the skip: it needs psutil

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATA / "fire").is_dir(), reason=f"shared data missing at {DATA}"),
    # An untrained detector raises no alert to time.
    pytest.mark.skipif(not SHIPPED_DETECTOR.is_file(), reason=f"{SHIPPED_DETECTOR} not exported"),
]


def test_alerts_reach_the_fake_bot_api_and_are_timed() -> None:
    result = main(SHIPPED_DETECTOR, duration_s=30.0, threads=1, poll_s=0.25)
    json.dumps(result)  # the --json output
    memory = result["memory"]
    assert memory["exit_code"] == 0, memory["log_tail"]
    assert memory["samples"] > 0 and memory["peak_rss_mb"] > 50 and memory["vm_hwm_mb"] > 50

    received = [a for a in result["alerts"] if a["received_s"] is not None]
    assert received and result["send_photo_calls"] >= len(received), result
    for alert in received:
        steps = [alert[f"{stage}_s"] for stage in STAGES]
        assert all(s is not None and math.isfinite(s) for s in steps), alert
        # The clocks agree with the order things happen in: log, database, server, answer.
        assert 0 < steps[0] <= steps[1] <= steps[2] <= steps[3] < 30, alert
    summary = {s["stage"]: s for s in result["latency"]}
    assert 0 < summary["received"]["median_s"] <= summary["received"]["max_s"]
    assert "received" in table(result)
