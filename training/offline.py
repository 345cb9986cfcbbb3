"""Keep ultralytics off the network.

Ultralytics reaches for the internet in several places (DNS probe on import, font
download for plots, auto pip installs, settings sync, AMP check weights). This
machine has no internet, and a daemon-side tool must never depend on it, so every
entry point that imports ultralytics calls :func:`prepare` first.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from firewatch.paths import REPO_ROOT

PROJECT_ROOT = REPO_ROOT

_SETTINGS_OFF = (
    "sync",
    "clearml",
    "comet",
    "dvc",
    "hub",
    "mlflow",
    "neptune",
    "raytune",
    "tensorboard",
    "wandb",
)


def _local_font() -> Path | None:
    """A TTF that ships with matplotlib, used in place of the Arial ultralytics downloads."""
    try:
        import matplotlib

        font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return font if font.is_file() else None
    except ImportError:  # pragma: no cover - matplotlib comes with the train extra
        return None


def _not_settings_banner(record: logging.LogRecord) -> bool:
    # Ultralytics announces its settings file, with how to edit it, to whoever ran the
    # command: ours are set in code (prepare), so the banner only misleads.
    return not str(record.msg).startswith("Creating new Ultralytics Settings")


def default_config_dir() -> Path:
    """Ultralytics' settings and fonts: a per-user cache, so that no command leaves a
    ``.ultralytics/`` folder in the directory it runs in."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "firewatch" / "ultralytics"


def prepare(config_dir: Path | None = None) -> Path:
    """Set the environment so that a later ``import ultralytics`` stays offline.

    Must run before ultralytics is imported. Returns the ultralytics config dir.
    """
    config_dir = Path(config_dir or os.environ.get("YOLO_CONFIG_DIR") or default_config_dir())
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ.setdefault("YOLO_VERBOSE", "true")
    # Its logger is configured at import, but a filter set on it beforehand stays.
    logging.getLogger("ultralytics").addFilter(_not_settings_banner)

    from ultralytics.utils import SETTINGS, USER_CONFIG_DIR

    # check_font() downloads Arial.ttf from GitHub whenever a dataset is plotted;
    # YOLO_OFFLINE does not stop it, a file already in place does. USER_CONFIG_DIR is
    # where it looks: our config_dir, unless ultralytics was imported before this call.
    font = _local_font()
    if font is not None:
        USER_CONFIG_DIR.mkdir(parents=True, exist_ok=True)
        for name in ("Arial.ttf", "Arial.Unicode.ttf"):
            target = USER_CONFIG_DIR / name
            if not target.exists():
                shutil.copyfile(font, target)

    SETTINGS.update({key: False for key in _SETTINGS_OFF if key in SETTINGS})
    _keep_label_caches_in_project()
    return config_dir


def _keep_label_caches_in_project() -> None:
    """Write ultralytics' label caches only inside this project.

    It saves ``labels/<split>.cache`` beside a dataset's labels whenever that folder looks
    writable, and as root a read-only shared dataset does. A cache only saves a rescan of
    the labels (seconds), so a dataset outside the project is left as it was.
    """
    from ultralytics.data import dataset

    save = dataset.save_dataset_cache_file
    if getattr(save, "keeps_to_project", False):
        return

    def save_inside_project(prefix: str, path: Path, x: dict, version: str) -> None:
        if Path(path).resolve().is_relative_to(PROJECT_ROOT.resolve()):
            save(prefix, path, x, version)
        else:
            x["version"] = version  # the caller reads it back from x, saved or not

    save_inside_project.keeps_to_project = True  # type: ignore[attr-defined]
    dataset.save_dataset_cache_file = save_inside_project
