"""Bodies of CLI commands that wire several packages together."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from firewatch.config import Settings


def detect_command(settings: Settings, source: str, model: Path | None, out_video: Path | None,
                   events: Path | None, snapshots: Path | None, fps: float | None,
                   as_json: bool = False) -> None:
    from firewatch.progress import progress_bar
    from firewatch.summaries import replay_summary
    from firewatch.wiring import event_config, load_classifier, load_detector, load_verifier
    from vision.replay import replay

    detector = load_detector(settings, model)
    with progress_bar("detect") as bar:
        summary = replay(
            source,
            detector=detector,
            out_video=out_video,
            events=events,
            snapshots=snapshots,
            # A video file is read as the daemon reads it: its verification counts frames at this rate.
            fps=settings.source_fps if fps is None else fps,
            camera=settings.camera_name if settings.camera_name != "camera" else None,
            event_config=event_config(settings),
            classifier=load_classifier(settings.classifier_model),
            progress=bar,
            verifier=load_verifier(settings),
        )
    click.echo(json.dumps(asdict(summary), indent=2) if as_json else replay_summary(summary))


def enroll_command(settings: Settings, user_id: int, name: str, photos: tuple[Path, ...],
                   create: bool = False) -> int:
    """Enrol each photo; returns how many failed. An unknown user is refused unless ``create``:
    enrolling makes them an operator, and operators receive alerts. Ends with the spread of
    the new photos (their pairwise distances) and of all the operator's photos."""
    import numpy as np

    from bot.enrolment import enrol_photo, spread_text
    from firewatch.progress import progress_bar
    from storage import Store, upgrade
    from vision.faces import FaceEncoder, encoding_from_bytes, template_spread

    upgrade(settings.db_url)
    store = Store(settings.db_url)
    try:
        if not create and store.get_operator(user_id) is None:
            raise LookupError(f"no operator with user id {user_id}: add them first with `firewatch operators "
                              f"add --user-id {user_id} --name NAME`, or pass --create")
        encoder = FaceEncoder()
        keep = settings.data_dir / "faces" if settings.keep_face_photos else None
        failed, new = 0, []
        with progress_bar("enroll", total=len(photos), unit="photo") as bar:
            for photo in photos:
                result = enrol_photo(store, encoder, user_id, name, photo.read_bytes(), keep_photo_dir=keep)
                bar.write(f"{photo}: {result.message}", file=sys.stdout)
                bar.update(1)
                failed += not result.ok
                if result.encoding is not None:
                    new.append(result.encoding)
        on_file = [encoding_from_bytes(t) for t in store.face_templates(user_id)]
        if len(new) > 1 and len(on_file) > len(new):
            click.echo(f"New photos: {spread_text(template_spread(np.stack(new)))}.")
        if on_file:
            click.echo(f"On file for {name} ({user_id}): {spread_text(template_spread(np.stack(on_file)))}.")
        return failed
    finally:
        store.close()
