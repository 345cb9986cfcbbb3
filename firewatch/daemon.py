"""``firewatch run``: one role of firewatch (``firewatch.roles``), stopped cleanly by SIGTERM
or Ctrl-C.

With a bot token (roles ``all`` and ``bot``), python-telegram-bot's ``Application`` owns the
main thread and the asyncio loop (and handles the signals); each camera's vision pipeline
runs in its own worker threads, all sharing one detector session. Without a token, and on
an edge, the pipelines run alone and alerts are recorded for a bot to send; an edge also
checks in with the fleet (``firewatch.heartbeat``).

A server database out of reach at start is waited for (said once), except by an edge that has
read its state before: it starts from that state, kept in its spool (``storage.spool``).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import timedelta

from firewatch.config import Settings
from firewatch.edge_recorder import EdgeRecorder
from firewatch.heartbeat import EdgeHeartbeat
from firewatch.roles import BOT, EDGE, check_role, owned_cameras, queues_deliveries
from storage import Store, upgrade
from storage.spool import Spool, SpoolingStore, failure_reason, unreachable

log = logging.getLogger("firewatch.daemon")
TELEGRAM_WAIT_WARN_S = 30


def prepare_store(settings: Settings) -> Store:
    upgrade(settings.db_url)
    store = Store(settings.db_url)
    if settings.role == EDGE:
        # Deliveries "sending" are the bot's, in flight now: only the sender recovers them.
        return store
    recovered = store.recover_interrupted()
    if recovered:
        log.warning("%d deliveries interrupted by the last shutdown will be retried", recovered)
    for chat in [*settings.admin_ids, *settings.alert_chat_ids]:
        store.add_chat(chat)
    return store


def open_stores(settings: Settings, stop: threading.Event) -> tuple[Store, Store | SpoolingStore] | None:
    """The database prepared (``prepare_store``) and what alerts are recorded through; None if
    stopped while waiting for a database out of reach. An edge that has read the database's
    state into its spool before starts without it, from that state."""
    from firewatch.wiring import alert_store, server_database

    server = server_database(settings)
    spool = Spool(settings.data_dir / "spool.db") if server and settings.role != BOT else None
    waited_since: float | None = None
    while True:
        try:
            store = prepare_store(settings)
        except Exception as exc:
            if not server or not unreachable(exc):
                raise  # SQLite (away only when this box is), or not an outage (a failed migration)
            if settings.role == EDGE and spool is not None and spool.knows_state():
                store = Store(settings.db_url)
                return store, alert_store(settings, store, spool, offline=exc)
            if waited_since is None:
                waited_since = time.monotonic()
                why = (f"edge {settings.site} has no state read from it yet to start from, so it"
                       if settings.role == EDGE else "firewatch")
                log.warning("database %s unreachable (%s): %s waits for it, trying again every %.0f s",
                            _safe_url(settings.db_url), failure_reason(exc), why, settings.spool_retry_s)
            if stop.wait(settings.spool_retry_s):
                if spool is not None:
                    spool.close()
                return None
            continue
        if waited_since is not None:
            log.info("database %s reachable after %.0f s", _safe_url(settings.db_url), time.monotonic() - waited_since)
        return store, (store if settings.role == BOT else alert_store(settings, store, spool))


def run_daemon(settings: Settings, stop: threading.Event | None = None) -> int:
    """Run until a stop signal; returns the process exit code."""
    from bot.alerts import AlertRecorder
    from bot.zones import stored_zones
    from firewatch.wiring import build_pipelines, mqtt_publisher

    check_role(settings)
    stop = stop or threading.Event()
    # Loading models takes seconds; a SIGTERM meanwhile must still end the process cleanly.
    _stop_on_signals(stop)
    stores = open_stores(settings, stop)
    if stores is None:
        _log_stop(" while waiting for the database")
        log.info("firewatch stopped")
        return 0
    # With cameras on a server database, alerts go through a local spool while it is away.
    store, records_to = stores
    cameras = [] if settings.role == BOT else settings.camera_configs
    if isinstance(records_to, SpoolingStore):
        records_to.remember_state(c.name for c in cameras)  # to start from if the next start finds it away
    recorder_type = EdgeRecorder if settings.role == EDGE else AlertRecorder
    recorder = recorder_type(records_to, can_push=queues_deliveries(settings), clear_after_s=settings.clear_after_s,
                             owns=owned_cameras(settings), edge=settings.site)
    log.info("firewatch starting as %s: cameras %s, database %s",
             f"edge {settings.site!r}" if settings.role == EDGE else f"role {settings.role!r}",
             ", ".join(repr(c.name) for c in cameras) or "none", _safe_url(settings.db_url))
    # The bot, camera-less, still owns a fleet's arming over MQTT (docs/fleet.md).
    mqtt = mqtt_publisher(settings, store) if cameras or settings.role == BOT else None
    extra_sinks = [mqtt] if mqtt is not None else []
    try:
        if mqtt is not None:
            mqtt.start()
        if settings.role == EDGE or settings.token is None:
            if settings.role != EDGE:
                log.warning("no FIREWATCH_BOT_TOKEN set: alerts are recorded but nothing will be pushed")
            pipelines = build_pipelines(settings, [recorder, *extra_sinks],
                                        lambda camera: stored_zones(records_to, camera))  # type: ignore[arg-type]
            if settings.role == EDGE:
                log.info("edge %s: alerts are recorded for the fleet's bot to send", settings.site)
            return _run_headless(pipelines, stop, recorder, _heartbeat(settings, store, records_to, pipelines))
        return _run_with_bot(settings, store, recorder, stop, extra_sinks)
    finally:
        if mqtt is not None:
            mqtt.stop()
        if records_to is not store:
            records_to.close()  # stops its replay; what is left stays spooled for the next run
        store.close()


def _heartbeat(settings: Settings, store: Store, reads: Store | SpoolingStore,  # type: ignore[type-arg]
               pipelines: dict) -> EdgeHeartbeat | None:
    """An edge's check-in with the fleet; None for a single box. Its reads go through
    ``reads``, which keeps them for a start while the database is away."""
    from bot.zones import stored_zones

    if settings.role != EDGE:
        return None
    refresh = (lambda: reads.remember_state(pipelines)) if isinstance(reads, SpoolingStore) else None
    return EdgeHeartbeat(store, settings.site, pipelines, settings.heartbeat_s,
                         lambda camera: stored_zones(reads, camera),  # type: ignore[arg-type]
                         refresh=refresh)


_received: list[str] = []


def _log_stop(reason: str = "") -> None:
    signals = ", ".join(dict.fromkeys(_received)) or "a stop request"
    log.info("received %s, stopping%s", signals, reason)


def _stop_on_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # tests drive the daemon from a thread and set `stop` themselves

    def handle(signum: int, _frame: object) -> None:
        # Logging from a signal handler can deadlock on the handler's lock: only record it.
        _received.append(signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)


def _run_headless(pipelines_by_name, stop: threading.Event, recorder,  # type: ignore[no-untyped-def]
                  heartbeat: EdgeHeartbeat | None = None) -> int:
    from bot.alerts import watching

    pipelines = list(pipelines_by_name.values())
    if stop.is_set():
        _log_stop(" before the camera started")
        log.info("firewatch stopped")
        return 0
    for pipeline in pipelines:
        pipeline.start()
    beating = threading.Event()
    if heartbeat is not None:
        heartbeat.start(beating)
    try:
        while not stop.wait(0.5):
            recorder.expire_carried(watching(p.status() for p in pipelines))
            if not any(pipeline.running for pipeline in pipelines):  # every file source ended
                break
        if stop.is_set():
            _log_stop()
        for pipeline in pipelines:
            pipeline.stop()
    finally:
        beating.set()
        if heartbeat is not None:
            heartbeat.join(5)
            heartbeat.beat()  # the cameras' last state: stopped, or played to their end
    log.info("firewatch stopped")
    return 0


def _run_with_bot(settings: Settings, store: Store, recorder, stop: threading.Event,  # type: ignore[no-untyped-def]
                  extra_sinks: list) -> int:
    from bot.access import Access
    from bot.app import EventBridge, build_application
    from bot.selfie import LockoutPolicy, SelfieGate
    from bot.services import Services
    from bot.zones import stored_zones
    from firewatch.wiring import bot_settings, build_pipelines
    from vision.faces import FaceEncoder

    encoder = FaceEncoder()
    gate = SelfieGate(
        store, encoder, threshold=settings.face_match_threshold,
        rearm_after=timedelta(hours=settings.rearm_after_h),
        lockout=LockoutPolicy(settings.lockout_failures,
                              timedelta(minutes=settings.lockout_window_min),
                              timedelta(minutes=settings.lockout_min)),
    )
    bridge = EventBridge(recorder)
    pipelines = ({} if settings.role == BOT else
                 build_pipelines(settings, [bridge, *extra_sinks], lambda camera: stored_zones(store, camera)))
    services = Services(settings=bot_settings(settings), store=store, access=Access(store, settings.admin_ids),
                        encoder=encoder, gate=gate, pipelines=pipelines,
                        model_name=settings.detector_model.name)
    app = build_application(services, bridge)
    if stop.is_set():  # stopped while loading
        _log_stop(" before the bot started")
        log.info("firewatch stopped")
        return 0
    # Detection does not wait for Telegram: until the bot is up, events are recorded
    # straight from the vision thread and their deliveries wait in the outbox.
    for pipeline in pipelines.values():
        pipeline.start()
    connected = threading.Event()
    bridge.on_started = connected.set
    threading.Thread(target=_warn_until, args=(connected, stop), name="telegram-wait", daemon=True).start()
    # From here PTB owns SIGINT/SIGTERM: it retries reaching Telegram for as long as it
    # takes (a bad token still ends the run), stops polling on a signal, then our
    # post_stop hook stops the pipelines after their current frame and flushes queued events.
    try:
        app.run_polling(stop_signals=(signal.SIGINT, signal.SIGTERM), close_loop=False, bootstrap_retries=-1)
    finally:
        stop.set()
        for pipeline in pipelines.values():
            if pipeline.running:  # stopped before the bot ever came up: post_stop did not run
                pipeline.stop()
    log.info("firewatch stopped")
    return 0


def _warn_until(connected: threading.Event, stop: threading.Event) -> None:
    """Say, once a minute, that Telegram is still out of reach at start-up."""
    waited = 0
    while not connected.wait(TELEGRAM_WAIT_WARN_S) and not stop.is_set():
        waited += TELEGRAM_WAIT_WARN_S
        log.warning("Telegram not reachable for %d s: detection and recording go on, alerts will be "
                    "sent once it answers", waited)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
