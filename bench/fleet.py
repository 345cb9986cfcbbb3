"""A fleet on one PostgreSQL: alert deliveries a second that one bot's outbox sustains while 10
edges record alerts, and a count of every message at the Bot API (none lost, none twice).

Each edge is its own process with its own edge name, recording ``started`` alerts through the
daemon's alert recorder (``bot.alerts.AlertRecorder``) at ``--rate`` alerts a second, each with
a real JPEG snapshot kept in the database as an edge does (frames of a fire clip, each alert's
its own bytes, as no two camera frames are alike). Every alert is pushed to
``--chats`` operators' private chats, so it is that many deliveries. One bot sends them: the
daemon's outbox (``bot.outbox.OutboxSender``) with python-telegram-bot's ``Bot`` built as the
daemon builds it, over HTTP to the local fake Bot API server of tests/support/botapi (its own
process). Nothing wakes the bot when an edge queues a delivery: it finds them by its own poll
of the outbox (``bot.outbox.IDLE_POLL_S``), as in a fleet.

Deliveries a second are counted from the database's ``sent_at`` times: over the whole run, and
over its middle 80 % (the sustained rate, without the start and the tail). The fake server's
answered ``sendPhoto`` calls are then counted per chat and alert: ``lost`` is a delivery never
received, ``duplicated`` one received twice; ``uploads`` is how many of them carried the photo
itself rather than the file_id of an earlier upload (the bot uploads each alert's photo once). On a small machine the edges, PostgreSQL and the fake server
share the cores with the bot, so the CPU time the bot process spends per delivery is reported
too, with the rate one core given to the bot alone would carry (and the fake server's CPU time
per delivery, with psutil).

Two rate limiters: ``telegram``, the daemon's (PTB's ``AIORateLimiter`` at Telegram's limits:
30 messages a second overall, 20 a minute per group), which any bot talking to the real cloud
must keep; and ``bench-only-unlimited``, the same limiter with both limits off, which only a
local server may be sent to, to measure what the bot itself can do.

    firewatch bench fleet [--edges 10] [--alerts 30] [--rate 2] [--chats 10]
        [--limiter both|telegram|bench-only-unlimited] [--database-url URL] [--json out.json]

(or ``python -m bench.fleet``). Without ``--database-url`` a throwaway PostgreSQL cluster is
started (the PostgreSQL server packages must be installed); each run gets a new database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.help import user_help
from bench.pipeline import FIRE_SEQUENCE, data_dir, natural_sorted

if TYPE_CHECKING:
    from telegram.ext import AIORateLimiter

    from tests.support.botapi import StandaloneServer

TOKEN = "515151515:BENCH-fleet-token-for-the-local-bot-api"
FIRST_OPERATOR = 7000
LIMITERS = ("telegram", "bench-only-unlimited")
CHECK_S = 0.5  # how often the bench counts what is sent (the bot polls the outbox by itself)
_ALERT_ID = re.compile(r"Alert #(\d+)")


@dataclass
class FleetRun:
    limiter: str
    edges: int
    chats: int
    alerts: int
    deliveries: int  # expected: alerts x chats
    sent: int  # deliveries marked sent in the database
    received: int  # sendPhoto calls the fake server answered
    uploads: int  # of them, those that uploaded the photo (the others named a file_id)
    lost: int
    duplicated: int
    recorded_s: float  # the edges' recording, first alert to last
    drained_s: float  # first send to last
    per_s: float  # deliveries a second over the whole drain
    sustained_per_s: float  # over the middle 80 % of deliveries
    bot_cpu_ms: float  # CPU time of the bot (all its threads) per delivery
    server_cpu_ms: float | None  # of the fake Bot API server per delivery (None without psutil)

    @property
    def per_bot_core_s(self) -> float:
        """Deliveries a second one core spent on the bot alone would carry."""
        return 1000.0 / self.bot_cpu_ms if self.bot_cpu_ms else 0.0


def snapshot_jpegs() -> list[bytes]:
    """Real camera frames (a fire clip's) for the edges' snapshots."""
    frames = natural_sorted((data_dir() / "images").glob(f"*/{FIRE_SEQUENCE}.jpg"))
    if not frames:
        raise SystemExit(f"no {FIRE_SEQUENCE} frames under {data_dir()}: set FIREWATCH_DATA to the shared data")
    return [frame.read_bytes() for frame in frames]


def unique_jpeg(jpeg: bytes, label: str) -> bytes:
    """``jpeg`` with a comment (a COM segment after the start marker) naming ``label``: the
    same picture, bytes of its own, so the bot cannot send one alert's upload for another."""
    comment = label.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


def edge_worker(url: str, edge: str, alerts: int, rate: float, start_at: float) -> None:
    """One edge: ``alerts`` started alerts at ``rate`` a second, recorded as the daemon records them."""
    from bot.alerts import AlertRecorder
    from storage import Store
    from vision.types import FireEvent

    frames = snapshot_jpegs()  # read here: megabytes in the arguments would hold up the start
    store = Store(url)
    recorder = AlertRecorder(store, can_push=True, edge=edge)
    time.sleep(max(0.0, start_at - time.time()))
    for i in range(alerts):
        time.sleep(max(0.0, start_at + i / rate - time.time()))
        ref = store.save_snapshot(unique_jpeg(frames[i % len(frames)], f"{edge} alert {i + 1}"))
        recorder.record(FireEvent(kind="started", camera=f"{edge}/yard", track_id=i + 1, class_name="fire",
                                  severity="fire", confidence=0.8, box=(100.0, 80.0, 300.0, 260.0),
                                  area_fraction=0.12, frame=i, t=i / rate, wall=time.time(), snapshot=ref,
                                  frame_size=(640, 480)))
    store.close()


def rate_limiter(name: str) -> AIORateLimiter:
    from telegram.ext import AIORateLimiter

    if name == "telegram":
        return AIORateLimiter(max_retries=0)  # as bot/app.py builds it
    # Bench only, never against Telegram's cloud: both limits off (0 disables each).
    return AIORateLimiter(overall_max_rate=0, group_max_rate=0, max_retries=0)


async def run_bot(url: str, server: StandaloneServer, limiter: str, expected: int, timeout_s: float) -> None:
    """The outbox until ``expected`` deliveries are sent (or ``timeout_s`` passes)."""
    from telegram.ext import ApplicationBuilder

    from bot.outbox import MEDIA_TIMEOUT_S, OutboxSender
    from storage import Store

    app = (ApplicationBuilder().token(TOKEN).base_url(server.base_url).base_file_url(server.base_file_url)
           .rate_limiter(rate_limiter(limiter)).media_write_timeout(MEDIA_TIMEOUT_S).build())
    store = Store(url)
    await app.initialize()
    sender = OutboxSender(app.bot, store)
    sender.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if await asyncio.to_thread(sent_count, store) >= expected:
                break
            await asyncio.sleep(CHECK_S)
    finally:
        await sender.stop()
        await app.shutdown()
        store.close()


def sent_count(store) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from storage.models import Delivery, DeliveryStatus

    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.SENT)) or 0)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of another process so far (None without psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def rates(times: Sequence[float]) -> tuple[float, float, float]:
    """(span s, per s over it all, per s over the middle 80 %) of sorted event times."""
    n = len(times)
    if n < 2:
        return 0.0, 0.0, 0.0
    span = times[-1] - times[0]
    lo, hi = n // 10, n - 1 - n // 10
    middle = times[hi] - times[lo]
    return span, (n - 1) / span if span else 0.0, (hi - lo) / middle if middle else 0.0


def count_received(calls: Sequence[dict], chats: Sequence[int]) -> Counter[tuple[int, int]]:
    """(chat, alert id) -> answered sendPhoto calls that carried it."""
    received: Counter[tuple[int, int]] = Counter()
    for call in calls:
        params = call["params"]
        if call.get("status") != 200:
            continue  # refused (a file_id the server does not know, then uploaded) or unanswered
        match = _ALERT_ID.search(str(params.get("caption", "")))
        if match and int(params["chat_id"]) in chats:
            received[(int(params["chat_id"]), int(match.group(1)))] += 1
    return received


def one_run(admin_url: str, server: StandaloneServer, limiter: str, *, edges: int, alerts: int, rate: float,
            chats: int) -> FleetRun:
    from storage import Store, upgrade
    from tests.support.servers import create_database

    url = create_database(admin_url)
    upgrade(url)
    store = Store(url)
    operators = [FIRST_OPERATOR + i for i in range(chats)]
    for chat in operators:
        store.add_chat(chat)
    expected = edges * alerts * chats
    spawn = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0  # every edge process imported and connected
    workers = [spawn.Process(target=edge_worker, args=(url, f"edge-{i:02d}", alerts, rate, start_at))
               for i in range(edges)]
    calls_before = len(server.control.calls("sendPhoto"))
    for worker in workers:
        worker.start()
    timeout_s = 3.0 + alerts / rate + max(120.0, expected / 10)  # 10 a second at the least
    # The edges are processes of their own: this process's CPU time is the bot's.
    bot_cpu, server_cpu = time.process_time(), cpu_seconds(server.process.pid)  # type: ignore[union-attr]
    asyncio.run(run_bot(url, server, limiter, expected, timeout_s))
    bot_cpu = time.process_time() - bot_cpu
    server_after = cpu_seconds(server.process.pid)  # type: ignore[union-attr]
    for worker in workers:
        worker.join()
    alerts_rows, total = store.recent_alerts(limit=edges * alerts + 1)
    sent = [d.sent_at.timestamp() for d in store.deliveries() if d.sent_at is not None]
    store.close()
    calls = server.control.calls("sendPhoto")[calls_before:]
    received = count_received(calls, operators)
    # The fake server logs an upload as "<file NAME, N bytes>", a file_id as itself.
    uploads = sum(1 for c in calls if c.get("status") == 200 and str(c["params"].get("photo", "")).startswith("<file"))
    wanted = {(chat, a.id) for a in alerts_rows for chat in operators}
    recorded = sorted(a.first_seen.timestamp() for a in alerts_rows)
    span, per_s, sustained = rates(sorted(sent))
    return FleetRun(limiter=limiter, edges=edges, chats=chats, alerts=total, deliveries=expected, sent=len(sent),
                    received=sum(received.values()), uploads=uploads, lost=len(wanted - set(received)) + (edges * alerts - total) * chats,
                    duplicated=sum(n - 1 for n in received.values() if n > 1),
                    recorded_s=recorded[-1] - recorded[0] if recorded else 0.0, drained_s=span,
                    per_s=per_s, sustained_per_s=sustained, bot_cpu_ms=1000 * bot_cpu / max(len(sent), 1),
                    server_cpu_ms=(None if server_cpu is None or server_after is None
                                   else 1000 * (server_after - server_cpu) / max(len(sent), 1)))


@contextmanager
def postgres(url: str | None) -> Iterator[str]:
    """``url``, or a throwaway cluster's admin URL for the run."""
    if url:
        yield url
        return
    from tests.support.servers import own_postgres, postgres_bindir

    if postgres_bindir() is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install -y postgresql), or give --database-url")
    with own_postgres() as admin_url:
        yield admin_url


def main(*, edges: int = 10, alerts: int = 30, rate: float = 2.0, chats: int = 10,
         limiters: Sequence[str] = LIMITERS, database_url: str | None = None) -> list[FleetRun]:
    snapshot_jpegs()  # the data is there (before any server starts)
    from tests.support.botapi import StandaloneServer  # needs aiohttp (the dev extra): only when run

    runs = []
    with postgres(database_url) as admin_url, StandaloneServer(TOKEN) as server:
        for i in range(chats):
            server.control.add_user(f"Operator {i}", user_id=FIRST_OPERATOR + i)
        for limiter in limiters:
            runs.append(one_run(admin_url, server, limiter, edges=edges, alerts=alerts, rate=rate, chats=chats))
    return runs


def table(runs: Sequence[FleetRun]) -> str:
    first = runs[0]
    lines = [
        f"fleet: {first.edges} edges x {first.alerts // max(first.edges, 1)} alerts, {first.chats} chats each, "
        "one PostgreSQL, one bot, fake Bot API over HTTP",
        f"{'rate limiter':<22} {'deliveries':>10} {'sent':>6} {'lost':>5} {'dup':>4} {'uploads':>7} {'drain s':>8} "
        f"{'per s':>7} {'sustained/s':>12} {'bot CPU ms':>11} {'per bot core/s':>15} {'server CPU ms':>14}",
    ]
    lines += [f"{r.limiter:<22} {r.deliveries:>10} {r.sent:>6} {r.lost:>5} {r.duplicated:>4} {r.uploads:>7} {r.drained_s:>8.1f} "
              f"{r.per_s:>7.1f} {r.sustained_per_s:>12.1f} {r.bot_cpu_ms:>11.1f} {r.per_bot_core_s:>15.0f} "
              f"{'-' if r.server_cpu_ms is None else f'{r.server_cpu_ms:.1f}':>14}" for r in runs]
    lines.append("bot CPU ms: CPU time of the bot process (all threads) per delivery; per bot core/s: 1000 / that")
    return "\n".join(lines)


def cli(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """``python -m bench.fleet`` / ``firewatch bench fleet``."""
    parser = argparse.ArgumentParser(prog=prog, description=user_help(__doc__))
    parser.add_argument("--edges", type=int, default=10, help="edge processes")
    parser.add_argument("--alerts", type=int, default=30, help="alerts each edge records")
    parser.add_argument("--rate", type=float, default=2.0, help="alerts a second each edge records")
    parser.add_argument("--chats", type=int, default=10, help="operators' chats each alert goes to")
    parser.add_argument("--limiter", choices=["both", *LIMITERS], default="both")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL admin URL (default: a throwaway cluster)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = main(edges=args.edges, alerts=args.alerts, rate=args.rate, chats=args.chats,
                limiters=LIMITERS if args.limiter == "both" else [args.limiter], database_url=args.database_url)
    print(table(runs))
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "per_bot_core_s": r.per_bot_core_s} for r in runs], indent=2))


if __name__ == "__main__":
    cli()
