"""Human-readable ends of ``firewatch detect`` and ``firewatch demo``."""

from __future__ import annotations

from firewatch.tables import key_values
from vision.replay import ReplaySummary


def replay_summary(summary: ReplaySummary) -> str:
    ev = summary.events
    pairs: list[tuple[str, object]] = [
        ("source", summary.source),
        ("frames", f"{summary.frames} ({summary.source_seconds:.1f} s of video) in "
                   f"{summary.seconds:.1f} s, {summary.fps:.1f} FPS"),
        ("alerts", f"{ev.get('started', 0)} started, {ev.get('updated', 0)} updated, "
                   f"{ev.get('cleared', 0)} cleared"),
        ("camera health events", ev.get("health", 0)),
    ]
    pairs += [(name, value) for name, value in (("events file", summary.events_path),
                                                 ("snapshots", summary.snapshots_dir),
                                                 ("annotated video", summary.video_path)) if value]
    if summary.providers:
        pairs.append(("runtime", ", ".join(summary.providers)))
    return key_values(pairs)
