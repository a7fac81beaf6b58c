"""The workbook as a whole: running every chapter, the static HTML book, student copies.

* :mod:`.chapters` -- finding the chapters and their parameters, the machine, executing them
  headless with papermill (``make demo``, ``make book``);
* :mod:`.html`     -- rendering executed chapters into a self-contained HTML book;
* :mod:`.student`  -- student copies with the solutions cleared by nbgrader.

``make book`` (``python -m trashkit book``) executes every chapter with papermill, the way
``make demo`` does (kernel ``python3``, working folder ``notebooks/``, demo parameters unless
told otherwise), and renders the executed notebooks with nbconvert's HTML exporter (the "lab"
template) into a fresh ``outputs/<run-id>-book/``: ``index.html`` lists the chapters in order,
every chapter page carries its outputs and figures embedded as data URIs, a table of contents,
links to the previous and next chapter, and the run's parameters and machine.

Why nbconvert: it is the exporter Jupyter itself uses, it ships its templates and CSS inside
the Python package, and it renders without any network; a book builder (Jupyter Book, Quarto)
would add a second toolchain for a few pages. The pages load nothing from a CDN for reading:
the one external script nbconvert would add (require.js) is dropped, widget outputs are shown
as their text (a static page has no kernel to answer a slider), and formulas are typeset by a
copy of MathJax 2 from the ``jupyter-server-mathjax`` package placed in ``_static/mathjax``.

``make student`` (``python -m trashkit student``) writes copies of every chapter with the
solutions removed by nbgrader's own ``ClearSolutions`` preprocessor: everything between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes :data:`CODE_STUB`, which raises a clear
"not yet solved" error; outputs are stripped.

This package sits on top of trashkit: it executes the chapters; nothing in trashkit imports it.
"""

from __future__ import annotations

from .chapters import (
    DEMO_PARAMS,
    INLINE_BACKEND,
    QUICK_PARAMS,
    WIDGET_VIEW,
    chapter_paths,
    declared_parameters,
    execute_chapters,
    machine_info,
    parse_value,
    resolve_parameters,
    run_demo,
)
from .html import build_book, copy_mathjax, href, render_book, render_page
from .student import (
    BEGIN_SOLUTION,
    CODE_STUB,
    END_SOLUTION,
    NOT_SOLVED,
    TEXT_STUB,
    MarkerError,
    check_markers,
    has_solutions,
    make_student,
    student_copy,
)

__all__ = [
    "BEGIN_SOLUTION",
    "CODE_STUB",
    "DEMO_PARAMS",
    "END_SOLUTION",
    "INLINE_BACKEND",
    "NOT_SOLVED",
    "QUICK_PARAMS",
    "TEXT_STUB",
    "WIDGET_VIEW",
    "MarkerError",
    "build_book",
    "chapter_paths",
    "check_markers",
    "copy_mathjax",
    "declared_parameters",
    "execute_chapters",
    "has_solutions",
    "href",
    "machine_info",
    "make_student",
    "parse_value",
    "render_book",
    "render_page",
    "resolve_parameters",
    "run_demo",
    "student_copy",
]
