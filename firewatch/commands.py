"""Bodies of CLI commands that wire several packages together."""

from __future__ import annotations

from pathlib import Path

import click

from firewatch.config import Settings


def detect_command(settings: Settings, source: str, model: Path | None, out_video: Path | None,
                   events: Path | None, snapshots: Path | None, fps: float | None) -> None:
    from firewatch.wiring import event_config, load_classifier
    from vision.detectors import Detector
    from vision.replay import replay

    detector = Detector(model or settings.detector_model, runtime=settings.detector_runtime,
                        conf_threshold=settings.detect_confidence, threads=settings.inference_threads)
    summary = replay(
        source,
        detector=detector,
        out_video=out_video,
        events=events,
        snapshots=snapshots,
        fps=fps,
        camera=settings.camera_name if settings.camera_name != "camera" else None,
        event_config=event_config(settings),
        classifier=load_classifier(settings.classifier_model),
    )
    click.echo(str(summary))


def enroll_command(settings: Settings, user_id: int, name: str, photos: tuple[Path, ...]) -> int:
    """Enrol each photo; returns how many failed."""
    from bot.enrolment import enrol_photo
    from storage import Store, upgrade
    from vision.faces import FaceEncoder

    upgrade(settings.db_url)
    store = Store(settings.db_url)
    encoder = FaceEncoder()
    keep = settings.data_dir / "faces" if settings.keep_face_photos else None
    failed = 0
    for photo in photos:
        result = enrol_photo(store, encoder, user_id, name, photo.read_bytes(), keep_photo_dir=keep)
        click.echo(f"{photo}: {result.message}")
        failed += not result.ok
    store.close()
    return failed
