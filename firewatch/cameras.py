"""The cameras of the configuration file: each with its source, frame-rate cap, ignore zones
and the detection settings it overrides (Frigate's ``cameras:`` is the model).

Without a file, or a file without ``cameras``, the one camera of
``FIREWATCH_CAMERA_SOURCE`` / ``FIREWATCH_CAMERA_NAME`` is watched.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vision.zones import Zone


class ZoneConfig(BaseModel):
    """An ignore zone: a polygon of (x, y) points as fractions (0-1) of the frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    points: list[tuple[float, float]] = Field(min_length=3)

    @field_validator("points")
    @classmethod
    def _normalised(cls, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for x, y in points:
            if not (0 <= x <= 1 and 0 <= y <= 1):
                raise ValueError(f"point ({x}, {y}) is outside 0-1 (fractions of the frame)")
        return points

    def to_zone(self) -> Zone:
        return Zone(self.name, tuple(self.points))


class CameraConfig(BaseModel):
    """One camera. The detection keys left out take the global setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    source: str = Field(min_length=1)
    # Live sources: at most this many frames a second are analysed; files: one frame in
    # round(file_fps / fps); image folders: played at this rate. None: FIREWATCH_SOURCE_FPS.
    fps: float | None = Field(None, gt=0)
    zones: list[ZoneConfig] = Field(default_factory=list)
    detect_confidence: float | None = Field(None, gt=0, lt=1)
    confirm_hits: int | None = Field(None, ge=1)
    confirm_window: int | None = Field(None, ge=1)
    tiles: int | None = Field(None, ge=1, le=4)

    @field_validator("source", mode="before")
    @classmethod
    def _index_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value  # `source: 0` is a camera index

    @model_validator(mode="after")
    def _window_holds_hits(self) -> CameraConfig:
        if self.confirm_hits and self.confirm_window and self.confirm_hits > self.confirm_window:
            raise ValueError(f"confirm_hits ({self.confirm_hits}) must not exceed confirm_window "
                             f"({self.confirm_window})")
        return self

    def zone_values(self) -> tuple[Zone, ...]:
        return tuple(zone.to_zone() for zone in self.zones)
