"""Builds vision/ and bot/ objects from the settings: the only place that reads ``Settings``
for them, so that neither package knows the configuration."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from bot.services import BotSettings
from firewatch.config import Settings
from vision.events import EventConfig
from vision.pipeline import Pipeline
from vision.sinks import Sink
from vision.sources import Backoff, open_source

log = logging.getLogger(__name__)


def bot_settings(settings: Settings) -> BotSettings:
    assert settings.token is not None, "the bot runs only with a token"
    return BotSettings(
        token=settings.token,
        api_base_url=settings.api_base_url,
        api_file_url=settings.api_file_url,
        admin_ids=tuple(settings.admin_ids),
        data_dir=settings.data_dir,
        keep_face_photos=settings.keep_face_photos,
        rearm_after_h=settings.rearm_after_h,
        retention_days=settings.retention_days,
        summary_hour=settings.summary_hour,
        stall_after_s=settings.stall_after_s,
    )


def event_config(settings: Settings) -> EventConfig:
    return EventConfig(
        confirm_hits=settings.confirm_hits,
        confirm_window=settings.confirm_window,
        clear_after_s=settings.clear_after_s,
        veto_confidence=settings.veto_no_fire,
    )


def load_classifier(path: Path | None):  # type: ignore[no-untyped-def]
    """The severity classifier at ``path``, or None (box-size grading) if off or missing."""
    if path is None:
        return None
    if not path.is_file():
        log.warning("classifier %s not found: severity is graded from box size", path)
        return None
    from vision.classifier import FireClassifier

    return FireClassifier(path, threads=1)


def build_pipeline(settings: Settings, sinks: Sequence[Sink]) -> Pipeline:
    """The configured camera's pipeline, publishing its events to ``sinks`` in order."""
    from vision.detectors import Detector

    detector = Detector(
        settings.detector_model,
        runtime=settings.detector_runtime,
        conf_threshold=settings.detect_confidence,
        iou_threshold=settings.nms_iou,
        threads=settings.inference_threads,
        trt_cache_dir=settings.trt_cache,
    )
    source = open_source(settings.camera_source, fps=settings.source_fps,
                         name=settings.camera_name, realtime=True)
    return Pipeline(
        source,
        detector,
        camera=settings.camera_name,
        event_config=event_config(settings),
        classifier=load_classifier(settings.classifier_model),
        snapshot_dir=settings.snapshots,
        sinks=sinks,
        backoff=Backoff(),
        flush_at_end=True,
    )
