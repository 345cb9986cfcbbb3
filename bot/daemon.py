"""``firewatch run``: start everything in one process and stop cleanly on a signal.

Today this applies migrations, recovers the outbox and waits; the vision pipeline
(issue 3) and the Telegram application (issue 5) plug in here.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from bot.config import Settings
from storage import Store, upgrade

log = logging.getLogger("firewatch.daemon")


def run_daemon(settings: Settings, stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); returns the exit code."""
    stop = stop or threading.Event()
    _install_signal_handlers(stop)

    upgrade(settings.db_url)
    store = Store(settings.db_url)
    recovered = store.recover_interrupted()
    if recovered:
        log.info("%d interrupted deliveries queued again", recovered)
    for admin in settings.admin_ids:
        store.add_chat(admin)
    for chat in settings.alert_chat_ids:
        store.add_chat(chat)

    if settings.token is None:
        log.warning("no FIREWATCH_BOT_TOKEN set: alerts are recorded but nothing will be pushed")
    log.warning(
        "the camera pipeline and the Telegram bot are not wired into `run` yet; "
        "waiting for a stop signal"
    )
    log.info("firewatch started (database %s)", _safe_url(settings.db_url))
    started = time.monotonic()
    while not stop.wait(1.0):
        pass
    store.close()
    log.info("firewatch stopped after %.0f s", time.monotonic() - started)
    return 0


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # tests drive the daemon from a thread and use `stop` instead

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
