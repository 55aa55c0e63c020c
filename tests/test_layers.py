"""Layers point one way: the data, model and training code never reach up into figures, the
command line or the web app (a loss plot is a callback the command line adds)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "latentlab"
LOWER = ("data", "models", "train")
UPPER = ("latentlab.viz", "latentlab.cli", "latentlab.web", "latentlab.report", "latentlab.notebook")


def imported_modules(path: Path) -> list[str]:
    """Every module an import statement in ``path`` names, at any depth (also inside functions)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if node.level:  # relative: resolve against the file's package
                package = path.relative_to(PACKAGE.parent).parent.parts  # ("latentlab", "train")
                module = ".".join((*package[: len(package) - node.level + 1], module))
            names += [module, *(f"{module}.{alias.name}" for alias in node.names)]
    return names


def lower_files() -> list[Path]:
    return sorted(p for layer in LOWER for p in (PACKAGE / layer).rglob("*.py"))


def test_the_check_sees_imports_inside_functions() -> None:
    source = PACKAGE / "train" / "api.py"
    assert "latentlab.data.rule" in imported_modules(source)  # a top-level import
    assert "latentlab.data.sources" in imported_modules(PACKAGE / "data" / "rule.py")  # one inside a function


@pytest.mark.parametrize("path", lower_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_lower_layers_import_nothing_from_the_upper_ones(path: Path) -> None:
    bad = [name for name in imported_modules(path) if name.startswith(UPPER)]
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"
