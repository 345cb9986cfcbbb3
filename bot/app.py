"""The Telegram application: handlers, outbox, jobs, and the sink that bridges the vision
thread to the bot's loop.

The PTB ``Application`` owns the asyncio loop. The pipeline runs in its own thread and
publishes events to ``EventBridge``, which hands them over with ``call_soon_threadsafe``;
each event is written to the database (alert + deliveries in one transaction) before the
outbox is woken to send it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)

from bot.alerts import AlertRecorder
from bot.arming import arming_handler
from bot.audit import audit_handlers
from bot.buttons import button_handlers
from bot.replies import conversation_fallbacks
from bot.enrolment import enrolment_handler
from bot.jobs import schedule_jobs
from bot.redaction import redact
from bot.outage import OutageLog, WatchedRequest, is_outage
from bot.outbox import MEDIA_TIMEOUT_S, OutboxSender
from bot.queries import COMMANDS, query_handlers
from bot.services import Services
from bot.snooze import snooze_handlers
from bot.zones import zone_handlers

if TYPE_CHECKING:
    from vision.types import Event

log = logging.getLogger(__name__)


class EventBridge:
    """The alert recorder as a sink of the bot: carries pipeline events from the vision
    thread into the bot's loop, in order, records them there and wakes the outbox."""

    def __init__(self, recorder: AlertRecorder) -> None:
        self.recorder = recorder
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.outbox: OutboxSender | None = None
        self.on_started: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, outbox: OutboxSender | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.outbox = outbox
        self._task = asyncio.create_task(self._consume(), name="events")
        if self.on_started is not None:
            self.on_started()

    def publish(self, event: Event) -> None:
        """Called from the vision thread."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)
        else:  # before the loop runs, or after it stopped: record synchronously
            self.recorder.record(event)

    async def _consume(self) -> None:
        while True:
            event = await self.queue.get()
            await self._record(event)

    async def _record(self, event: Event) -> None:
        while True:
            try:
                result = await asyncio.to_thread(self.recorder.record, event)
                break
            except Exception:  # a locked or full database: keep the event and retry
                log.exception("could not record %s; retrying in 2 s", type(event).__name__)
                await asyncio.sleep(2)
        if result.queued and self.outbox is not None:
            self.outbox.wake()

    async def flush(self) -> None:
        """Record what is still queued (at shutdown)."""
        if self._task is not None:
            self._task.cancel()
        while not self.queue.empty():
            await self._record(self.queue.get_nowait())


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    # Telegram out of reach is not a bug: said once per outage, without a traceback.
    if is_outage(context.error):
        context.bot_data["outage"].failed(context.error)
        return
    log.error("handler error: %s", redact(repr(context.error)), exc_info=context.error)


def build_application(services: Services, bridge: EventBridge) -> Application:
    settings = services.settings
    outage = OutageLog()
    app = (
        ApplicationBuilder()
        .token(settings.token)
        .get_updates_request(WatchedRequest(outage))
        .base_url(settings.api_base_url)
        .base_file_url(settings.api_file_url)
        .rate_limiter(AIORateLimiter(max_retries=0))  # the outbox does its own retrying
        # Uploads on a slow link (a snapshot sent from /snapshot, a selfie's reply): the
        # outbox also waits this long for Telegram's answer to its photos and clips.
        .media_write_timeout(MEDIA_TIMEOUT_S)
        .defaults(Defaults(block=True))
        .concurrent_updates(False)
        .post_init(lambda app: _post_init(app, bridge))
        .post_stop(lambda app: _post_stop(app, bridge))
        .build()
    )
    app.bot_data["services"] = services
    app.bot_data["recorder"] = bridge.recorder
    app.bot_data["outage"] = outage
    # Enrolment first: while an admin is asked for someone's photo, that photo is not a selfie.
    app.add_handler(enrolment_handler())
    app.add_handler(arming_handler())
    for handler in query_handlers() + button_handlers() + snooze_handlers() + audit_handlers():
        app.add_handler(handler)
    for handler, group in zone_handlers():
        app.add_handler(handler, group=group)
    for handler in conversation_fallbacks():
        app.add_handler(handler)
    # Editing an old message must not replay it as a new command.
    app.add_handler(MessageHandler(filters.UpdateType.EDITED, _ignore), group=-1)
    app.add_error_handler(_on_error)
    schedule_jobs(app)
    return app


async def _ignore(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    raise ApplicationHandlerStop


async def _post_init(app: Application, bridge: EventBridge) -> None:
    services: Services = app.bot_data["services"]
    try:
        await app.bot.set_my_commands(COMMANDS)
    except Exception as exc:  # Telegram down at start: the bot still works
        log.warning("could not register the command list: %s", redact(str(exc)))
    services.outbox = OutboxSender(app.bot, services.store)
    services.outbox.start()
    bridge.start(services.outbox)
    for pipeline in services.pipelines.values():
        pipeline.start()
    log.info("bot started")


async def _post_stop(app: Application, bridge: EventBridge) -> None:
    services: Services = app.bot_data["services"]
    # Each finishes its current frame; stopped together, the slowest sets the pace.
    await asyncio.gather(*(asyncio.to_thread(p.stop) for p in services.pipelines.values()))
    await bridge.flush()
    if services.outbox is not None:
        await services.outbox.stop()
    log.info("bot stopped")
