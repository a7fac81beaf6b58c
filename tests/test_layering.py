"""The house rules of the package, checked on its code (issue 11): the import layering,
short functions, and every module placed in a layer."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import REPO

LAYERS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][
    0
]["layers"]
MAX_LINES = 60


def test_no_lower_layer_imports_a_higher_one():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and "1 kept, 0 broken" in out.stdout, out.stdout[-3000:]


def test_every_module_has_a_layer():
    placed = {m.strip() for line in LAYERS for m in line.split("|")}
    pkg = REPO / "trashkit"
    tops = {
        f"trashkit.{p.stem if p.is_file() else p.name}"
        for p in pkg.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    assert tops <= placed, f"modules outside the layering: {sorted(tops - placed)}"


def test_no_function_is_longer_than_60_lines():
    long = []
    for path in (REPO / "trashkit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({n})")
    assert not long, "functions over 60 lines: " + ", ".join(long)
