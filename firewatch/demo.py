"""``firewatch demo``: a fire clip through the daemon's pipeline, with the bot off, and the
alerts it raised. Without ``--clip`` it plays the synthetic flame of
:mod:`firewatch.demo_clip`, so it works without a camera, data or network."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from firewatch import demo_clip
from firewatch.config import Settings
from firewatch.tables import table


@dataclass(frozen=True)
class DemoAlert:
    track_id: int
    class_name: str
    severity: str | None
    t: float
    confidence: float
    snapshot: str | None


def demo_command(settings: Settings, clip: Path | None, out: Path) -> list[DemoAlert]:
    """Play ``clip`` (default: render the synthetic one into ``out``); return its alerts."""
    from firewatch.progress import progress_bar
    from firewatch.wiring import event_config, load_classifier, load_detector, load_verifier
    from vision.replay import replay

    synthetic = clip is None
    if clip is None:
        clip = demo_clip.write_clip(out / "flame.mp4")
        click.echo(f"clip: {clip} (synthetic flame: {demo_clip.EMPTY_S:.0f} s of an empty room, then "
                   f"{demo_clip.FIRE_S:.0f} s of fire, {demo_clip.FPS:.0f} FPS)")
    else:
        click.echo(f"clip: {clip}")
    click.echo("pipeline: detector -> tracker -> confirmation "
               f"({settings.confirm_hits} of {settings.confirm_window} frames) -> classifier veto"
               f"{' -> temporal verification' if settings.verify else ''}; "
               "bot off, nothing is pushed")
    detector = load_detector(settings)
    events = out / "events.jsonl"
    with progress_bar("demo") as bar:
        replay(clip, detector=detector, events=events, snapshots=out / "snapshots", camera="demo",
               event_config=event_config(settings), classifier=load_classifier(settings.classifier_model),
               progress=bar, verifier=load_verifier(settings))
    alerts = _started(events)
    if alerts:
        onset = demo_clip.EMPTY_S if synthetic else None
        click.echo(table(["alert", "class", "severity", "at", "confidence", "snapshot"],
                         [[f"#{a.track_id}", a.class_name, a.severity or "-", _when(a.t, onset),
                           f"{a.confidence:.2f}", a.snapshot or "-"] for a in alerts]))
    click.echo(f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''} raised; events in {events}")
    return alerts


def _started(events: Path) -> list[DemoAlert]:
    alerts = []
    for line in events.read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        if e.get("event") == "started":
            alerts.append(DemoAlert(e["track_id"], e["class"], e.get("severity"), e["t"],
                                    e["confidence"], e.get("snapshot")))
    return alerts


def _when(t: float, onset: float | None) -> str:
    if onset is None:
        return f"{t:.1f} s"
    return f"{t:.1f} s ({t - onset:.1f} s after the flame appeared)"
