"""Student copies: every chapter with its solutions cleared by nbgrader's ClearSolutions and
its outputs stripped, written only once every chapter's solution markers are sound."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..runs import new_run_dir
from .chapters import chapter_paths

#: the message every cleared exercise raises in a student copy (tests look for it)
NOT_SOLVED = "Exercise not yet solved"
#: what nbgrader's ClearSolutions puts where a code solution was
CODE_STUB = (
    f'raise NotImplementedError("{NOT_SOLVED}: write your answer here '
    '(replace this line), then run the cell again")'
)
#: ... and where a written (markdown) solution was
TEXT_STUB = "**YOUR ANSWER HERE** (exercise not yet solved)"
#: nbgrader's own delimiters: a line containing one of these opens / closes a solution
BEGIN_SOLUTION = "BEGIN SOLUTION"
END_SOLUTION = "END SOLUTION"


class MarkerError(ValueError):
    """A solution region that is not closed, or closed twice; the message names the notebook
    and the cell."""


def check_markers(nb, name: str) -> int:
    """How many solution regions ``nb`` has; :class:`MarkerError` for a cell whose BEGIN /
    END SOLUTION lines do not pair up (nbgrader would clear the rest of the cell, or fail)."""
    regions = 0
    for index, cell in enumerate(nb.cells):
        inside = False
        for line in cell.source.split("\n"):
            if BEGIN_SOLUTION in line:
                if inside:
                    raise MarkerError(f"{name}, cell {index}: BEGIN SOLUTION inside a solution")
                inside, regions = True, regions + 1
            elif END_SOLUTION in line:
                if not inside:
                    raise MarkerError(f"{name}, cell {index}: END SOLUTION without a BEGIN")
                inside = False
        if inside:
            raise MarkerError(f"{name}, cell {index}: BEGIN SOLUTION without an END SOLUTION")
    return regions


def has_solutions(nb) -> bool:
    return any(BEGIN_SOLUTION in c.source for c in nb.cells)


def student_copy(nb):
    """A copy of ``nb`` with every solution region replaced by nbgrader's ClearSolutions
    (``enforce_metadata`` off: the chapters mark solutions by the delimiters alone) and its
    outputs stripped. Hidden tests (``### BEGIN HIDDEN TESTS``) go too, if a chapter has any."""
    import copy
    from nbconvert.preprocessors import ClearOutputPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb = copy.deepcopy(nb)
    resources: dict = {}
    clear = ClearSolutions(
        code_stub={"python": CODE_STUB},
        text_stub=TEXT_STUB,
        begin_solution_delimeter=BEGIN_SOLUTION,
        end_solution_delimeter=END_SOLUTION,
        enforce_metadata=False,
    )
    nb, resources = clear.preprocess(nb, resources)
    nb, resources = ClearHiddenTests(enforce_metadata=False).preprocess(nb, resources)
    nb, resources = ClearOutputPreprocessor().preprocess(nb, resources)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    return nb


def make_student(
    only: Iterable[str] | None = None,
    notebooks: str | Path | None = None,
    base: str | Path | None = None,
) -> Path:
    """Student copies of the chapters in a fresh ``<outputs>/<run-id>-student/``.

    Every copy is made in memory first: a chapter with a malformed solution block stops the
    whole command (naming the notebook and the cell) before any folder is created."""
    import nbformat

    copies = []
    for path in chapter_paths(notebooks, only):
        nb = nbformat.read(path, as_version=4)
        copies.append((path, check_markers(nb, path.name), student_copy(nb)))
    out = new_run_dir("student", base=base)
    for path, n, copy in copies:
        nbformat.write(copy, out / path.name)
        print(
            f"{path.name}: {n} solution(s) cleared"
            if n
            else f"{path.name}: no solution markers (copied without outputs)"
        )
    print(f"\nstudent copies: {out}")
    return out
