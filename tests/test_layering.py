"""The house rules of the package, checked on its code: the import layering, short functions,
every module placed in a layer, one version, and a lint gate without holes."""

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


def test_one_version_from_the_installed_metadata():
    import trashkit

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert trashkit.__version__ == declared


def test_ruff_covers_every_python_file():
    """The lint gate has no hole: every .py file and chapter of the repository is checked
    (outputs/, data/ and the venv are the only folders left out)."""
    ruff = Path(sys.executable).with_name("ruff")
    out = subprocess.run(
        [str(ruff), "check", "--show-files", "."], cwd=REPO, capture_output=True, text=True
    )
    checked = {Path(line).resolve() for line in out.stdout.split() if line.startswith("/")}
    ours = {
        p.resolve()
        for pattern in ("*.py", "*.ipynb")
        for p in REPO.rglob(pattern)
        if not {"outputs", "data", ".venv"} & set(p.relative_to(REPO).parts[:1])
        and ".ipynb_checkpoints" not in p.parts
    }
    assert ours and ours <= checked, sorted(str(p) for p in ours - checked)[:10]
