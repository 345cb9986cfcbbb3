"""The schema. Times are stored as timezone-aware UTC datetimes."""

from __future__ import annotations

import enum
from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    JSON,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    text as sql_text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database.

    PostgreSQL keeps the instant (``timestamptz``) and hands it back in the session's zone;
    SQLite has no zones, so it is given UTC wall time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware times")
        utc = value.astimezone(timezone.utc)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Store the readable value ("false-alarm"), not the Python member name, and use a
    # CHECK constraint rather than a native enum so migrations stay portable.
    return Enum(cls, name=name, native_enum=False, validate_strings=True,
                values_callable=lambda e: [m.value for m in e], length=24)


class Role(str, enum.Enum):
    ADMIN = "admin"
    OPERATOR = "operator"


class AlertStatus(str, enum.Enum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    FALSE_ALARM = "false-alarm"
    CLEARED = "cleared"


class DeliveryStatus(str, enum.Enum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by the sender; a crash leaves it here (see Store.recover)
    SENT = "sent"
    FAILED = "failed"  # gave up after the last attempt
    # Sent twice without an answer in time (a timeout after the upload, or a crash mid-send):
    # it may well have arrived, so it is not sent a third time (see bot/outbox.py).
    IN_DOUBT = "in-doubt"


class DeliveryKind(str, enum.Enum):
    """What a delivery tells its recipient. How it is told is its channel's business (for
    Telegram: a photo, then edits of that message, in bot/outbox.py)."""

    ALERT = "alert"  # a new alert: the message that carries it to this recipient
    ALERT_SNAPSHOT = "alert-snapshot"  # the alert has a new snapshot to show (it grew), and its state
    ALERT_STATE = "alert-state"  # the alert's state changed (cleared, a button pressed)
    ALERT_CLIP = "alert-clip"  # the alert's onset clip is ready: it replaces the photo
    TEXT = "text"  # a plain message (health, summary, lockouts)


# The channel of the chats table's recipients (Telegram chats). A channel with recipients
# of its own (MQTT, ...) names itself in ``Delivery.channel``.
CHAT_CHANNEL = "telegram"


class Operator(Base):
    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.OPERATOR)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    templates: Mapped[list[FaceTemplate]] = relationship(
        back_populates="operator", cascade="all, delete-orphan"
    )


class FaceTemplate(Base):
    __tablename__ = "face_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    encoding: Mapped[bytes] = mapped_column(LargeBinary)  # 128 float64, little-endian
    photo_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    operator: Mapped[Operator] = relationship(back_populates="templates")


class Chat(Base):
    """A chat that receives alerts (operators' private chats and configured groups)."""

    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    title: Mapped[str] = mapped_column(String(256), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ArmState(Base):
    """The system's current arm state: a single row (id 1)."""

    __tablename__ = "arm_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    armed: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_by: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rearm_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ArmAudit(Base):
    """Every arm/disarm attempt, successful or not. Append-only (a trigger enforces it)."""

    __tablename__ = "arm_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(16))  # arm | disarm
    method: Mapped[str] = mapped_column(String(16))  # selfie | cli | auto
    success: Mapped[bool] = mapped_column(Boolean)
    face_distance: Mapped[float | None] = mapped_column(Float, nullable=True)
    photo_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    camera: Mapped[str] = mapped_column(String(128))
    track_id: Mapped[int] = mapped_column(Integer)
    class_name: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str | None] = mapped_column(String(16), nullable=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    peak_confidence: Mapped[float] = mapped_column(Float)
    peak_area: Mapped[float] = mapped_column(Float)  # fraction of the frame
    snapshot_path: Mapped[str | None] = mapped_column(String(512), nullable=True)
    status: Mapped[AlertStatus] = mapped_column(_enum(AlertStatus, "alert_status"), default=AlertStatus.NEW)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acted_by: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    acted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    pushed: Mapped[bool] = mapped_column(Boolean, default=True)  # False: recorded while disarmed
    # The fire's latest box as fractions of the frame (x1, y1, x2, y2): the area that
    # "Ignore this area" turns into a zone.
    box: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    # Why the fire was confirmed: the temporal verdict (verified, score, reason, features).
    verification: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # A short MP4 of the fire's onset (vision.clips), once cut: it replaces the alert's photo.
    clip_path: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # Who raised it, unique: "<edge>/<camera>/<uuid>". An edge's spooled alert replayed twice
    # (a crash mid-replay) finds itself here instead of becoming a second alert.
    key: Mapped[str | None] = mapped_column(String(255), nullable=True)

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="alert")

    __table_args__ = (
        Index("ix_alerts_camera_track", "camera", "track_id"),
        Index("uq_alerts_key", "key", unique=True),
    )

    @property
    def kind(self) -> str:
        """Class and severity in one phrase: "starting fire", "fire", "smoke"."""
        # A fire's severity is "start-fire" or "fire": said beside the class it repeated it.
        return "starting fire" if self.severity == "start-fire" else self.class_name


class Delivery(Base):
    """The outbox: one row per message to send (or update) to one recipient of one channel."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), nullable=True, index=True
    )
    channel: Mapped[str] = mapped_column(String(16), default=CHAT_CHANNEL, server_default=CHAT_CHANNEL)
    chat_id: Mapped[int] = mapped_column(BigInteger)  # the recipient, in its channel's ids
    kind: Mapped[DeliveryKind] = mapped_column(_enum(DeliveryKind, "delivery_kind"))
    text: Mapped[str] = mapped_column(Text, default="")  # body for TEXT deliveries
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # An attempt may have reached the recipient unseen (timed out after the upload, or a
    # crash mid-send): the one more try it is allowed has been spent or is pending.
    in_doubt: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sql_text("false"))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # the channel's id of what was sent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A notice's name (an edge's spooled write): replayed twice, it is queued once per chat.
    notice_key: Mapped[str | None] = mapped_column(String(255), nullable=True)

    alert: Mapped[Alert | None] = relationship(back_populates="deliveries")

    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        # Claiming a delivery asks whether its recipient has an earlier one unsettled: found
        # here without reading the recipient's history of sent messages.
        Index("ix_deliveries_recipient_status", "channel", "chat_id", "status", "id"),
        # The message that carries an alert goes to each recipient exactly once, whatever
        # retries or restarts happen; updates may repeat.
        Index(
            "uq_deliveries_first_message",
            "channel",
            "alert_id",
            "chat_id",
            unique=True,
            sqlite_where=sql_text("kind = 'alert'"),
            postgresql_where=sql_text("kind = 'alert'"),
        ),
        Index("uq_deliveries_notice", "notice_key", "chat_id", unique=True),
    )


class CameraEvent(Base):
    __tablename__ = "camera_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    camera: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # lost | back | frozen | black
    detail: Mapped[str] = mapped_column(Text, default="")
    # Unique, like an alert's: an edge's spooled event replayed twice is stored once.
    key: Mapped[str | None] = mapped_column(String(255), nullable=True)

    __table_args__ = (Index("uq_camera_events_key", "key", unique=True),)


class IgnoreZone(Base):
    """A place in one camera's view where detections are dropped, added by an operator
    ("Ignore this area" on a false alarm); zones from the configuration file are not stored."""

    __tablename__ = "ignore_zones"

    id: Mapped[int] = mapped_column(primary_key=True)
    camera: Mapped[str] = mapped_column(String(128), index=True)
    # [[x, y], ...] as fractions of the frame's width and height.
    points: Mapped[list[list[float]]] = mapped_column(JSON)
    alert_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the false alarm it came from
    created_by: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Snooze(Base):
    """A camera whose pushes are silenced until a time (the Snooze button)."""

    __tablename__ = "snoozes"

    camera: Mapped[str] = mapped_column(String(128), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    by_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, default=utcnow)
    # The alert whose button started it: its messages show the snooze and its end.
    alert_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AlertActionKind(str, enum.Enum):
    """What someone did about an alert; kept as a history so that no press hides another."""

    ACKNOWLEDGED = "acknowledged"
    FALSE_ALARM = "false-alarm"
    REAL_FIRE = "real-fire"  # a false alarm taken back
    SNOOZED = "snoozed"
    SNOOZE_ENDED = "snooze-ended"


class AlertAction(Base):
    """One action on an alert: who (None: the system), what, when."""

    __tablename__ = "alert_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # A plain string, not a CHECK-constrained enum: new actions need no migration.
    action: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(Text, default="")


# A snapshot kept in the database is named in ``Alert.snapshot_path`` as "db:snapshot/<id>":
# every process on the database (a fleet's bot, another edge) can read it, unlike a file.
STORED_SNAPSHOT_PREFIX = "db:snapshot/"
# Alert images are JPEGs of a few hundred kB; the cap keeps one bad frame from bloating
# every backup. The database enforces it too.
SNAPSHOT_MAX_BYTES = 4 * 1024 * 1024


class StoredSnapshot(Base):
    """An alert image held in the database (``Store.save_snapshot``), not in a file."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    content_type: Mapped[str] = mapped_column(String(32), default="image/jpeg")
    data: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (CheckConstraint(f"length(data) <= {SNAPSHOT_MAX_BYTES}", name="ck_snapshots_size"),)


class Edge(Base):
    """An edge daemon of a fleet (``firewatch run --role edge``) and its latest heartbeat.

    Times are the database's clock, not the edges': a box whose clock drifts still reads as
    seen when it beats.
    """

    __tablename__ = "edges"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # its site, prefix of its cameras
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Each camera at the last beat: {"camera", "health", "running", "fps", "frames", "open_alerts"}.
    cameras: Mapped[list[dict]] = mapped_column(JSON, default=list)
    # When operators were told that it went quiet; None while it beats (or once told it is back).
    quiet_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
