"""The operations firewatch performs on its database, one short transaction each.

Objects returned are detached snapshots (``expire_on_commit=False``): read their
columns freely, but do not follow relationships on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, Engine, Exists, Select, any_, delete, func, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from storage.db import create_db_engine
from storage.models import (
    CHAT_CHANNEL,
    SNAPSHOT_MAX_BYTES,
    STORED_SNAPSHOT_PREFIX,
    Alert,
    AlertAction,
    AlertActionKind,
    AlertStatus,
    ArmAudit,
    ArmState,
    CameraEvent,
    Chat,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Edge,
    FaceTemplate,
    IgnoreZone,
    Operator,
    Role,
    Snooze,
    StoredSnapshot,
    UTCDateTime,
    utcnow,
)

_ARM_ROW = 1
# An alert as the recorder names it: its id, or its key (all an edge knows while it spools).
AlertRef = int | str


@dataclass(frozen=True)
class SentDelivery:
    """A delivery its channel accepted: what to record of it."""

    delivery_id: int
    message_id: int | None  # the channel's id of what was sent
    at: datetime


class Store:
    """Repository over one database. Thread-safe: each call opens its own session."""

    def __init__(self, engine_or_url: Engine | str) -> None:
        self.engine = (
            create_db_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # -- operators and faces -------------------------------------------------------

    def add_operator(self, user_id: int, name: str, role: Role = Role.OPERATOR) -> Operator:
        """Create the operator, or reactivate and rename an existing one."""
        with self._tx() as s:
            op = s.scalar(select(Operator).where(Operator.telegram_user_id == user_id))
            if op is None:
                op = Operator(telegram_user_id=user_id, name=name, role=role)
                s.add(op)
            else:
                op.name, op.role, op.active = name, role, True
            s.flush()
            return op

    def get_operator(self, user_id: int, *, active_only: bool = True) -> Operator | None:
        with self._tx() as s:
            query = select(Operator).where(Operator.telegram_user_id == user_id)
            if active_only:
                query = query.where(Operator.active.is_(True))
            return s.scalar(query)

    def list_operators(self, *, include_inactive: bool = False) -> list[Operator]:
        with self._tx() as s:
            query = select(Operator).order_by(Operator.name)
            if not include_inactive:
                query = query.where(Operator.active.is_(True))
            return list(s.scalars(query))

    def remove_operator(self, user_id: int) -> bool:
        """Delete the operator and their face templates; the audit keeps their user id."""
        with self._tx() as s:
            op = s.scalar(select(Operator).where(Operator.telegram_user_id == user_id))
            if op is None:
                return False
            s.delete(op)
            return True

    def add_face_template(self, user_id: int, encoding: bytes, photo_hash: str) -> FaceTemplate:
        with self._tx() as s:
            op = s.scalar(select(Operator).where(Operator.telegram_user_id == user_id))
            if op is None:
                raise LookupError(f"no operator with user id {user_id}")
            template = FaceTemplate(operator_id=op.id, encoding=encoding, photo_hash=photo_hash)
            s.add(template)
            s.flush()
            return template

    def face_templates(self, user_id: int) -> list[bytes]:
        """Encodings enrolled for this user (active operators only)."""
        with self._tx() as s:
            rows = s.scalars(
                select(FaceTemplate.encoding)
                .join(Operator)
                .where(Operator.telegram_user_id == user_id, Operator.active.is_(True))
                .order_by(FaceTemplate.id)
            )
            return list(rows)

    def photo_seen(self, photo_hash: str) -> bool:
        """Was this exact photo used before, for enrolment or an arm/disarm attempt?"""
        with self._tx() as s:
            in_audit = s.scalar(select(func.count()).where(ArmAudit.photo_hash == photo_hash))
            in_templates = s.scalar(
                select(func.count()).where(FaceTemplate.photo_hash == photo_hash)
            )
            return bool(in_audit or in_templates)

    # -- chats -----------------------------------------------------------------------

    def add_chat(self, chat_id: int, title: str = "") -> Chat:
        with self._tx() as s:
            chat = s.scalar(select(Chat).where(Chat.chat_id == chat_id))
            if chat is None:
                chat = Chat(chat_id=chat_id, title=title)
                s.add(chat)
            else:
                chat.active, chat.title = True, title or chat.title
            s.flush()
            return chat

    def remove_chat(self, chat_id: int) -> bool:
        with self._tx() as s:
            result = s.execute(update(Chat).where(Chat.chat_id == chat_id).values(active=False))
            return bool(result.rowcount)

    def chat_title(self, chat_id: int) -> str | None:
        """The stored title of a chat (a private chat's title is its user's name), if any."""
        with self._tx() as s:
            return s.scalar(select(Chat.title).where(Chat.chat_id == chat_id)) or None

    def alert_chat_ids(self) -> list[int]:
        with self._tx() as s:
            return list(s.scalars(select(Chat.chat_id).where(Chat.active.is_(True)).order_by(Chat.id)))

    # -- arm state and audit -----------------------------------------------------------

    def arm_state(self) -> ArmState:
        """The current state; a new installation starts armed."""
        with self._tx() as s:
            return self._arm_row(s)

    @staticmethod
    def _arm_row(s: Session) -> ArmState:
        row = s.get(ArmState, _ARM_ROW)
        if row is None:
            row = ArmState(id=_ARM_ROW, armed=True)
            s.add(row)
            s.flush()
        return row

    def set_armed(
        self,
        armed: bool,
        *,
        user_id: int | None,
        method: str,
        rearm_at: datetime | None = None,
        face_distance: float | None = None,
        photo_hash: str | None = None,
        detail: str = "",
        notice: str | None = None,
    ) -> ArmState:
        """Change the state, audit the successful attempt and queue ``notice`` to every chat,
        in one transaction."""
        with self._tx() as s:
            row = self._arm_row(s)
            row.armed, row.changed_by, row.changed_at = armed, user_id, utcnow()
            row.rearm_at = None if armed else rearm_at
            if armed:  # a fire that burns on while the system was disarmed is news now
                self._push_open(s)
            s.add(
                ArmAudit(
                    telegram_user_id=user_id,
                    action="arm" if armed else "disarm",
                    method=method,
                    success=True,
                    face_distance=face_distance,
                    photo_hash=photo_hash,
                    detail=detail,
                )
            )
            if notice:
                self._queue_text(s, notice)
            return row

    def audit_failure(
        self,
        *,
        user_id: int | None,
        action: str,
        method: str,
        detail: str,
        face_distance: float | None = None,
        photo_hash: str | None = None,
    ) -> ArmAudit:
        with self._tx() as s:
            entry = ArmAudit(
                telegram_user_id=user_id,
                action=action,
                method=method,
                success=False,
                face_distance=face_distance,
                photo_hash=photo_hash,
                detail=detail,
            )
            s.add(entry)
            s.flush()
            return entry

    def failed_attempt_times(self, user_id: int, since: datetime) -> list[datetime]:
        """When this user's selfies failed (refusals during a lockout not counted), oldest first."""
        with self._tx() as s:
            return list(
                s.scalars(
                    select(ArmAudit.at)
                    .where(
                        ArmAudit.telegram_user_id == user_id,
                        ArmAudit.success.is_(False),
                        ArmAudit.method != "lockout",
                        ArmAudit.at >= since,
                    )
                    .order_by(ArmAudit.at)
                )
            )

    def audit_log(self, limit: int = 50) -> list[ArmAudit]:
        with self._tx() as s:
            return list(s.scalars(select(ArmAudit).order_by(ArmAudit.id.desc()).limit(limit)))

    # -- alerts ------------------------------------------------------------------------

    def record_alert(
        self,
        *,
        camera: str,
        track_id: int,
        class_name: str,
        severity: str | None,
        confidence: float,
        area: float,
        snapshot_path: str | None,
        seen_at: datetime,
        push: bool,
        box: list[float] | None = None,
        verification: dict | None = None,
        key: str | None = None,
    ) -> Alert:
        """Store a started alert and, when pushing, its first-photo deliveries.

        Both land in one transaction: once this returns, a crash can delay the alert's
        messages but not lose them. An alert already stored under ``key`` is returned as
        it is, nothing added: recording it again (a replay) is harmless.
        """
        with self._tx() as s:
            if key is not None and (known := s.scalar(select(Alert).where(Alert.key == key))) is not None:
                return known
            alert = Alert(
                key=key,
                camera=camera,
                track_id=track_id,
                class_name=class_name,
                severity=severity,
                first_seen=seen_at,
                last_seen=seen_at,
                peak_confidence=confidence,
                peak_area=area,
                snapshot_path=snapshot_path,
                pushed=push,
                box=box,
                verification=verification,
            )
            s.add(alert)
            s.flush()
            if push:
                self._queue_first_messages(s, [alert])
            return alert

    def update_alert(
        self,
        alert_id: AlertRef,
        *,
        seen_at: datetime,
        severity: str | None = None,
        confidence: float | None = None,
        area: float | None = None,
        snapshot_path: str | None = None,
        box: list[float] | None = None,
    ) -> Alert:
        """Fold a newer observation into the alert and queue edits of its messages."""
        with self._tx() as s:
            alert = self._alert(s, alert_id)
            alert.last_seen = max(alert.last_seen, seen_at)
            if severity is not None:
                alert.severity = severity
            if confidence is not None:
                alert.peak_confidence = max(alert.peak_confidence, confidence)
            if area is not None:
                alert.peak_area = max(alert.peak_area, area)
            if snapshot_path is not None:
                alert.snapshot_path = snapshot_path
            if box is not None:
                alert.box = box
            self._queue_edits(
                s, alert, DeliveryKind.ALERT_SNAPSHOT if snapshot_path else DeliveryKind.ALERT_STATE
            )
            return alert

    def attach_clip(self, alert_id: AlertRef, clip_path: str) -> Alert:
        """The alert's onset clip is cut: keep it and queue, to every recipient of the alert,
        the edit that puts it in place of the photo."""
        with self._tx() as s:
            alert = self._alert(s, alert_id)
            alert.clip_path = clip_path
            self._queue_edits(s, alert, DeliveryKind.ALERT_CLIP)
            return alert

    def clear_alert(self, alert_id: AlertRef, at: datetime) -> Alert:
        with self._tx() as s:
            alert = self._alert(s, alert_id)
            alert.cleared_at = at
            if alert.status is AlertStatus.NEW:
                alert.status = AlertStatus.CLEARED
            self._queue_edits(s, alert, DeliveryKind.ALERT_STATE)
            return alert

    def clear_stale_alerts(self, at: datetime) -> int:
        """At start: alerts left open by the last run are cleared.

        Track ids restart with the process, so an open alert can never be continued;
        if the fire is still burning, the pipeline raises a new alert within seconds.
        """
        with self._tx() as s:
            stale = s.scalars(select(Alert).where(Alert.cleared_at.is_(None))).all()
            for alert in stale:
                alert.cleared_at = at
                if alert.status is AlertStatus.NEW:
                    alert.status = AlertStatus.CLEARED
                self._queue_edits(s, alert, DeliveryKind.ALERT_STATE)
            return len(stale)

    def set_alert_status(self, alert_id: int, status: AlertStatus, user_id: int,
                         action: AlertActionKind | None = None) -> Alert:
        """Record an operator's button press in the alert's history and refresh every
        chat's copy. ``action`` defaults to the one the status names."""
        with self._tx() as s:
            alert = self._alert(s, alert_id)
            alert.status, alert.acted_by, alert.acted_at = status, user_id, utcnow()
            s.add(AlertAction(alert_id=alert_id, user_id=user_id, at=alert.acted_at,
                              action=(action or AlertActionKind(status.value)).value))
            self._queue_edits(s, alert, DeliveryKind.ALERT_STATE)
            return alert

    def alert_actions(self, alert_id: int) -> list[AlertAction]:
        """What was done about the alert, oldest first."""
        with self._tx() as s:
            return list(s.scalars(select(AlertAction).where(AlertAction.alert_id == alert_id)
                                  .order_by(AlertAction.at, AlertAction.id)))

    def open_alerts(self) -> list[Alert]:
        """Alerts not cleared yet (at start: those the last run left open), oldest first."""
        with self._tx() as s:
            return list(s.scalars(select(Alert).where(Alert.cleared_at.is_(None)).order_by(Alert.id)))

    @staticmethod
    def _push_open(s: Session, camera: str | None = None) -> list[int]:
        """Queue the first messages of open alerts that were recorded without them
        (disarmed, snoozed), except on cameras still snoozed."""
        now = utcnow()
        snoozed = select(Snooze.camera).where(Snooze.until > now)
        query = select(Alert).where(Alert.cleared_at.is_(None), Alert.pushed.is_(False),
                                    Alert.camera.not_in(snoozed))
        if camera is not None:
            query = query.where(Alert.camera == camera)
        alerts = s.scalars(query.order_by(Alert.id)).all()
        for alert in alerts:
            alert.pushed = True
        Store._queue_first_messages(s, alerts)
        return [a.id for a in alerts]

    @staticmethod
    def _queue_first_messages(s: Session, alerts: Iterable[Alert]) -> None:
        """The message that carries each alert, to every active chat."""
        chats = list(s.scalars(select(Chat.chat_id).where(Chat.active.is_(True)).order_by(Chat.id)))
        for a in alerts:
            s.add_all(Delivery(alert_id=a.id, channel=CHAT_CHANNEL, chat_id=c, kind=DeliveryKind.ALERT)
                      for c in chats)
            if a.clip_path:  # cut while it was not pushed: it follows the photo
                s.add_all(Delivery(alert_id=a.id, channel=CHAT_CHANNEL, chat_id=c, kind=DeliveryKind.ALERT_CLIP)
                          for c in chats)

    @staticmethod
    def _alert(s: Session, alert_id: AlertRef) -> Alert:
        alert = (s.scalar(select(Alert).where(Alert.key == alert_id)) if isinstance(alert_id, str)
                 else s.get(Alert, alert_id))
        if alert is None:
            raise LookupError(f"no alert {alert_id}")
        return alert

    @staticmethod
    def _queue_edits(s: Session, alert: Alert, kind: DeliveryKind) -> None:
        """One update per recipient that got (or will get) the alert, in each channel.

        Updates render the alert as it is when sent, so a pending update already covers
        any later change: queue a new one only where none is waiting. A pending snapshot
        update (or clip) also shows the state, so it covers a state update too; nothing but
        a clip covers a clip.
        """
        covering = ([kind] if kind is DeliveryKind.ALERT_CLIP
                    else [kind, DeliveryKind.ALERT_SNAPSHOT, DeliveryKind.ALERT_CLIP])
        recipients = s.execute(
            select(Delivery.channel, Delivery.chat_id).where(
                Delivery.alert_id == alert.id,
                Delivery.kind == DeliveryKind.ALERT,
                Delivery.status.not_in([DeliveryStatus.FAILED, DeliveryStatus.IN_DOUBT]),
            )
        ).all()
        waiting = set(
            s.execute(
                select(Delivery.channel, Delivery.chat_id).where(
                    Delivery.alert_id == alert.id,
                    Delivery.kind.in_(covering),
                    Delivery.status == DeliveryStatus.PENDING,
                )
            ).all()
        )
        s.add_all(
            Delivery(alert_id=alert.id, channel=channel, chat_id=c, kind=kind)
            for channel, c in recipients if (channel, c) not in waiting
        )

    def get_alert(self, alert_id: int) -> Alert | None:
        with self._tx() as s:
            return s.get(Alert, alert_id)

    def recent_alerts(
        self,
        *,
        limit: int = 10,
        offset: int = 0,
        since: datetime | None = None,
        class_name: str | None = None,
    ) -> tuple[list[Alert], int]:
        """Newest first, with the total count for paging."""
        conditions = []
        if since is not None:
            conditions.append(Alert.first_seen >= since)
        if class_name is not None:
            conditions.append(Alert.class_name == class_name)
        with self._tx() as s:
            total = s.scalar(select(func.count()).select_from(Alert).where(*conditions)) or 0
            rows = s.scalars(
                select(Alert).where(*conditions).order_by(Alert.first_seen.desc(), Alert.id.desc())
                .offset(offset).limit(limit)
            )
            return list(rows), total

    # -- outbox ------------------------------------------------------------------------

    def queue_text(self, chat_ids: Iterable[int], text: str) -> list[Delivery]:
        with self._tx() as s:
            rows = [Delivery(channel=CHAT_CHANNEL, chat_id=c, kind=DeliveryKind.TEXT, text=text) for c in chat_ids]
            s.add_all(rows)
            s.flush()
            return rows

    def queue_notice(self, text: str, key: str | None = None) -> None:
        """``text`` to every chat active when it is queued; a notice named ``key`` is queued
        once, however often it is asked for (an edge's spool replayed twice)."""
        with self._tx() as s:
            if key is not None and s.scalar(select(Delivery.id).where(Delivery.notice_key == key).limit(1)):
                return
            self._queue_text(s, text, key)

    @staticmethod
    def _queue_text(s: Session, text: str, key: str | None = None) -> None:
        """``text`` to every active chat, in the caller's transaction."""
        chats = s.scalars(select(Chat.chat_id).where(Chat.active.is_(True)).order_by(Chat.id))
        s.add_all(Delivery(channel=CHAT_CHANNEL, chat_id=c, kind=DeliveryKind.TEXT, text=text, notice_key=key)
                  for c in chats)

    def due_deliveries(self, now: datetime | None = None, limit: int = 50,
                       channel: str | None = None) -> list[Delivery]:
        """Pending deliveries whose time has come, oldest first (of ``channel``, else of all).

        Each recipient receives its messages in the order they were queued: a delivery
        waiting for a retry holds back the later ones of its recipient (not those of others).
        """
        now = now or utcnow()
        held_back = _earlier_unsettled(waiting_after=now)
        with self._tx() as s:
            return list(
                s.scalars(
                    select(Delivery)
                    .where(
                        Delivery.status == DeliveryStatus.PENDING,
                        Delivery.next_attempt_at <= now,
                        ~held_back,
                        *_of_channel(channel),
                    )
                    .order_by(Delivery.id)
                    .limit(limit)
                )
            )

    def claim_due(self, channel: str | None = None, limit: int = 1, now: datetime | None = None,
                  sent: Sequence[SentDelivery] = ()) -> list[Delivery]:
        """Take up to ``limit`` due deliveries for sending (as ``claim_delivery``), oldest
        first; ``sent`` (deliveries just sent) is recorded first, in the same transaction, so
        that their recipients' next deliveries can be taken at once.

        A recipient's next delivery waits until its earlier one is settled, so a claim takes
        each recipient's oldest unsettled delivery if it is pending and due, and at most one
        per recipient: two senders never reorder one chat's messages. Safe with several
        senders on one database (two bot processes while one restarts): on PostgreSQL the rows
        are picked ``FOR UPDATE SKIP LOCKED``, so each sender takes different rows without
        waiting; SQLite, which has no row locks, runs the one statement (pick, mark and
        return the rows) under its single writer lock.

        The recipients' oldest unsettled deliveries are found first, in one pass over the
        unsettled rows, whatever PostgreSQL's statistics say. Asking instead, for each pending
        row, whether an earlier one is unsettled let PostgreSQL scan the table once per pending
        row on a new database (0.5 s a claim with 3000 pending), or walk every sent row before
        the first pending one once it had statistics (bench/fleet.py).
        """
        now = now or utcnow()
        with self._tx() as s:
            if sent:
                s.execute(update(Delivery), [{"id": d.delivery_id, "status": DeliveryStatus.SENT,
                                              "message_id": d.message_id, "sent_at": d.at, "last_error": None}
                                             for d in sent])
            if limit < 1:
                return []
            postgres = s.get_bind().dialect.name == "postgresql"
            oldest_unsettled = (
                select(func.min(Delivery.id))
                .where(Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]), *_of_channel(channel))
                .group_by(Delivery.channel, Delivery.chat_id)
                .correlate(None)  # its own FROM deliveries, not the UPDATE's row
            )
            pick = (
                select(Delivery.id)
                .where(
                    _one_of(Delivery.id, oldest_unsettled, postgres),
                    Delivery.status == DeliveryStatus.PENDING,
                    Delivery.next_attempt_at <= now,
                )
                .order_by(Delivery.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .correlate(None)
            )
            claimed = s.scalars(
                update(Delivery)
                .where(_one_of(Delivery.id, pick, postgres))  # pending: locked so by ``pick``
                .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1)
                .returning(Delivery)
                .execution_options(synchronize_session=False)
            )
            return sorted(claimed, key=lambda d: d.id)

    def next_due_at(self, channel: str | None = None) -> datetime | None:
        with self._tx() as s:
            return s.scalar(
                select(func.min(Delivery.next_attempt_at)).where(
                    Delivery.status == DeliveryStatus.PENDING, *_of_channel(channel)
                )
            )

    def claim_delivery(self, delivery_id: int) -> Delivery | None:
        """Mark a pending delivery as being sent; None if someone else took it."""
        with self._tx() as s:
            result = s.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.status == DeliveryStatus.PENDING)
                .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1)
            )
            return s.get(Delivery, delivery_id) if result.rowcount else None

    def mark_sent(self, delivery_id: int, message_id: int | None) -> None:
        with self._tx() as s:
            s.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(
                    status=DeliveryStatus.SENT,
                    message_id=message_id,
                    sent_at=utcnow(),
                    last_error=None,
                )
            )

    def mark_retry(self, delivery_id: int, error: str, next_attempt_at: datetime) -> None:
        with self._tx() as s:
            s.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(status=DeliveryStatus.PENDING, last_error=error, next_attempt_at=next_attempt_at)
            )

    def mark_failed(self, delivery_id: int, error: str) -> None:
        with self._tx() as s:
            s.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(status=DeliveryStatus.FAILED, last_error=error)
            )

    def recover_interrupted(self) -> int:
        """At start: deliveries left 'sending' by a crash go back to pending, in doubt.

        Such a send may have reached Telegram before the crash; it is retried, so it can
        repeat at most once. Its ``attempts`` already counts the lost try. One that was
        already in doubt (a timeout, or an earlier crash) is not sent a third time.
        """
        with self._tx() as s:
            spent = s.execute(
                update(Delivery)
                .where(Delivery.status == DeliveryStatus.SENDING, Delivery.in_doubt.is_(True))
                .values(status=DeliveryStatus.IN_DOUBT, last_error="interrupted by a restart, again")
            ).rowcount
            result = s.execute(
                update(Delivery)
                .where(Delivery.status == DeliveryStatus.SENDING)
                .values(status=DeliveryStatus.PENDING, in_doubt=True, last_error="interrupted by a restart")
            )
            return result.rowcount + spent

    def mark_in_doubt(self, delivery_id: int, error: str, next_attempt_at: datetime) -> bool:
        """The try may have arrived unseen (no answer in time): allow one more, at
        ``next_attempt_at``, unless one was already in doubt. Returns whether it will be
        sent again; if not, it ends ``in-doubt`` (not ``failed``: it most likely arrived)."""
        with self._tx() as s:
            again = s.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.in_doubt.is_(False))
                .values(status=DeliveryStatus.PENDING, in_doubt=True, last_error=error,
                        next_attempt_at=next_attempt_at)
            ).rowcount
            if not again:
                s.execute(update(Delivery).where(Delivery.id == delivery_id)
                          .values(status=DeliveryStatus.IN_DOUBT, last_error=error))
            return bool(again)

    def first_message(self, alert_id: int, chat_id: int, channel: str = CHAT_CHANNEL) -> Delivery | None:
        """The delivery that carries this alert to this recipient (whatever its state)."""
        with self._tx() as s:
            return s.scalar(
                select(Delivery).where(
                    Delivery.alert_id == alert_id,
                    Delivery.channel == channel,
                    Delivery.chat_id == chat_id,
                    Delivery.kind == DeliveryKind.ALERT,
                )
            )

    def alert_message_id(self, alert_id: int, chat_id: int, channel: str = CHAT_CHANNEL) -> int | None:
        """The message that carries this alert to this recipient, once sent."""
        with self._tx() as s:
            return s.scalar(
                select(Delivery.message_id).where(
                    Delivery.alert_id == alert_id,
                    Delivery.channel == channel,
                    Delivery.chat_id == chat_id,
                    Delivery.kind == DeliveryKind.ALERT,
                    Delivery.status == DeliveryStatus.SENT,
                )
            )

    def deliveries(self, alert_id: int | None = None) -> list[Delivery]:
        with self._tx() as s:
            query = select(Delivery).order_by(Delivery.id)
            if alert_id is not None:
                query = query.where(Delivery.alert_id == alert_id)
            return list(s.scalars(query))

    # -- cameras -----------------------------------------------------------------------

    def record_camera_event(self, camera: str, kind: str, detail: str = "",
                            at: datetime | None = None, key: str | None = None) -> CameraEvent:
        """The event; one named ``key`` that is already stored is returned, not stored again."""
        with self._tx() as s:
            if key is not None and (known := s.scalar(select(CameraEvent).where(CameraEvent.key == key))):
                return known
            row = CameraEvent(camera=camera, kind=kind, detail=detail, at=at or utcnow(), key=key)
            s.add(row)
            s.flush()
            return row

    def camera_events(self, camera: str | None = None, limit: int = 20) -> list[CameraEvent]:
        with self._tx() as s:
            query = select(CameraEvent).order_by(CameraEvent.id.desc()).limit(limit)
            if camera is not None:
                query = query.where(CameraEvent.camera == camera)
            return list(s.scalars(query))

    def snooze(self, camera: str, until: datetime, user_id: int | None, *,
               alert_id: int | None = None, notice: str | None = None) -> Snooze:
        """Silence a camera until ``until``: the alert it was pressed on records it and its
        messages are refreshed, and ``notice`` goes to every chat, all in one transaction."""
        with self._tx() as s:
            row = s.get(Snooze, camera)
            if row is None:
                row = Snooze(camera=camera)
                s.add(row)
            row.until, row.by_user_id, row.at, row.alert_id = until, user_id, utcnow(), alert_id
            if alert_id is not None:
                alert = self._alert(s, alert_id)
                s.add(AlertAction(alert_id=alert_id, user_id=user_id, action=AlertActionKind.SNOOZED.value,
                                  detail=until.isoformat()))
                self._queue_edits(s, alert, DeliveryKind.ALERT_STATE)
            if notice:
                self._queue_text(s, notice)
            s.flush()
            return row

    def end_snooze(self, camera: str, user_id: int | None, *, notice: str | None = None) -> Snooze | None:
        """End a camera's snooze (early, or its time is up): its alert records the end, the
        fires it kept quiet that still burn are pushed when armed, and ``notice`` goes to
        every chat. None if the camera was not snoozed."""
        with self._tx() as s:
            row = s.get(Snooze, camera)
            if row is None:
                return None
            s.delete(row)
            s.flush()
            if row.alert_id is not None and s.get(Alert, row.alert_id) is not None:
                s.add(AlertAction(alert_id=row.alert_id, user_id=user_id,
                                  action=AlertActionKind.SNOOZE_ENDED.value))
                self._queue_edits(s, self._alert(s, row.alert_id), DeliveryKind.ALERT_STATE)
            if self._arm_row(s).armed:
                self._push_open(s, camera)
            if notice:
                self._queue_text(s, notice)
            return row

    def snoozes(self) -> list[Snooze]:
        """Every snooze row, running or run out (a job ends those), by camera."""
        with self._tx() as s:
            return list(s.scalars(select(Snooze).order_by(Snooze.camera)))

    def snoozed_until(self, camera: str, now: datetime | None = None) -> datetime | None:
        with self._tx() as s:
            row = s.get(Snooze, camera)
            return row.until if row is not None and row.until > (now or utcnow()) else None

    # -- ignore zones --------------------------------------------------------------------

    def add_zone(self, camera: str, points: list[list[float]], *, created_by: int | None,
                 alert_id: int | None = None) -> IgnoreZone:
        with self._tx() as s:
            zone = IgnoreZone(camera=camera, points=points, created_by=created_by, alert_id=alert_id)
            s.add(zone)
            s.flush()
            return zone

    def zones(self, camera: str | None = None) -> list[IgnoreZone]:
        """Operator-added zones, oldest first (one camera's, or every camera's)."""
        with self._tx() as s:
            query = select(IgnoreZone).order_by(IgnoreZone.id)
            if camera is not None:
                query = query.where(IgnoreZone.camera == camera)
            return list(s.scalars(query))

    def remove_zone(self, zone_id: int) -> IgnoreZone | None:
        """Delete a zone; returns what was deleted (None: no such zone)."""
        with self._tx() as s:
            zone = s.get(IgnoreZone, zone_id)
            if zone is not None:
                s.delete(zone)
            return zone

    # -- fleet edges ---------------------------------------------------------------------

    def beat(self, edge: str, cameras: list[dict], *, started_at: datetime | None = None) -> Edge:
        """An edge checks in: its row's last-seen time becomes the database's now, with the
        state of its cameras. ``started_at`` (its start) is given on the first beat of a run."""
        with self._tx() as s:
            now = _db_now(s)
            row = s.get(Edge, edge)
            if row is None:
                row = Edge(name=edge, started_at=started_at or now)
                s.add(row)
            elif started_at is not None:
                row.started_at = started_at
            row.last_seen, row.cameras = now, cameras
            s.flush()
            return row

    def edges(self) -> tuple[datetime, list[Edge]]:
        """The database's now and every edge that ever checked in, by name: an edge's age is
        ``now - last_seen`` on one clock."""
        with self._tx() as s:
            return _db_now(s), list(s.scalars(select(Edge).order_by(Edge.name)))

    def note_edge_changes(self, quiet_after: timedelta, *, gone: Callable[[Edge, datetime], str] | None,
                          back: Callable[[Edge, datetime], str]) -> tuple[list[str], list[str]]:
        """Edges silent for ``quiet_after`` that no one was told of, and edges told of that
        have beaten since: each is marked and its notice (``gone`` / ``back`` text, given the row and
        the database's now) queued to every chat, in one transaction. Two bots on the database
        tell it once: the rows are taken ``FOR UPDATE`` and changed only if still unmarked.
        ``gone`` None: returns only (the caller cannot judge silence now). Returns the names
        gone quiet and back."""
        with self._tx() as s:
            now = _db_now(s)
            returned_edges = (Edge.quiet_since.is_not(None)) & (Edge.last_seen > Edge.quiet_since)
            silent_edges = (Edge.quiet_since.is_(None)) & (Edge.last_seen < now - quiet_after)
            rows = s.scalars(select(Edge).where(returned_edges | silent_edges if gone else returned_edges)
                             .order_by(Edge.name).with_for_update()).all()
            went, returned = [], []
            for row in rows:
                if row.quiet_since is None and gone is not None:
                    self._queue_text(s, gone(row, now))
                    row.quiet_since = now
                    went.append(row.name)
                else:
                    self._queue_text(s, back(row, now))
                    row.quiet_since = None
                    returned.append(row.name)
            return went, returned

    def forget_edge(self, edge: str) -> bool:
        """Drop a retired edge from the fleet (a running one checks in again at its next beat),
        and clear its alerts still open: no process is left to continue or clear them."""
        with self._tx() as s:
            if not s.execute(delete(Edge).where(Edge.name == edge)).rowcount:
                return False
            now = utcnow()
            for alert in s.scalars(select(Alert).where(Alert.cleared_at.is_(None),
                                                       Alert.camera.startswith(f"{edge}/", autoescape=True))):
                alert.cleared_at = now
                if alert.status is AlertStatus.NEW:
                    alert.status = AlertStatus.CLEARED
                self._queue_edits(s, alert, DeliveryKind.ALERT_STATE)
            return True

    # -- retention ---------------------------------------------------------------------

    # -- snapshots kept in the database -------------------------------------------------

    def save_snapshot(self, data: bytes, content_type: str = "image/jpeg") -> str:
        """Keep an image where every process on this database can read it; returns the
        reference to record as the alert's snapshot path."""
        if len(data) > SNAPSHOT_MAX_BYTES:
            raise ValueError(f"snapshot of {len(data)} bytes is over the {SNAPSHOT_MAX_BYTES}-byte cap")
        with self._tx() as s:
            row = StoredSnapshot(data=data, content_type=content_type)
            s.add(row)
            s.flush()
            return f"{STORED_SNAPSHOT_PREFIX}{row.id}"

    def load_snapshot(self, ref: str) -> bytes | None:
        """The image behind a reference from ``save_snapshot``; None if purged or not one."""
        if not is_stored_snapshot(ref):
            return None
        key = ref.removeprefix(STORED_SNAPSHOT_PREFIX)
        if not key.isdigit():
            return None
        with self._tx() as s:
            return s.scalar(select(StoredSnapshot.data).where(StoredSnapshot.id == int(key)))

    def read_snapshot(self, ref: str | None) -> bytes | None:
        """An alert's snapshot, wherever its path says it is: in the database (an edge's, which
        the bot reads on another machine) or a file on this one; None if gone or unreadable."""
        if not ref:
            return None
        if is_stored_snapshot(ref):
            return self.load_snapshot(ref)
        try:
            return Path(ref).read_bytes()
        except OSError:
            return None

    def purge_before(self, cutoff: datetime) -> tuple[int, list[str]]:
        """Delete alerts (and their deliveries), camera events and snapshots kept in the
        database, older than ``cutoff``.

        Returns how many alerts went and their snapshot and clip files, for the caller to remove.
        The arm audit is never purged.
        """
        with self._tx() as s:
            old = s.execute(
                select(Alert.id, Alert.snapshot_path, Alert.clip_path).where(Alert.last_seen < cutoff)
            ).all()
            ids = [row.id for row in old]
            if ids:
                s.execute(delete(Delivery).where(Delivery.alert_id.in_(ids)))
                s.execute(delete(Alert).where(Alert.id.in_(ids)))
            s.execute(delete(CameraEvent).where(CameraEvent.at < cutoff))
            s.execute(delete(StoredSnapshot).where(StoredSnapshot.created_at < cutoff))
            s.execute(
                delete(Delivery).where(
                    Delivery.alert_id.is_(None),
                    Delivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.IN_DOUBT]),
                    Delivery.created_at < cutoff,
                )
            )
            return len(ids), [path for row in old for path in (row.snapshot_path, row.clip_path)
                              if path and not is_stored_snapshot(path)]


def _db_now(s: Session) -> datetime:
    """The database server's clock (SQLite: this machine's), the one every edge's age is
    measured on. SQLite's CURRENT_TIMESTAMP has whole seconds, enough for heartbeats."""
    if s.get_bind().dialect.name == "sqlite":
        return utcnow()
    return s.scalar(select(func.now(type_=UTCDateTime())))  # type: ignore[return-value]


def is_stored_snapshot(ref: str | None) -> bool:
    """Whether a snapshot path names an image in the database rather than a file."""
    return bool(ref) and ref.startswith(STORED_SNAPSHOT_PREFIX)  # type: ignore[union-attr]


def _earlier_unsettled(waiting_after: datetime | None = None) -> Exists:
    """An earlier delivery to the same recipient is still pending or being sent (and, with
    ``waiting_after``, not due before then): the condition that keeps a recipient's order."""
    earlier = aliased(Delivery)
    conditions = [
        earlier.channel == Delivery.channel,
        earlier.chat_id == Delivery.chat_id,
        earlier.id < Delivery.id,
        earlier.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
    ]
    if waiting_after is not None:
        conditions.append(earlier.next_attempt_at > waiting_after)
    return select(earlier.id).where(*conditions).exists()


def _one_of(column: ColumnElement, ids: Select, postgres: bool) -> ColumnElement[bool]:
    """``column IN (ids)``; on PostgreSQL as ``= ANY(ARRAY(ids))``, which runs ``ids`` once,
    before the rest, whatever the planner's statistics."""
    if postgres:
        return column == any_(func.array(ids.scalar_subquery()))
    return column.in_(ids)


def _of_channel(channel: str | None) -> list:
    """The condition that keeps one channel's deliveries (none: every channel's)."""
    return [] if channel is None else [Delivery.channel == channel]
