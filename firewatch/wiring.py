"""Builds vision/ and bot/ objects from the settings: the only place that reads ``Settings``
for them, so that neither package knows the configuration."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

from bot.services import BotSettings
from firewatch.cameras import CameraConfig
from firewatch.config import Settings
from firewatch.source_hint import SourceHint
from sinks.mqtt import Broker, MqttPublisher, MqttSettings
from sinks.mqtt_arming import StoreArming
from sinks.mqtt_topics import Topics
from storage import Store, upgrade
from storage.spool import Spool, SpoolingStore
from vision.clips import ClipConfig
from vision.events import EventConfig
from vision.pipeline import Pipeline
from vision.sinks import Sink
from vision.sources import Backoff, open_source
from vision.zones import Zone, ZoneSet

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
        edge_quiet_after_s=settings.edge_quiet_after_s,
    )


def event_config(settings: Settings, camera: CameraConfig | None = None) -> EventConfig:
    """The confirmation rules, with ``camera``'s overrides where it has them."""
    return EventConfig(
        confirm_hits=(camera and camera.confirm_hits) or settings.confirm_hits,
        confirm_window=(camera and camera.confirm_window) or settings.confirm_window,
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


def load_verifier(settings: Settings):  # type: ignore[no-untyped-def]
    """A temporal verifier for one camera (it keeps that camera's recent frames), or None
    when verification is off; a missing model file is said once and turns it off."""
    if not settings.verify:
        return None
    if not settings.verification_model.is_file():
        log.warning("verification model %s not found: fires are confirmed by K-of-N alone",
                    settings.verification_model)
        return None
    from vision.verification import VerificationModel, Verifier

    return Verifier(VerificationModel.load(settings.verification_model))


def load_detector(settings: Settings, model: Path | None = None):  # type: ignore[no-untyped-def]
    """The configured detector (or ``model``) on its own session, for one source outside the
    daemon (``firewatch detect``, the demo)."""
    from vision.detectors import Detector
    from vision.detectors.tiles import tiled

    return tiled(Detector(model or settings.detector_model, runtime=settings.detector_runtime,
                          conf_threshold=settings.detect_confidence, iou_threshold=settings.nms_iou,
                          threads=settings.inference_threads), settings.detector_tiles)


def build_pipelines(
    settings: Settings,
    sinks: Sequence[Sink],
    added_zones: Callable[[str], Sequence[Zone]] = lambda camera: (),
) -> dict[str, Pipeline]:
    """One pipeline per configured camera, by name, all publishing to ``sinks`` and sharing
    one detector session and one classifier; ``added_zones(camera)`` gives the zones
    operators added (stored), beside the configuration file's."""
    from vision.detectors import RuntimeOptions, YoloDetector, open_runtime
    from vision.detectors.shared import share
    from vision.detectors.tiles import tiled

    if not settings.detector_model.is_file():
        raise FileNotFoundError(f"detector model not found: {settings.detector_model}")
    runtime = share(open_runtime(settings.detector_runtime, settings.detector_model,
                                 RuntimeOptions(settings.inference_threads, None, settings.trt_cache)))
    classifier = load_classifier(settings.classifier_model)
    pipelines = {}
    for camera in settings.camera_configs:
        zones = ZoneSet(camera.zone_values(), added_zones(camera.name))
        detector = tiled(YoloDetector(runtime, conf_threshold=camera.detect_confidence or settings.detect_confidence,
                                      iou_threshold=settings.nms_iou, name=f"{settings.detector_model.name} ({camera.name})"),
                         camera.tiles or settings.detector_tiles, zones=zones)
        source = open_source(camera.source, fps=camera.fps, name=camera.name, realtime=True)
        pipelines[camera.name] = Pipeline(
            source,
            detector,
            camera=camera.name,
            event_config=event_config(settings, camera),
            classifier=classifier,
            snapshot_dir=settings.snapshots,
            sinks=[*sinks, SourceHint(camera.source, _source_setting(settings, camera.name))],
            backoff=Backoff(),
            flush_at_end=True,
            zones=zones,
            max_fps=camera.fps,
            verifier=load_verifier(settings),
            clips=ClipConfig(after_s=settings.alert_clip_after_s) if settings.alert_clip else None,
        )
    return pipelines


def mqtt_publisher(settings: Settings, store: Store) -> MqttPublisher | None:
    """The MQTT sink when ``FIREWATCH_MQTT_URL`` is set, else None. It reports ``store``'s arm
    state, and with ``FIREWATCH_MQTT_ARMING`` its commands change it there: on one box, or a
    fleet's bot, never on an edge (one command, one change, one audit)."""
    if settings.mqtt is None:
        return None
    edge = settings.site if settings.role == "edge" else None
    topics = Topics(prefix=settings.mqtt_topic_prefix, discovery_prefix=settings.mqtt_discovery_prefix, edge=edge)
    # One client id per box (per edge: two may share a host): a broker drops the older of two
    # connections with the same id.
    box = edge or socket.gethostname()
    client_id = f"{topics.prefix.replace('/', '-')}-{box}"
    broker = Broker.from_url(settings.mqtt)
    arm = None
    if settings.mqtt_arming and edge is not None:
        # Every edge would hear the one command topic and audit the command once each.
        log.warning("FIREWATCH_MQTT_ARMING is ignored on an edge: the fleet's bot hears the arm commands "
                    "(set FIREWATCH_MQTT_URL and FIREWATCH_MQTT_ARMING there); this edge reports the arm state")
    elif settings.mqtt_arming:
        who = f"{topics.arm_command} on {broker}, client {client_id}" + (f", user {broker.username}" if broker.username else "")
        arm = StoreArming(store, who, timedelta(hours=settings.rearm_after_h))
    cameras = [] if settings.role == "bot" else [camera.name for camera in settings.camera_configs]
    return MqttPublisher(MqttSettings(broker=broker, topics=topics, client_id=client_id, arming=arm is not None),
                         cameras,
                         armed=lambda: store.arm_state().armed, arm=arm)


def server_database(settings: Settings) -> bool:
    """Whether the database is a server (a fleet's PostgreSQL), which may be out of reach while
    this box runs; SQLite is away only when this box is."""
    from sqlalchemy.engine import make_url

    return make_url(settings.db_url).get_backend_name() != "sqlite"


def alert_store(settings: Settings, store: Store, spool: Spool | None, *,
                offline: BaseException | None = None) -> Store | SpoolingStore:
    """What the alert recorder writes through: ``store`` itself, or with a ``spool`` (in the
    data directory, for a server database) the store that spools while the server is away
    (``offline``: away already at start, so the schema is migrated when it answers, before
    the spool's replay)."""
    if spool is None:
        return store
    prepare = (lambda: upgrade(settings.db_url)) if offline is not None else None
    return SpoolingStore(store, spool, retry_s=settings.spool_retry_s, offline=offline, prepare=prepare)


def _source_setting(settings: Settings, camera: str) -> str:
    """Where the user sets this camera's source, for the hint when it cannot be opened."""
    if not settings.cameras:
        return "FIREWATCH_CAMERA_SOURCE"
    return f"the source of camera {camera!r} in {settings.config or 'the configuration file'}"
