"""Settings from the environment, ``.env`` and a configuration file, validated once at start.

Every key is ``FIREWATCH_<NAME>``; ``.env.example`` documents each with its default. The
configuration file (YAML or TOML: ``FIREWATCH_CONFIG``, else ``./firewatch.yaml`` or
``./firewatch.toml`` when present) takes the same keys in lower case without the prefix,
plus ``cameras`` (``firewatch.cameras``); the environment and ``.env`` win over it.
A bad value stops the program with one line naming the key (see :func:`load_settings`),
never with a traceback, and the bot token is a :class:`~pydantic.SecretStr` so that it
cannot leak through ``repr`` or validation messages.
"""

from __future__ import annotations

import contextvars
import os
import re
import socket
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from dotenv import dotenv_values

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from firewatch.cameras import CameraConfig

from firewatch.paths import (
    SHIPPED_CLASSIFIER,
    SHIPPED_CLASSIFIERS,
    SHIPPED_DETECTOR,
    SHIPPED_DETECTORS,
    SHIPPED_VERIFICATION,
)
from vision.detectors.registry import DEFAULT_RUNTIME, RUNTIMES

DEFAULT_DATA_DIR = Path("data")
# The detector's threshold when none is set, with and without temporal verification: lower with
# it on, which holds back the fire-like things a lower threshold lets in (firewatch bench video
# --conf and --stills: README, "How a fire is confirmed"); K-of-N alone needs a higher one. Each
# shipped detector has its own pair, chosen on its val images and clips (models/README.md); a
# detector file of one's own gets the defaults.
VERIFIED_DETECT_CONFIDENCE = 0.2
PLAIN_DETECT_CONFIDENCE = 0.25
OPERATING_POINTS: dict[str, tuple[float, float]] = {
    "v2": (0.15, 0.3),
    "v1": (VERIFIED_DETECT_CONFIDENCE, PLAIN_DETECT_CONFIDENCE),
}
DEFAULT_CONFIG_FILES = (Path("firewatch.yaml"), Path("firewatch.yml"), Path("firewatch.toml"))
# The file that load_settings chose, for the settings source (pydantic-settings builds its
# sources in a classmethod that sees no per-call argument).
_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("config_file", default=None)


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
    # From the configuration file; empty: the one camera above.
    cameras: list[CameraConfig] = Field(default_factory=list)
    # The configuration file (read by find_config_file before the other settings).
    config: Path | None = None

    # Storage
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    snapshot_dir: Path | None = None
    # With a server database: alerts written while it is away wait in <data_dir>/spool.db and
    # are replayed this often until it answers (storage/spool.py).
    spool_retry_s: float = Field(5.0, gt=0)

    # MQTT: off unless a broker is given (mqtt://[user:password@]host[:port], mqtts:// for TLS)
    mqtt_url: SecretStr | None = None
    mqtt_topic_prefix: str = "firewatch"
    mqtt_discovery_prefix: str = "homeassistant"
    # Arm and disarm from MQTT (Home Assistant's switch): off unless wanted, as anyone who may
    # publish to the broker can then disarm; each change is audited (method "mqtt").
    mqtt_arming: bool = False

    # Models. The detector: a shipped one by name (SHIPPED_DETECTORS: "v2", the default, or
    # "v1") or an ONNX file; the classifier likewise (SHIPPED_CLASSIFIERS), or "off".
    detector_model: Path = SHIPPED_DETECTOR
    classifier_model: Path | None = SHIPPED_CLASSIFIER
    detector_runtime: str = DEFAULT_RUNTIME
    # One model thread: the pipeline's letterbox/decode/tracker threads use the other core
    # of a 2-core box (bench.pipeline: same FPS as 2 model threads, and the model's rate).
    inference_threads: int = Field(1, ge=1, le=64)
    trt_cache_dir: Path | None = None
    # Tiles for small, distant fires: on frames where the whole frame shows a box, the
    # detector also runs on a grid of tiles × tiles overlapping windows
    # (vision/detectors/tiles.py), tiles² more model calls. 1: the whole frame only.
    # A camera's own `tiles` key overrides it.
    detector_tiles: int = Field(1, ge=1, le=4)

    # Detection and confirmation. Unset or empty: the detector's operating point
    # (OPERATING_POINTS), with verification on or off.
    detect_confidence: float | None = Field(None, gt=0, lt=1)
    nms_iou: float = Field(0.5, gt=0, lt=1)
    confirm_hits: int = Field(3, ge=1)
    confirm_window: int = Field(5, ge=1)
    clear_after_s: float = Field(30.0, gt=0)
    # The classifier vetoes a confirmed fire track whose crop has p(no-fire) >= this.
    veto_no_fire: float = Field(0.9, gt=0, le=1)
    # Temporal verification: a confirmed track alerts only once it moves like fire
    # (flicker, changing outline, motion inside the box); a still picture of a fire does not.
    verify: bool = True
    # Unset: the one fitted on the shipped detector chosen above (v2's for a file of one's own).
    verification_model: Path = SHIPPED_VERIFICATION
    # Onset clip: once a fire has been in view this long, its alert's photo is replaced by a
    # short MP4 of its start (from a few seconds before). The photo never waits for it.
    alert_clip: bool = True
    alert_clip_after_s: float = Field(5.0, gt=0, le=30)

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

    # Fleet (docs/fleet.md): "all" is one box; "edge" watches cameras and records alerts,
    # "bot" talks to Telegram, for several edges and one bot on one PostgreSQL database.
    role: Literal["all", "edge", "bot"] = "all"
    # An edge's name, its site: cameras are "site/camera" (default: the host name).
    edge_name: str | None = None
    # An edge writes its heartbeat this often; the bot tells operators of an edge silent longer
    # than edge_quiet_after_s (and once when it is back).
    heartbeat_s: float = Field(10.0, gt=0)
    edge_quiet_after_s: float = Field(60.0, gt=0)

    log_level: str = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_file.get()
        if path is None:
            return init_settings, env_settings, dotenv_settings, file_secret_settings
        file_source = (TomlConfigSettingsSource(settings_cls, toml_file=path) if path.suffix == ".toml"
                       else YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return init_settings, env_settings, dotenv_settings, file_source, file_secret_settings

    @field_validator("admin_ids", "alert_chat_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        # "123, -100456" from an env file reads more naturally than a JSON list.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("bot_token", "database_url", "snapshot_dir", "trt_cache_dir", "config", "mqtt_url",
                     "detect_confidence", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("detector_model", "classifier_model", "verification_model", mode="before")
    @classmethod
    def _empty_is_shipped_model(cls, value: object, info: ValidationInfo) -> object:
        # Empty means the model shipped in models/; "off" disables the optional classifier.
        if isinstance(value, str):
            if not value.strip():
                return cls.model_fields[info.field_name].default
            if value.strip().lower() == "off" and info.field_name == "classifier_model":
                return None
            if info.field_name == "detector_model" and value.strip().lower() in SHIPPED_DETECTORS:
                return SHIPPED_DETECTORS[value.strip().lower()][0]
            if info.field_name == "classifier_model" and value.strip().lower() in SHIPPED_CLASSIFIERS:
                return SHIPPED_CLASSIFIERS[value.strip().lower()]
        return value

    def shipped_detector(self) -> str | None:
        """The name of the shipped detector in use (a key of SHIPPED_DETECTORS), named or by path;
        None for a detector file of one's own."""
        for name, (detector, _) in SHIPPED_DETECTORS.items():
            if self.detector_model.resolve() == detector:
                return name
        return None

    @model_validator(mode="after")
    def _verification_follows_detector(self) -> Settings:
        # The shipped verification (unset or empty) follows a shipped detector.
        name = self.shipped_detector()
        if self.verification_model == SHIPPED_VERIFICATION and name is not None:
            self.verification_model = SHIPPED_DETECTORS[name][1]
        return self

    @field_validator("mqtt_url")
    @classmethod
    def _broker_url(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never repeats the URL: it may hold the broker's password.
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
                raise ValueError("must look like mqtt://[user:password@]host[:port] (or mqtts://)")
        return value

    @field_validator("mqtt_topic_prefix", "mqtt_discovery_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        prefix = value.strip().strip("/")
        if not prefix or any(c in prefix for c in "+#"):
            raise ValueError("must be a non-empty MQTT topic without wildcards (+, #)")
        return prefix

    @field_validator("edge_name")
    @classmethod
    def _site_name(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,48}", value.strip()):
            raise ValueError("must be 1-48 letters, digits, '.', '_' or '-' (it prefixes camera names: site/camera)")
        return value.strip()

    @model_validator(mode="after")
    def _detect_confidence_follows_verification(self) -> Settings:
        if self.detect_confidence is None:
            name = self.shipped_detector()
            verified, plain = (OPERATING_POINTS[name] if name is not None
                               else (VERIFIED_DETECT_CONFIDENCE, PLAIN_DETECT_CONFIDENCE))
            self.detect_confidence = verified if self.verify else plain
        return self

    @model_validator(mode="after")
    def _heartbeat_within_quiet(self) -> Settings:
        if self.edge_quiet_after_s < 2 * self.heartbeat_s:
            raise ValueError(f"FIREWATCH_EDGE_QUIET_AFTER_S ({self.edge_quiet_after_s:g}) must be at least twice "
                             f"FIREWATCH_HEARTBEAT_S ({self.heartbeat_s:g}), or one late beat reports the edge gone")
        return self

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

    @field_validator("cameras")
    @classmethod
    def _unique_camera_names(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        # A field check, not a model one: its error then names the file and the key.
        names = [camera.name for camera in cameras]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"camera names must be unique: {', '.join(twice)} given twice")
        return cameras

    @property
    def camera_configs(self) -> list[CameraConfig]:
        """The cameras to watch: the file's, or the one from ``FIREWATCH_CAMERA_*``. A camera
        without ``fps`` runs at ``FIREWATCH_SOURCE_FPS``: the verification counts its window in
        frames (15 = 1.5 s at 10 FPS), so a 30 FPS feed must not be judged over half a second."""
        cameras = [camera if camera.fps else camera.model_copy(update={"fps": self.source_fps})
                   for camera in self.cameras] or [CameraConfig(name=self.camera_name.strip() or "camera",
                                                                source=self.camera_source, fps=self.source_fps)]
        if self.role != "edge":
            return cameras
        # An edge shares the database with others: its cameras are named for where they are.
        return [camera.model_copy(update={"name": f"{self.site}/{camera.name}"}) for camera in cameras]

    @property
    def site(self) -> str:
        """This edge's name: ``FIREWATCH_EDGE_NAME``, else the host name."""
        return self.edge_name or re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()) or "edge"

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

    @property
    def mqtt(self) -> str | None:
        return self.mqtt_url.get_secret_value() if self.mqtt_url else None


def load_settings(env_file: Path | str | None = ".env", config_file: Path | str | None = None,
                  **overrides: object) -> Settings:
    """Build the settings or raise :class:`ConfigError` with a one-line reason.

    Only the first problem is reported: one clear line is more useful to someone
    editing a ``.env`` file than a wall of pydantic output. A problem in the configuration
    file is reported with the file's name and the key's path in it.
    """
    path = find_config_file(env_file, config_file)
    file_keys = set(read_config_file(path)) if path is not None else set()
    token = _config_file.set(path)
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        # A misspelt key also makes the key it meant "required": the typo is the one to name.
        error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        msg = "unknown key" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
        loc = error["loc"]
        if loc and path is not None and loc[0] in file_keys and not _in_environment(str(loc[0]), env_file):
            msg = f"{path}: {_dotted(loc)}: {msg}"
        elif loc:
            msg = f"FIREWATCH_{str(loc[0]).upper()}: {msg}"
        raise ConfigError(msg) from None
    finally:
        _config_file.reset(token)


def find_config_file(env_file: Path | str | None = ".env", config_file: Path | str | None = None) -> Path | None:
    """``config_file``, else ``FIREWATCH_CONFIG`` (environment, then ``.env``), else the first
    of ``firewatch.yaml``, ``firewatch.yml``, ``firewatch.toml`` here; None when there is none."""
    named = config_file or os.environ.get("FIREWATCH_CONFIG") or _dotenv(env_file).get("FIREWATCH_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"FIREWATCH_CONFIG: no such file: {path}")
        return path
    return next((path for path in DEFAULT_CONFIG_FILES if path.is_file()), None)


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's top-level mapping; ConfigError (one line) if it does not parse or names a
    key that is not a setting, so that a typo is not silently ignored."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except (yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: "
                          f"{_one_line(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected keys and values at the top, found {type(data).__name__}")
    unknown = sorted(str(key) for key in data if key not in Settings.model_fields)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (keys are the FIREWATCH_ settings in "
                          "lower case without the prefix, and cameras)")
    return data


def _dotenv(env_file: Path | str | None) -> dict[str, str | None]:
    return dotenv_values(env_file) if env_file is not None and Path(env_file).is_file() else {}


def _in_environment(key: str, env_file: Path | str | None) -> bool:
    name = f"FIREWATCH_{key.upper()}"
    return name in os.environ or name in _dotenv(env_file)


def _dotted(loc: tuple[int | str, ...]) -> str:
    """('cameras', 0, 'source') -> 'cameras[0].source'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
