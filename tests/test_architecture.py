"""The direction of imports (see README, Architecture): firewatch -> {bot, sinks} -> {vision, storage};
training/ and bench/ beside them, using public names only; tests/ imported by nothing but
tests, and by bench/ for the fake Bot API in tests.support. Every module is parsed, not
imported, so an import that only runs later (inside a function, under TYPE_CHECKING) counts."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.data import REPO

OURS = {"firewatch", "bot", "vision", "storage", "sinks", "training", "bench", "tests"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "bot.queries"
    target: str  # the imported module, e.g. "firewatch.cli"
    names: tuple[str, ...]  # what ``from target import ...`` takes (empty for ``import target``)
    top_level: bool  # at module level, not inside a function or class
    line: int

    @property
    def layer(self) -> str:
        return self.module.split(".")[0]

    @property
    def target_layer(self) -> str:
        return self.target.split(".")[0]

    def __str__(self) -> str:
        names = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.module}:{self.line} imports {self.target}{names}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[Import]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, (), id(node) in top, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            yield Import(module, target, tuple(a.name for a in node.names), id(node) in top, node.lineno)


def _all_imports() -> list[Import]:
    files = [p for layer in OURS for p in (REPO / layer).rglob("*.py")]
    return [imp for path in sorted(files) for imp in _imports(path) if imp.target_layer in OURS]


IMPORTS = _all_imports()


def _violations(layers: set[str], forbidden: set[str]) -> list[str]:
    return [str(i) for i in IMPORTS if i.layer in layers and i.target_layer in forbidden]


def test_the_parser_sees_the_imports_it_judges() -> None:
    """The rules below would pass vacuously on a parser that found nothing."""
    seen = {(i.module, i.target) for i in IMPORTS}
    assert ("firewatch.wiring", "bot.services") in seen
    assert ("bot.queries", "bot.periods") in seen
    assert ("bench.bot_mode", "tests.support.botapi") in seen  # inside a function
    assert ("vision.detectors.yolo", "vision.detectors.base") in seen
    assert ("sinks.mqtt", "vision.types") in seen
    assert any(i.module == "firewatch.cli" and i.target_layer == "training" and not i.top_level for i in IMPORTS)


def test_vision_and_storage_import_nothing_of_ours_above_them() -> None:
    assert _violations({"vision", "storage"}, {"bot", "firewatch", "sinks", "training", "bench", "tests"}) == []


def test_sinks_are_peers_of_the_alert_recorder_reading_only_vision() -> None:
    """What a sink needs of the database or the bot, the application hands it."""
    assert _violations({"sinks"}, {"bot", "storage", "firewatch", "training", "bench", "tests"}) == []


def test_vision_and_storage_are_independent() -> None:
    assert _violations({"vision"}, {"storage"}) + _violations({"storage"}, {"vision"}) == []


def test_bot_does_not_import_the_application_or_the_tools() -> None:
    assert _violations({"bot"}, {"firewatch", "training", "bench", "tests"}) == []


def test_the_application_loads_training_and_benchmarks_only_when_a_command_asks() -> None:
    """The daemon never imports them (nor torch): only function bodies of the CLI do."""
    eager = [str(i) for i in IMPORTS if i.layer == "firewatch" and i.target_layer in {"training", "bench"} and i.top_level]
    assert eager == []


@pytest.mark.parametrize("layer", ["training", "bench"])
def test_tools_use_only_public_names_of_other_packages(layer: str) -> None:
    private = [
        str(i) for i in IMPORTS
        if i.layer == layer and i.target_layer != layer
        and (any(n.startswith("_") for n in i.names) or any(p.startswith("_") for p in i.target.split(".")))
    ]
    assert private == []


def test_tests_are_imported_only_by_tests_and_the_fake_bot_api_by_bench() -> None:
    outside = [
        str(i) for i in IMPORTS
        if i.target_layer == "tests" and i.layer != "tests"
        and not (i.layer == "bench" and i.target.startswith("tests.support"))
    ]
    assert outside == []


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in tests.support (or a conftest's fixtures)."""
    crossing = [
        str(i) for i in IMPORTS
        if i.layer == "tests" and i.target_layer == "tests"
        and not (i.target == "tests.support" or i.target.startswith("tests.support."))
    ]
    assert crossing == []
