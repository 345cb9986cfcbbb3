"""An edge's alerts while its database is away: kept in a local SQLite spool and replayed, in
order and with their own times, once the database answers again.

The alert recorder writes through :class:`SpoolingStore`. While the database answers, each
write goes straight to it. When one fails because the database cannot be reached, that
write and every later one are appended to the spool file instead (each append is a durable
SQLite commit, so a kill -9 loses nothing), and a thread replays them oldest first every few
seconds until the spool is empty; only then do writes go straight to the database again, so
their order is kept. A replayed alert carries its key (``edge/camera/uuid``), unique in the
database, so an alert replayed twice (a crash between the database's commit and the spool's
delete) is found rather than recorded again; a camera event and its notice carry keys too;
updates and clears set values and are harmless to repeat. A write the database refuses for
another reason (a bug, not an outage) is set aside in the spool file, logged, and the replay
goes on.

What the edge reads from the database (the arm state, its cameras' snoozes and ignore zones)
answers with the last value read while the database is away. Those values are kept in the
spool file too, so that an edge restarting during an outage starts as it was set
(``offline``): the replay then first brings the database's schema to head (``prepare``).
The last run's open alerts are read only once the database answers (``open_alerts_known``).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from storage.models import SNAPSHOT_MAX_BYTES, Alert, ArmState, IgnoreZone, utcnow
from storage.repository import Store

log = logging.getLogger(__name__)

# The recorder's writes, by the Store method that applies them.
WRITES = frozenset({"record_alert", "update_alert", "clear_alert", "record_camera_event", "queue_notice",
                    "save_snapshot", "attach_clip"})
DEFAULT_RETRY_S = 5.0
# The state last read from the database, by name in the spool file.
KNOWN_ARMED, KNOWN_SNOOZES, KNOWN_ZONES = "armed", "snoozes", "zones"
# A snapshot saved while the database is away is named this way until the replay stores it;
# the writes that name it get the database's reference instead.
SPOOLED_SNAPSHOT_PREFIX = "spool:snapshot/"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS writes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,
    args TEXT NOT NULL,
    spooled_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshot_refs (
    spooled TEXT PRIMARY KEY,
    stored TEXT
);
CREATE TABLE IF NOT EXISTS known (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS set_aside (
    seq INTEGER PRIMARY KEY,
    op TEXT NOT NULL,
    args TEXT NOT NULL,
    spooled_at TEXT NOT NULL,
    error TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class SpooledWrite:
    seq: int
    op: str  # a Store method in WRITES
    args: dict[str, Any]
    spooled_at: datetime


def _encode(value: object) -> object:
    if isinstance(value, datetime):
        return {"$utc": value.isoformat()}
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode()}
    raise TypeError(f"cannot spool a {type(value).__name__}")


def _decode(obj: dict) -> object:
    if obj.keys() == {"$utc"}:
        return datetime.fromisoformat(obj["$utc"])
    if obj.keys() == {"$b64"}:
        return base64.b64decode(obj["$b64"])
    return obj


class Spool:
    """The durable queue of writes, one SQLite file; thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # The spool is the only copy of what it holds: every append reaches the disk.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def append(self, op: str, args: dict[str, Any]) -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO writes (op, args, spooled_at) VALUES (?, ?, ?)",
                (op, json.dumps(args, default=_encode), utcnow().isoformat()))
            return int(cursor.lastrowid)  # type: ignore[arg-type]

    def first(self) -> SpooledWrite | None:
        with self._lock:
            row = self._db.execute("SELECT seq, op, args, spooled_at FROM writes ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        return SpooledWrite(row[0], row[1], json.loads(row[2], object_hook=_decode),
                            datetime.fromisoformat(row[3]))

    def remove(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM writes WHERE seq = ?", (seq,))

    def set_aside(self, write: SpooledWrite, error: str) -> None:
        """Keep a write the database refused (for a person to look at) out of the queue."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO set_aside (seq, op, args, spooled_at, error) "
                "SELECT seq, op, args, spooled_at, ? FROM writes WHERE seq = ?", (error, write.seq))
            self._db.execute("DELETE FROM writes WHERE seq = ?", (write.seq,))
            self._db.execute("COMMIT")

    def name_snapshot(self, spooled: str, stored: str | None) -> None:
        """A spooled snapshot's reference in the database (None: it could not be stored)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO snapshot_refs (spooled, stored) VALUES (?, ?)",
                             (spooled, stored))

    def stored_snapshot(self, spooled: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT stored FROM snapshot_refs WHERE spooled = ?", (spooled,)).fetchone()
        return row[0] if row else None

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM writes").fetchone()[0])

    def knows_state(self) -> bool:
        """Whether a run has read the database's state into this spool (it can start without it)."""
        return self.recall(KNOWN_ARMED) is not None

    def remember(self, name: str, value: object) -> None:
        """Keep ``value`` (JSON) as the last known ``name``, for a start while the database is away."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO known (name, value) VALUES (?, ?)",
                             (name, json.dumps(value, default=_encode)))

    def recall(self, name: str) -> Any:
        """The last ``name`` remembered; None if never."""
        with self._lock:
            row = self._db.execute("SELECT value FROM known WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0], object_hook=_decode) if row else None

    def set_aside_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM set_aside").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def unreachable(exc: BaseException) -> bool:
    """Whether a database error means "cannot reach it" (spool and retry), not a refusal."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def failure_reason(exc: BaseException) -> str:
    """The driver's first line ("connection refused"), without the SQL or parameters."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first}"[:200]


class SpoolingStore:
    """The alert recorder's :class:`Store` on an edge, spooling while the database is away.

    The recorder's writes (``WRITES``) return what the database returns, or None when spooled;
    every other attribute is the store's own.
    """

    def __init__(self, store: Store, spool: Spool, *, retry_s: float = DEFAULT_RETRY_S,
                 offline: BaseException | None = None, prepare: Callable[[], object] | None = None) -> None:
        """``offline``: the database could not be reached at start (this error): spool from the
        first write, with the state last read. ``prepare`` runs once the database answers,
        before the first write reaches it (the schema's migrations)."""
        self.store = store
        self.spool = spool
        self.retry_s = retry_s
        self._lock = threading.Lock()  # decides, for each write, database or spool
        self._spooling = False
        self._outage_began = 0.0
        self._replayed = 0
        self._stop = threading.Event()
        self._replayer: threading.Thread | None = None
        self._replaying = threading.Lock()  # one replay at a time: a write is applied once
        self._prepare = prepare
        self._prepare_failed = False
        self.open_alerts_known = True
        # The state last read from the database, here and in the spool file.
        self._known_armed: bool | None = spool.recall(KNOWN_ARMED)
        self._arm = ArmState(id=1, armed=self._known_armed is not False)  # a new installation starts armed
        self._snoozed: dict[str, datetime | None] = spool.recall(KNOWN_SNOOZES) or {}
        self._zones: dict[str, list[dict[str, Any]]] = spool.recall(KNOWN_ZONES) or {}
        self._keeping = threading.Lock()  # the reads come from every camera's thread
        if offline is not None:
            with self._lock:
                self._begin_outage(offline, at_start=True)
        elif len(spool):  # left by the last run (it died, or stopped, during an outage)
            log.warning("%d writes spooled by the last run are replayed first", len(spool))
            self._spooling, self._outage_began = True, time.monotonic()
            if not self._drain():
                self._start_replayer()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    @property
    def spooling(self) -> bool:
        return self._spooling

    # -- writes ---------------------------------------------------------------------------

    def record_alert(self, **args: Any) -> Alert | None:
        return self._write("record_alert", args)

    def update_alert(self, alert_id: int | str, **args: Any) -> Alert | None:
        return self._write("update_alert", {"alert_id": alert_id, **args})

    def clear_alert(self, alert_id: int | str, at: datetime) -> Alert | None:
        return self._write("clear_alert", {"alert_id": alert_id, "at": at})

    def record_camera_event(self, camera: str, kind: str, detail: str = "", at: datetime | None = None,
                            key: str | None = None) -> object:
        # Named before the first try: one that committed as the connection broke is found.
        return self._write("record_camera_event", {"camera": camera, "kind": kind, "detail": detail,
                                                   "at": at or utcnow(), "key": key or f"{camera}/{uuid.uuid4().hex}"})

    def queue_notice(self, text: str, key: str | None = None) -> None:
        self._write("queue_notice", {"text": text, "key": key or f"notice/{uuid.uuid4().hex}"})

    def attach_clip(self, alert_id: int | str, clip_path: str) -> Alert | None:
        return self._write("attach_clip", {"alert_id": alert_id, "clip_path": clip_path})

    def save_snapshot(self, data: bytes, content_type: str = "image/jpeg") -> str:
        """The database's reference, or while it is away a spooled one that the replay turns
        into it (in the writes that name it)."""
        if len(data) > SNAPSHOT_MAX_BYTES:  # refused now, as the database would at the replay
            raise ValueError(f"snapshot of {len(data)} bytes is over the {SNAPSHOT_MAX_BYTES}-byte cap")
        spooled = f"{SPOOLED_SNAPSHOT_PREFIX}{uuid.uuid4().hex}"
        stored = self._write("save_snapshot", {"data": data, "content_type": content_type, "_as": spooled})
        return stored or spooled

    def _write(self, op: str, args: dict[str, Any]) -> Any:
        with self._lock:
            if not self._spooling:
                try:
                    return self._apply(op, args, replay=False)
                except Exception as exc:
                    if not unreachable(exc):
                        raise
                    # It may have committed before the connection broke: replaying it is
                    # harmless (alerts by key, updates set values).
                    self._begin_outage(exc)
            self.spool.append(op, args)
            return None

    def _apply(self, op: str, args: dict[str, Any], *, replay: bool) -> Any:
        args = dict(args)
        spooled_as = args.pop("_as", None)
        for name, value in args.items():  # a snapshot (or clip) saved while the database was away
            if isinstance(value, str) and value.startswith(SPOOLED_SNAPSHOT_PREFIX):
                args[name] = self.spool.stored_snapshot(value)
        result = getattr(self.store, op)(**args)
        if replay and spooled_as is not None:
            self.spool.name_snapshot(spooled_as, result)
        return result

    # -- what the edge reads: the last answer while the database is away ------------------

    def arm_state(self) -> ArmState:
        arm = self._read(self.store.arm_state, self._arm)
        with self._keeping:
            if arm.armed != self._known_armed:
                self.spool.remember(KNOWN_ARMED, arm.armed)
                self._known_armed = arm.armed
            self._arm = arm
        return arm

    def snoozed_until(self, camera: str, now: datetime | None = None) -> datetime | None:
        until = self._read(lambda: self.store.snoozed_until(camera, now), self._snoozed.get(camera))
        self._keep(KNOWN_SNOOZES, self._snoozed, camera, until)
        if until is not None and until <= (now or utcnow()):
            return None
        return until

    def zones(self, camera: str | None = None) -> list[IgnoreZone]:
        """``camera``'s ignore zones (every camera's: as the store reads them, never kept)."""
        if camera is None:
            return self.store.zones()
        known = [IgnoreZone(id=z["id"], camera=camera, points=z["points"]) for z in self._zones.get(camera, [])]
        rows = self._read(lambda: self.store.zones(camera), None)
        if rows is None:
            return known
        self._keep(KNOWN_ZONES, self._zones, camera, [{"id": row.id, "points": row.points} for row in rows])
        return rows

    def _keep(self, name: str, known: dict[str, Any], camera: str, value: Any) -> None:
        """``known[camera] = value``, in the spool file too when it changed."""
        with self._keeping:
            if camera not in known or known[camera] != value:
                known[camera] = value
                self.spool.remember(name, known)

    def remember_state(self, cameras: Iterable[str]) -> None:
        """Read (and so keep) the arm state and these cameras' snoozes and zones, for a
        start while the database is away; nothing while it is away."""
        if self._spooling:
            return
        self.arm_state()
        for camera in cameras:
            self.snoozed_until(camera)
            self.zones(camera)

    def open_alerts(self) -> list[Alert]:
        """The open alerts, or none while the database is away (``open_alerts_known`` False
        then: the caller asks again once it answers)."""
        alerts = self._read(self.store.open_alerts, None)
        self.open_alerts_known = alerts is not None
        return alerts or []

    def _read(self, read: Any, last: Any) -> Any:
        if self._spooling:  # do not wait on a database known to be away
            return last
        try:
            return read()
        except Exception as exc:
            if not unreachable(exc):
                raise
            return last

    # -- the outage and the replay -------------------------------------------------------

    def _begin_outage(self, exc: BaseException, *, at_start: bool = False) -> None:
        """Called with ``_lock`` held (or before any other thread runs)."""
        self._spooling = True
        self._outage_began = time.monotonic()
        self._replayed = 0
        start = ""
        if at_start:
            snoozed = sum(until is not None for until in self._snoozed.values())
            zones = sum(len(z) for z in self._zones.values())
            start = (f" starting as last read from it ({'armed' if self._arm.armed else 'disarmed'}, "
                     f"{snoozed} snoozed cameras, {zones} ignore zones);")
        log.warning("database %s unreachable%s (%s):%s detection goes on, alerts are spooled in %s "
                    "and replayed when it answers", self._safe_url(), " at start" if at_start else "",
                    failure_reason(exc), start, self.spool.path)
        self._start_replayer()

    def _start_replayer(self) -> None:
        """With ``_lock`` held: a replay thread, unless one runs."""
        if self._replayer is None:
            self._replayer = threading.Thread(target=self._replay_until_drained, name="spool-replay",
                                              daemon=True)
            self._replayer.start()

    def _replay_until_drained(self) -> None:
        while not self._stop.wait(self.retry_s):
            if self._drain():
                with self._lock:
                    if not self._spooling:  # else an outage began again since: go on
                        self._replayer = None
                        return

    def _drain(self) -> bool:
        """Replay the spool, oldest first; True once it is empty and writes go straight on."""
        with self._replaying:
            return self._drain_locked()

    def _drain_locked(self) -> bool:
        if self._prepare is not None and not self._prepared():
            return False
        while True:
            write = self.spool.first()
            if write is None:
                with self._lock:
                    if self.spool.first() is not None:  # appended meanwhile
                        continue
                    if self._spooling:
                        self._spooling = False
                        log.info("database %s reachable again after %.0f s: %d spooled records replayed",
                                 self._safe_url(), time.monotonic() - self._outage_began, self._replayed)
                    return True
            try:
                self._apply(write.op, write.args, replay=True)
            except Exception as exc:
                if unreachable(exc):
                    return False
                log.error("spooled %s #%d refused by the database (%s): set aside in %s", write.op,
                          write.seq, failure_reason(exc), self.spool.path)
                self.spool.set_aside(write, failure_reason(exc))
                continue
            self.spool.remove(write.seq)
            self._replayed += 1

    def _prepared(self) -> bool:
        """Run ``prepare`` (once it succeeds); False while it cannot."""
        try:
            self._prepare()  # type: ignore[misc]
        except Exception as exc:
            if not unreachable(exc) and not self._prepare_failed:
                # Not an outage (a migration failed): said once, retried, the alerts stay spooled.
                log.error("database %s answers but could not be prepared (%s): alerts stay spooled in %s",
                          self._safe_url(), failure_reason(exc), self.spool.path)
                self._prepare_failed = True
            return False
        self._prepare = None
        return True

    def replay_now(self) -> bool:
        """Try the replay at once (rather than at the next retry); True if nothing is left."""
        return self._drain()

    def _safe_url(self) -> str:
        return self.store.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Stop replaying (what is left stays spooled for the next run) and close both."""
        self._stop.set()
        replayer = self._replayer
        if replayer is not None:
            replayer.join(timeout=10)
        self.spool.close()
        self.store.close()
