"""Helpers every chapter calls right after its parameters: a misspelled papermill parameter
stops the chapter at once, with the close match.

Papermill injects ``-p name value`` pairs as a new cell (its first line is exactly
``# Parameters``) right after the chapter's cell tagged ``parameters``. A name it injects
that the parameters cell never defines is silently ignored by Python (``-p epoch 1`` leaves
``epochs`` at 30): :func:`check_parameters` compares the two cells, which the kernel keeps in
its input history, and raises for such a name. In JupyterLab (no injected cell) it does
nothing and returns an empty set.
"""

from __future__ import annotations

import ast
import difflib

INJECTED_HEADER = "# Parameters"


class UnknownParameter(NameError):
    """A papermill parameter the chapter does not have; the message suggests the right one."""


def assigned_names(source: str) -> list[str]:
    """The names a cell assigns at top level (``x = ...``, ``x: int = ...``), in order."""
    names = []
    for node in ast.parse(source).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def _cells(history: list[str]) -> tuple[str, str] | None:
    """(parameters cell, injected cell) from the kernel's input history, or None."""
    for k in range(len(history) - 1, 0, -1):
        if history[k].lstrip().splitlines()[:1] == [INJECTED_HEADER]:
            return history[k - 1], history[k]
    return None


def unknown_parameters(declared: list[str], injected: list[str]) -> list[str]:
    """Error lines for injected names the chapter does not declare, with a suggestion."""
    lines = []
    for name in injected:
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f" — did you mean {close[0]!r}?" if close else ""
            lines.append(f"unknown parameter {name!r}{hint}")
    return lines


def check_parameters(namespace: dict) -> set[str]:
    """Stop on a papermill parameter the chapter's parameters cell does not define.

    Call it as ``given = check_parameters(globals())`` in the cell after the parameters;
    returns the names papermill set explicitly (chapter 4 resumes a run with only those).
    """
    history = namespace.get("In") or namespace.get("_ih") or []
    cells = _cells(list(history))
    if cells is None:
        return set()
    declared, injected = assigned_names(cells[0]), assigned_names(cells[1])
    errors = unknown_parameters(declared, injected)
    if errors:
        raise UnknownParameter(
            "; ".join(errors) + f". This chapter's parameters: {', '.join(declared)}"
        )
    return set(injected)
