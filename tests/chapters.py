"""What every chapter test shares: read a chapter and its exercise cells, run an exercise's
reference solution, make nbgrader's student version of a cell, execute a chapter headless.

The reference solutions are read from the chapters themselves, so the tests follow the
notebook a lecturer teaches from.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import REPO
from torch import nn

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise not yet solved: write your answer here")'
SOLUTION = re.compile(
    r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[^\n]*$", re.DOTALL | re.MULTILINE
)
#: lines of an exercise cell that are not the solution: its check call, prints, asserts
NOT_SOLUTION = re.compile(r"^(ch0\d\.|print\(|assert )")


def chapter(name: str) -> nbformat.NotebookNode:
    return nbformat.read(REPO / "notebooks" / name, as_version=4)


def exercise_cells(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code" and BEGIN in c.source]


def student_source(src: str) -> str:
    """What nbgrader's ClearSolutions makes of a cell: each solution becomes a raising stub."""
    return SOLUTION.sub(lambda m: m.group(1) + STUB, src)


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with every solution region replaced by the raising stub."""
    nb = nbformat.from_dict(nb)
    for c in nb.cells:
        if c.cell_type == "code" and BEGIN in c.source:
            c.source = student_source(c.source)
    return nb


def stub(*args):
    raise NotImplementedError("Exercise not yet solved: write your answer here")


def solution(name: str, chapter_file: str, namespace: dict | None = None) -> dict:
    """Execute the chapter's exercise cell that defines ``name``, without its check call,
    and return the namespace (``namespace`` adds what the cell expects from earlier cells)."""
    for src in exercise_cells(chapter(chapter_file)):
        if re.search(rf"^(def {name}\b|{name} = )", src, re.MULTILINE):
            code = "\n".join(line for line in src.splitlines() if not NOT_SOLUTION.match(line))
            ns = {"math": math, "torch": torch, "nn": nn, "F": F, "np": np, **(namespace or {})}
            exec(compile(code, f"<{name}>", "exec"), ns)  # noqa: S102 - the chapter's own solution
            return ns
    raise LookupError(f"no exercise cell of {chapter_file} defines {name}")


def check_structure(
    nb: nbformat.NotebookNode,
    module: str,
    n_exercises: int | None = None,
    one_solution: bool = True,
    check: str = r"\w+",
) -> None:
    """No stored outputs; one parameters cell with check_parameters right after it; at least
    three exercise cells (exactly ``n_exercises`` when given), each with matched solution
    markers (exactly one pair with ``one_solution``) and a ``<module>.<check>(`` call after
    the last END marker."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    after = next(c for c in nb.cells[tagged[0] + 1 :] if c.cell_type == "code").source
    lines = [line for line in after.splitlines() if line.strip()]
    assert lines[0] == "from trashkit.notebook import check_parameters"
    assert lines[1].startswith("given = check_parameters(globals())")
    cells = exercise_cells(nb)
    assert len(cells) >= 3 and (n_exercises is None or len(cells) == n_exercises), len(cells)
    for src in cells:
        assert src.count(BEGIN) == src.count(END) >= 1, src
        assert not one_solution or src.count(BEGIN) == 1, src
        assert re.search(rf"^{module}\.{check}\(", src[src.rindex(END) :], re.MULTILINE), src


def exercises_in_turn(
    nb: nbformat.NotebookNode,
    ns: dict,
    capsys,
    messages: tuple[str, ...] = ("not yet solved", "not written yet"),
) -> None:
    """Every exercise cell, alone in ``ns``: the student copy stops right there with one of
    ``messages``, and the stored solution passes its check (which prints a ✓ line)."""
    for src in exercise_cells(nb):
        with pytest.raises(NotImplementedError) as err:  # NotSolved is one too
            exec(compile(student_source(src), "student cell", "exec"), dict(ns))  # noqa: S102
        assert any(m in str(err.value) for m in messages), err.value
        exec(compile(src, "exercise cell", "exec"), ns)  # noqa: S102 - the stored solution
        assert "✓" in capsys.readouterr().out, src


def execute(path: Path, out: Path, home: Path, **params) -> nbformat.NotebookNode:
    """Run a notebook with papermill in a clean TRASHKIT_HOME; return the executed notebook."""
    import papermill as pm

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRASHKIT_HOME", str(home))
        pm.execute_notebook(
            str(path),
            str(out),
            parameters=params,
            kernel_name="python3",
            cwd=str(REPO / "notebooks"),
            progress_bar=False,
        )
    return nbformat.read(out, as_version=4)


def printed(nb: nbformat.NotebookNode) -> str:
    """Everything the code cells printed or displayed as text."""
    return "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


def benchmarks_module(name: str):
    """Import ``benchmarks/<name>.py`` (a script folder, not a package) without leaving it on
    ``sys.path``."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
