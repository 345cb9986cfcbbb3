"""The ``firewatch`` command line.

Each command loads the settings itself, so that ``firewatch --help`` works on a
machine with no configuration at all, and a bad setting is reported as one line.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import click

from bot.periods import parse_period
from bot.redaction import redact, url_password
from firewatch import __version__
from firewatch.config import ConfigError, Settings, load_settings
from firewatch.data_dir import ensure_data_dir
from firewatch.extras import install_hint, require
from firewatch.logging_setup import setup_logging
from vision.sources import SourceError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("firewatch")


def _settings(**overrides: object) -> Settings:
    from firewatch.unknown_keys import check_keys

    settings = load_settings(**overrides)
    setup_logging(settings.log_level,
                  secrets=[settings.token, url_password(settings.db_url), url_password(settings.mqtt)])
    for line in check_keys():
        click.echo(f"warning: {line}", err=True)
    return settings


def _friendly_errors(func: F) -> F:
    """Turn expected failures into one clear line and a non-zero exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise click.ClickException(f"configuration error: {exc}") from None
        except ModuleNotFoundError as exc:
            raise click.ClickException(install_hint(exc.name or "")) from None
        except (LookupError, ValueError, FileNotFoundError, SourceError) as exc:
            raise click.ClickException(redact(str(exc))) from None

    return wrapper  # type: ignore[return-value]


def _store(settings: Settings):  # type: ignore[no-untyped-def]
    from storage import Store, upgrade

    ensure_data_dir(settings)
    upgrade(settings.db_url)
    return Store(settings.db_url)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="firewatch")
def main() -> None:
    """firewatch: fire and smoke alerts from a camera, pushed to Telegram."""


@main.command()
@click.option("--role", type=click.Choice(["all", "edge", "bot"]), default=None,
              help="all: one box (default, or FIREWATCH_ROLE); edge: cameras only, alerts recorded in the "
                   "shared database; bot: Telegram only, for a fleet of edges (docs/fleet.md).")
@_friendly_errors
def run(role: str | None) -> None:
    """Run the daemon: camera -> detector -> alerts -> Telegram, until SIGTERM/Ctrl-C."""
    from firewatch.daemon import run_daemon

    settings = _settings()
    if role is not None:
        settings = settings.model_copy(update={"role": role})
    ensure_data_dir(settings)
    sys.exit(run_daemon(settings))


@main.command()
@_friendly_errors
def info() -> None:
    """Print the resolved settings (environment, .env, defaults); secrets are masked."""
    from firewatch.info import settings_report

    click.echo(settings_report(_settings()))


# -- database ----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@_friendly_errors
def db_upgrade() -> None:
    """Apply the database migrations up to the latest schema."""
    from storage.db import current_revision, upgrade

    settings = _settings()
    upgrade(settings.db_url)
    click.echo(f"database at revision {current_revision(settings.db_url)}")


# -- fleet --------------------------------------------------------------------------------


@main.group(invoke_without_command=True)
@click.pass_context
@_friendly_errors
def edges(ctx: click.Context) -> None:
    """The edges of a fleet that checked in, and how long ago (docs/fleet.md)."""
    if ctx.invoked_subcommand is not None:
        return
    store = _store(_settings())
    now, rows = store.edges()
    if not rows:
        click.echo("no edge has checked in")
    for edge in rows:
        cameras = ", ".join(str(state.get("camera")) for state in edge.cameras) or "no camera"
        quiet = "  (reported silent)" if edge.quiet_since is not None else ""
        click.echo(f"{edge.name:<20} checked in {(now - edge.last_seen).total_seconds():.0f} s ago  {cameras}{quiet}")


@edges.command("forget")
@click.argument("name")
@_friendly_errors
def edges_forget(name: str) -> None:
    """Drop a retired edge, so that /status no longer names it; its open alerts are cleared."""
    if not _store(_settings()).forget_edge(name):
        raise LookupError(f"no edge named {name!r}")
    click.echo(f"edge {name} forgotten")


# -- operators ----------------------------------------------------------------------------


@main.group()
def operators() -> None:
    """Manage the people allowed to use the bot."""


@operators.command("add")
@click.option("--user-id", type=int, required=True, help="Telegram user id.")
@click.option("--name", required=True)
@click.option("--admin", is_flag=True, help="Give the admin role.")
@_friendly_errors
def operators_add(user_id: int, name: str, admin: bool) -> None:
    """Add (or reactivate) an operator; alerts go to their private chat."""
    from storage.models import Role

    store = _store(_settings())
    op = store.add_operator(user_id, name, Role.ADMIN if admin else Role.OPERATOR)
    store.add_chat(user_id, title=name)  # a private chat's id is the user's id
    click.echo(f"operator {op.name} ({op.telegram_user_id}, {op.role.value}) added")


@operators.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Include removed operators.")
@_friendly_errors
def operators_list(include_inactive: bool) -> None:
    """List operators and how many face templates each has."""
    store = _store(_settings())
    ops = store.list_operators(include_inactive=include_inactive)
    if not ops:
        click.echo("no operators")
    for op in ops:
        faces = len(store.face_templates(op.telegram_user_id))
        click.echo(f"{op.telegram_user_id:>12}  {op.role.value:<8}  faces={faces}  {op.name}")


@operators.command("remove")
@click.option("--user-id", type=int, required=True)
@_friendly_errors
def operators_remove(user_id: int) -> None:
    """Remove an operator and their face templates (the audit keeps their id)."""
    store = _store(_settings())
    if not store.remove_operator(user_id):
        raise LookupError(f"no operator with user id {user_id}")
    store.remove_chat(user_id)
    click.echo(f"operator {user_id} removed")


# -- history ------------------------------------------------------------------------------


@main.command()
@click.option("-n", "--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--since", type=str, default=None, help="Only the last period, e.g. 24h or 7d.")
@click.option("--class", "class_name", type=click.Choice(["fire", "smoke"]), default=None)
@_friendly_errors
def history(limit: int, since: str | None, class_name: str | None) -> None:
    """Print recent alerts, newest first."""
    store = _store(_settings())
    cutoff = datetime.now(timezone.utc) - parse_period(since) if since else None
    alerts, total = store.recent_alerts(limit=limit, since=cutoff, class_name=class_name)
    if not alerts:
        click.echo("no alerts")
        return
    click.echo(f"{'id':<6} {'first seen':<23}  {'camera':<12} {'kind':<13} confidence area status")
    for a in alerts:
        seen = a.first_seen.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        click.echo(
            f"#{a.id:<5} {seen:<23}  {a.camera:<12} {a.kind:<13} "
            f"conf={a.peak_confidence:.2f} area={a.peak_area:.1%} {a.status.value}"
            + ("" if a.pushed else " (not pushed)")
        )
    click.echo(f"{len(alerts)} of {total}")


# -- vision, models, training -----------------------------------------------------------


@main.command()
@click.argument("source")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Detector ONNX file.")
@click.option("--out-video", type=click.Path(path_type=Path), default=None)
@click.option("--events", type=click.Path(path_type=Path), default=None, help="JSON-lines output.")
@click.option("--snapshots", type=click.Path(path_type=Path), default=None)
@click.option("--fps", type=float, default=None,
              help="Frame rate of an image folder; a faster video file is read at this rate (every n-th "
                   "frame). Default: FIREWATCH_SOURCE_FPS, as the daemon.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@_friendly_errors
def detect(source: str, model: Path | None, out_video: Path | None, events: Path | None,
           snapshots: Path | None, fps: float | None, as_json: bool) -> None:
    """Run the detection pipeline on a video file, image folder or stream; a progress bar on a
    terminal, a summary at the end."""
    from firewatch.commands import detect_command

    detect_command(_settings(), source, model, out_video, events, snapshots, fps, as_json)


@main.command()
@click.option("--clip", type=click.Path(exists=True, dir_okay=True, path_type=Path), default=None,
              help="Play this video file or image folder instead of the synthetic flame.")
@_friendly_errors
def demo(clip: Path | None) -> None:
    """Try firewatch without a camera: play a short fire clip through the daemon's pipeline
    (bot off) and print the alerts it raised. Writes into DATA_DIR/demo."""
    from firewatch.demo import demo_command

    settings = _settings()
    if settings.log_level == "INFO":  # the demo prints its alerts; the log would repeat them
        logging.getLogger().setLevel(logging.WARNING)
    if not demo_command(settings, clip, ensure_data_dir(settings) / "demo"):
        sys.exit(1)


@main.command()
@click.option("--user-id", type=int, required=True, help="The operator's Telegram user id.")
@click.option("--name", required=True)
@click.option("--create", is_flag=True,
              help="Also add the user as an operator (who then receives alerts) if they are not one.")
@click.argument("photos", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_friendly_errors
def enroll(user_id: int, name: str, create: bool, photos: tuple[Path, ...]) -> None:
    """Enrol an operator's face from one or more photos (one face each)."""
    from firewatch.commands import enroll_command

    settings = _settings()
    ensure_data_dir(settings)
    if enroll_command(settings, user_id, name, photos, create=create):
        sys.exit(1)


@main.group()
def train() -> None:
    """Train the models (needs the `train` extra)."""


@train.command("detector")
@click.option("--data", type=click.Path(path_type=Path, exists=True), default=None,
              help="YOLO dataset folder (default: $FIREWATCH_DATA/fire).")
@click.option("--scale", type=click.Choice(["p", "n"]), default="p", show_default=True)
@click.option("--epochs", type=int, default=100, show_default=True)
@click.option("--resume", is_flag=True,
              help="Continue the run from its last.pt (or the committed training/checkpoints/ copy).")
@click.option("--until", type=int, default=None,
              help="Pause (resumable) once this many epochs are done, e.g. at the end of a session.")
@click.option("--schedule", type=int, default=None,
              help="With --resume: end the run after this many epochs in all "
                   "(moves the learning-rate decay and the mosaic-free tail).")
@click.option("--imgsz", type=int, default=320, show_default=True,
              help="Input size; a run at another size is kept apart as fire-detector-SCALE-IMGSZ.")
@click.option("--finetune-from", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="Start a new run from these weights (e.g. the committed 320 px checkpoint) "
                   "instead of from scratch.")
@click.option("--lr0", type=float, default=0.002, show_default=True,
              help="With --finetune-from: the restart's learning rate.")
@click.option("--export", "export_to", type=click.Path(path_type=Path), default=None,
              help="After training, export best.pt to this ONNX file.")
@_friendly_errors
def train_detector_cmd(data: Path | None, scale: str, epochs: int, resume: bool,
                       until: int | None, schedule: int | None, imgsz: int,
                       finetune_from: Path | None, lr0: float, export_to: Path | None) -> None:
    """Train the fire/smoke YOLO detector from scratch (resumable)."""
    from firewatch.paths import data_root

    require()
    from training.detector import CHECKPOINTS, export_detector, train_detector

    setup_logging("INFO")
    run = train_detector(data or data_root() / "fire", scale=scale, epochs=epochs, resume=resume,
                         checkpoint_dir=CHECKPOINTS, until=until, schedule=schedule,
                         imgsz=imgsz, finetune_from=finetune_from, lr0=lr0)
    if export_to:
        click.echo(f"exported {export_detector(run.best, export_to)}")


@train.command("classifier")
@click.option("--data", type=click.Path(path_type=Path, exists=True), default=None,
              help="Shared data folder (default: $FIREWATCH_DATA).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/classifier"), show_default=True)
@click.option("--models-dir", type=click.Path(path_type=Path), default=None,
              help="Write the ONNX files here (default: the shipped models/ folder).")
@click.option("--detector", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="Add this detector's fire boxes on train images as crops (the veto's hard "
                   "negatives; see models/fire-classifier.md). Off for the shipped model.")
@_friendly_errors
def train_classifier_cmd(data: Path | None, out: Path, models_dir: Path | None, detector: Path | None) -> None:
    """Train classifier v1, the small fire / start-fire / no-fire CNN (teacher, distilled
    student, pruned), into fire-classifier-v1.onnx. The shipped v2 (Lite0):
    python -m training.classifier_v2 (models/fire-classifier-v2.md)."""
    from firewatch.paths import data_root

    require()
    from training.classifier import train_all

    setup_logging("INFO")
    report = train_all(data or data_root(), out, models_dir=models_dir, detector=detector)
    click.echo(report)


@main.command()
@click.option("--data", type=click.Path(path_type=Path, exists=True), required=True,
              help="A YOLO folder (images/, labels/) or a data.yaml; its val split is used.")
@click.option("--model", type=click.Path(path_type=Path, exists=True), default=None,
              help="Detector ONNX file (default: the configured one).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the PR curve and confusion matrix PNGs (none without it).")
@_friendly_errors
def evaluate(data: Path, model: Path | None, json_path: Path | None, out_dir: Path | None) -> None:
    """Accuracy of the detector on a labelled folder: mAP, P/R/F1, image-level F1, false alarms.

    Also sweeps the threshold for image-level F1 and false alarms, with and without the
    fire classifier's veto (when the configured classifier model exists), and says where AP50
    is lost: AP at IoU 0.3, image-level fire AP, images with only small fires, AP per source."""
    require()
    from firewatch.progress import progress_bar
    from training.evaluate import evaluate as run_evaluation

    # The operating threshold is the one the daemon would use with this detector.
    settings = _settings(**({"detector_model": model} if model is not None else {}))
    # The threshold sweep is also shown after the classifier's veto, as the daemon applies it.
    classifier = settings.classifier_model
    with progress_bar("evaluate", unit="image") as bar:
        report = run_evaluation(data, settings.detector_model, conf=settings.detect_confidence,
                                nms_iou=settings.nms_iou, json_path=json_path, out_dir=out_dir,
                                classifier=classifier if classifier is not None and classifier.is_file() else None,
                                veto=settings.veto_no_fire, progress=bar, verbose=False,
                                tiles=settings.detector_tiles)
    click.echo(report.table())


BENCHMARKS = {
    "models": "bench.models_detector",
    "classifier": "bench.models_classifier",
    "pipeline": "bench.pipeline",
    "selfie": "bench.selfie_latency",
    "memory": "bench.memory",
    "bot": "bench.bot_mode",
    "operating-point": "bench.operating_point",
    "video": "bench.video",
    "cameras": "bench.cameras",
    "fleet": "bench.fleet",
    "outage": "bench.outage",
    "faces": "bench.face_templates",
}


# Everything after NAME, --help included, belongs to the benchmark's own argument parser.
@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("name", type=click.Choice(sorted(BENCHMARKS)))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(name: str, args: tuple[str, ...]) -> None:
    """Run a benchmark; arguments after NAME go to it (its options: firewatch bench NAME --help).

    \b
    models      detector variants: accuracy, latency at 1/2 threads, size, memory
    classifier  classifier variants: the same table
    pipeline    full pipeline vs bare model FPS, per-stage time, time to alert
    selfie      selfie decision latency at 640x480 and 12 MP
    memory      peak RSS of `firewatch run` over a replay
    bot         the same in bot mode (fake Bot API), and alert -> sendPhoto latency
    operating-point  threshold x confirmation x veto: fire clips alerted, delay, false alerts/h
    video       every shared clip and fire/ sequence: seconds from onset to alert, starts on fire-free clips
    cameras     several cameras on one detector session: FPS each and in all
    fleet       10 edges and one bot on PostgreSQL: deliveries a second, none lost or duplicated
    outage      a real edge on a fire clip, PostgreSQL stopped 120 s: alerts spooled, replayed, lost, duplicated
    faces       selfie matching against 1-4 enrolled photos: nearest, mean and average-face rules
    """
    module = importlib.import_module(BENCHMARKS[name])
    module.cli(list(args), prog=f"firewatch bench {name}")


if __name__ == "__main__":  # pragma: no cover
    main()
