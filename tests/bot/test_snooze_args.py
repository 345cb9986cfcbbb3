"""What /snooze accepts: an optional camera and an optional length, each mistake said in one line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.snooze import parse_snooze_args


@pytest.mark.parametrize(("args", "cameras", "expected"), [
    ([], ["yard"], ("yard", timedelta(minutes=30))),
    (["45m"], ["yard"], ("yard", timedelta(minutes=45))),
    (["porch", "2h"], ["yard", "porch"], ("porch", timedelta(hours=2))),
    (["porch"], ["yard", "porch"], ("porch", timedelta(minutes=30))),
    (["gate", "1m"], [], ("gate", timedelta(minutes=1))),  # no camera runs here: an edge's
])
def test_accepted(args: list[str], cameras: list[str], expected: tuple[str, timedelta]) -> None:
    assert parse_snooze_args(args, cameras) == expected


@pytest.mark.parametrize(("args", "cameras", "message"), [
    ([], ["yard", "porch"], "which camera? yard, porch"),
    (["attic"], ["yard", "porch"], "no camera 'attic'; cameras: yard, porch"),
    (["yard", "porch"], ["yard", "porch"], "one camera at a time"),
    (["2d"], ["yard"], "at most 24 h"),
    (["90x"], ["yard"], "period '90x' not understood: use e.g. 30m, 24h or 7d"),
    (["0m"], ["yard"], "period '0m' out of range"),
])
def test_refused_with_what_to_fix(args: list[str], cameras: list[str], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_snooze_args(args, cameras)
    assert str(raised.value) == message
