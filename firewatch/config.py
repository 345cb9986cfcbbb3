"""Settings from the environment and ``.env``, validated once at start.

Every key is ``FIREWATCH_<NAME>``; ``.env.example`` documents each with its default.
A bad value stops the program with one line naming the key (see :func:`load_settings`),
never with a traceback, and the bot token is a :class:`~pydantic.SecretStr` so that it
cannot leak through ``repr`` or validation messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from firewatch.paths import SHIPPED_CLASSIFIER, SHIPPED_DETECTOR
from vision.detectors.registry import DEFAULT_RUNTIME, RUNTIMES

DEFAULT_DATA_DIR = Path("data")


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FIREWATCH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # Telegram
    bot_token: SecretStr | None = None
    api_base_url: str = "https://api.telegram.org/bot"
    api_file_url: str = "https://api.telegram.org/file/bot"
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    alert_chat_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)

    # Camera
    camera_source: str = "0"
    camera_name: str = "camera"
    source_fps: float = Field(10.0, gt=0)

    # Storage
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    snapshot_dir: Path | None = None

    # Models
    detector_model: Path = SHIPPED_DETECTOR
    classifier_model: Path | None = SHIPPED_CLASSIFIER
    detector_runtime: str = DEFAULT_RUNTIME
    # One model thread: the pipeline's letterbox/decode/tracker threads use the other core
    # of a 2-core box (bench.pipeline: same FPS as 2 model threads, and the model's rate).
    inference_threads: int = Field(1, ge=1, le=64)
    trt_cache_dir: Path | None = None

    # Detection and confirmation
    detect_confidence: float = Field(0.25, gt=0, lt=1)
    nms_iou: float = Field(0.5, gt=0, lt=1)
    confirm_hits: int = Field(3, ge=1)
    confirm_window: int = Field(5, ge=1)
    clear_after_s: float = Field(30.0, gt=0)
    # The classifier vetoes a confirmed fire track whose crop has p(no-fire) >= this.
    veto_no_fire: float = Field(0.9, gt=0, le=1)

    # Arm / disarm
    face_match_threshold: float = Field(0.5, gt=0, le=1.0)
    rearm_after_h: float = Field(8.0, gt=0)
    lockout_failures: int = Field(5, ge=1)
    lockout_window_min: float = Field(10.0, gt=0)
    lockout_min: float = Field(15.0, gt=0)
    keep_face_photos: bool = False

    # Scheduled jobs
    retention_days: int = Field(30, ge=1)
    summary_hour: int = Field(8, ge=0, le=23)
    stall_after_s: float = Field(60.0, gt=0)

    log_level: str = "INFO"

    @field_validator("admin_ids", "alert_chat_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        # "123, -100456" from an env file reads more naturally than a JSON list.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("bot_token", "database_url", "snapshot_dir", "trt_cache_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("detector_model", "classifier_model", mode="before")
    @classmethod
    def _empty_is_shipped_model(cls, value: object, info: ValidationInfo) -> object:
        # Empty means the model shipped in models/; "off" disables the optional classifier.
        if isinstance(value, str):
            if not value.strip():
                return cls.model_fields[info.field_name].default
            if value.strip().lower() == "off" and info.field_name == "classifier_model":
                return None
        return value

    @field_validator("detector_runtime")
    @classmethod
    def _known_runtime(cls, value: str) -> str:
        if value not in RUNTIMES:
            raise ValueError(f"must be one of {', '.join(sorted(RUNTIMES))}")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _window_holds_hits(self) -> Settings:
        if self.confirm_hits > self.confirm_window:
            raise ValueError(
                f"FIREWATCH_CONFIRM_HITS ({self.confirm_hits}) must not exceed "
                f"FIREWATCH_CONFIRM_WINDOW ({self.confirm_window})"
            )
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'firewatch.db'}"

    @property
    def snapshots(self) -> Path:
        return self.snapshot_dir or self.data_dir / "snapshots"

    @property
    def trt_cache(self) -> Path:
        return self.trt_cache_dir or self.data_dir / "trt-cache"

    @property
    def token(self) -> str | None:
        return self.bot_token.get_secret_value() if self.bot_token else None


def load_settings(env_file: Path | str | None = ".env", **overrides: object) -> Settings:
    """Build the settings or raise :class:`ConfigError` with a one-line reason.

    Only the first problem is reported: one clear line is more useful to someone
    editing a ``.env`` file than a wall of pydantic output.
    """
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        msg = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            msg = f"FIREWATCH_{str(error['loc'][0]).upper()}: {msg}"
        raise ConfigError(msg) from None
