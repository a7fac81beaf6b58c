"""The static HTML book (make book) and the student copies (make student).

Fixture chapters in tests/fixtures/chapters/ stand in for the real ones where a test needs a
figure, a formula or exercises; every student-copy test also runs over each real chapter that
has solution markers (and skips, saying why, a chapter that has none yet).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from conftest import REPO
from trashkit import book

FIXTURES = REPO / "tests" / "fixtures" / "chapters"
EXERCISES = FIXTURES / "02_exercises.ipynb"
CHAPTERS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WITH_FIXTURE = [EXERCISES, *CHAPTERS]
#: how a cleared exercise may stop a student copy (both carry book.NOT_SOLVED in the message)
STUB_ERRORS = {"NotImplementedError", "NotSolved"}


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _needs_markers(nb, path: Path):
    if not book.has_solutions(nb):
        pytest.skip(
            f"{path.name} has no '### BEGIN SOLUTION' markers yet (no exercises to "
            "clear); the test runs once it has"
        )


def _solution_lines(source: str) -> list[str]:
    """The lines strictly between BEGIN and END SOLUTION markers."""
    lines, inside = [], False
    for line in source.split("\n"):
        if book.BEGIN_SOLUTION in line:
            inside = True
        elif book.END_SOLUTION in line:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


# ----------------------------------------------------------------------------- parameters


def test_parse_value_reads_like_papermill():
    assert book.parse_value("True") is True and book.parse_value("False") is False
    assert book.parse_value("None") is None and book.parse_value("null") is None
    assert book.parse_value("3") == 3 and book.parse_value("0.25") == 0.25
    assert book.parse_value("2e7") == 2e7
    assert book.parse_value("[32, 48]") == [32, 48]
    assert book.parse_value("default") == "default"
    assert book.parse_value("../data/x.json") == "../data/x.json"
    assert book.parse_value("") == ""
    assert book.parse_value("yes") == "yes" and book.parse_value("2026-01-01") == "2026-01-01"


def test_resolve_parameters_global_per_chapter_and_defaults(capsys):
    paths = book.chapter_paths(FIXTURES)
    assert [p.name for p in paths] == ["01_figure.ipynb", "02_exercises.ipynb"]
    got = book.resolve_parameters(
        paths,
        [("n", "7"), ("02.n", "9")],
        defaults={"01_figure": {"n": 5, "renamed_away": 1}},
        static={"interactive": False},
    )
    # global -p applies where declared, NN.name wins for its chapter; undeclared static and
    # default names are not injected
    assert got == {"01_figure": {"n": 7}, "02_exercises": {"n": 9}}
    assert "renamed_away" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no selected chapter declares"):
        book.resolve_parameters(paths, [("epochz", "2")])
    with pytest.raises(ValueError, match="no selected chapter"):
        book.resolve_parameters(paths, [("09.n", "2")])
    assert [p.name for p in book.chapter_paths(FIXTURES, ["02"])] == ["02_exercises.ipynb"]
    with pytest.raises(ValueError, match="no chapter"):
        book.chapter_paths(FIXTURES, ["08"])


def test_quick_and_demo_parameters_name_declared_parameters():
    """QUICK_PARAMS (book --quick, the browser test) only names parameters the chapters have."""
    from trashkit.book import DEMO_PARAMS

    for table in (book.QUICK_PARAMS, DEMO_PARAMS):
        for stem, params in table.items():
            path = REPO / "notebooks" / f"{stem}.ipynb"
            if path.exists():
                missing = set(params) - set(book.declared_parameters(path))
                assert not missing, f"{stem} no longer declares {missing}"


# ----------------------------------------------------------------------------- student copies


@pytest.mark.parametrize("path", WITH_FIXTURE, ids=lambda p: p.name)
def test_student_copy_removes_every_solution(path):
    teacher = _read(path)
    _needs_markers(teacher, path)
    before = nbformat.writes(teacher)
    student = book.student_copy(teacher)
    assert nbformat.writes(teacher) == before, "the teacher's notebook must not change"
    assert len(student.cells) == len(teacher.cells)
    text = nbformat.writes(student)
    assert book.BEGIN_SOLUTION not in text and book.END_SOLUTION not in text
    stubs = 0
    for t, s in zip(teacher.cells, student.cells):
        if book.BEGIN_SOLUTION not in t.source:
            assert s.source == t.source
            continue
        left = set(line.strip() for line in s.source.split("\n"))
        survived = [line for line in _solution_lines(t.source) if line in left]
        assert not survived, f"solution line(s) survived in {path.name}: {survived}"
        stub = book.CODE_STUB if t.cell_type == "code" else book.TEXT_STUB
        assert stub in s.source
        stubs += t.cell_type == "code"
    assert stubs >= 1
    for c in student.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None
    nbformat.validate(student)


def _answer_lines(path: Path) -> list[str]:
    """A chapter's solution lines that could give an answer away: code or prose of at least
    20 characters, whitespace collapsed (comments and short lines such as ``return out``
    say nothing on their own)."""
    lines = []
    for cell in _read(path).cells:
        for line in _solution_lines(cell.source):
            text = re.sub(r"\s+", " ", line)
            if len(text) >= 20 and not text.startswith("#"):
                lines.append(text)
    return lines


def test_no_answer_ships_in_the_package():
    """A student copy clears the solutions; the package the student installs (trashkit/,
    package data included) must not hold them either: checks compare with libraries,
    properties or trashkit's own helpers, never with the solution's text."""
    package = set()
    for f in (REPO / "trashkit").rglob("*"):
        if f.is_file() and f.suffix in (".py", ".yaml", ".json", ".txt", ".md"):
            package |= {re.sub(r"\s+", " ", ln.strip()) for ln in f.read_text().splitlines()}
    leaks = {
        path.name: found
        for path in CHAPTERS
        if (found := [line for line in _answer_lines(path) if line in package])
    }
    assert not leaks, f"solution lines found in the trashkit package: {leaks}"
    assert sum(len(_answer_lines(p)) for p in CHAPTERS) > 50  # the scan sees the solutions


def test_student_stub_keeps_indentation_and_text_stub():
    student = book.student_copy(_read(EXERCISES))
    fn = next(c for c in student.cells if "def flops" in c.source)
    assert f"    {book.CODE_STUB}" in fn.source and "check_flops(flops)" in fn.source
    written = next(
        c for c in student.cells if c.cell_type == "markdown" and "Exercise 2" in c.source
    )
    assert book.TEXT_STUB in written.source and "n-1$ additions" not in written.source


def test_make_student_writes_a_fresh_folder_each_time(tmp_path, capsys):
    first = book.make_student(notebooks=FIXTURES, base=tmp_path)
    second = book.make_student(notebooks=FIXTURES, base=tmp_path)
    assert first != second and first.name.endswith("-student")
    for folder in (first, second):
        assert sorted(p.name for p in folder.glob("*.ipynb")) == [
            "01_figure.ipynb",
            "02_exercises.ipynb",
        ]
    out = capsys.readouterr().out
    assert "02_exercises.ipynb: 3 solution(s) cleared" in out
    assert "01_figure.ipynb: no solution markers" in out


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_home, tmp_path_factory):
    """A one-epoch tiny model on the tiny default data (chapters 5 and 7 need a checkpoint)."""
    import os
    from trashkit.train import train

    out = tmp_path_factory.mktemp("ckpt") / "run"
    old = os.environ.get("TRASHKIT_HOME")
    os.environ["TRASHKIT_HOME"] = str(tiny_home)
    try:
        train(
            {"model": "tiny", "image_size": 48, "epochs": 1, "batch_size": 32}, out, progress=False
        )
    finally:
        os.environ.pop("TRASHKIT_HOME") if old is None else os.environ.update(TRASHKIT_HOME=old)
    return out / "best.pt"


def _run_student(path: Path, tmp_path: Path, request) -> tuple:
    """Execute the student copy of ``path`` with quick parameters; return it and the error."""
    import papermill as pm

    teacher = _read(path)
    _needs_markers(teacher, path)
    student = tmp_path / path.name
    nbformat.write(book.student_copy(teacher), student)
    declared = book.declared_parameters(path)
    params = book.resolve_parameters(
        [path], defaults=book.QUICK_PARAMS, static={"interactive": False}
    )[path.stem]
    if "output_dir" in declared:
        params["output_dir"] = str(tmp_path / "run")
    if "checkpoint" in declared:
        params["checkpoint"] = str(request.getfixturevalue("tiny_checkpoint"))
    request.getfixturevalue("isolated_home")
    out = tmp_path / ("executed_" + path.name)
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(
            str(student),
            str(out),
            parameters=params,
            kernel_name="python3",
            cwd=str(path.parent),
            progress_bar=False,
        )
    return _read(student), _read(out), err.value


@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_FIXTURE, ids=lambda p: p.name)
def test_student_copy_stops_at_the_first_exercise(path, tmp_path, request):
    student, executed, err = _run_student(path, tmp_path, request)
    # the stub's own error, or the check's NotSolved wrapping it (trashkit.exercises.call)
    assert err.ename in STUB_ERRORS and book.NOT_SOLVED in err.evalue, (
        f"{path.name}: the student copy failed with {err.ename}: {err.evalue}"
    )
    first = next(
        c.source for c in student.cells if c.cell_type == "code" and book.CODE_STUB in c.source
    )
    failed = [
        c
        for c in executed.cells
        if c.cell_type == "code" and any(o.output_type == "error" for o in c.get("outputs", []))
    ]
    assert len(failed) == 1, f"{path.name}: errors in {len(failed)} cells"
    assert failed[0].source == first, f"{path.name} stopped elsewhere:\n{failed[0].source}"
    # everything before the first exercise ran, nothing after it
    code = [
        c
        for c in executed.cells
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])
    ]
    k = next(i for i, c in enumerate(code) if c.source == first)
    assert all(c.execution_count is not None for c in code[: k + 1])
    assert all(c.execution_count is None for c in code[k + 1 :])


@pytest.mark.slow
def test_teacher_fixture_passes_its_own_checks(tmp_path):
    """The solutions satisfy the checks: the stored notebook still runs headless."""
    import papermill as pm

    out = tmp_path / "teacher.ipynb"
    pm.execute_notebook(
        str(EXERCISES), str(out), kernel_name="python3", cwd=str(FIXTURES), progress_bar=False
    )
    text = "".join(
        o.get("text", "") for c in _read(out).cells if c.cell_type == "code" for o in c.outputs
    )
    assert "correct: 9" in text and "the end" in text


# ----------------------------------------------------------------------------- the book


def _rel_links(page: str, rel: str) -> set[str]:
    from bs4 import BeautifulSoup

    return {a["href"] for a in BeautifulSoup(page, "html.parser").find_all("a", rel=rel)}


@pytest.mark.slow
def test_book_of_fixture_chapters(tmp_path):
    out, results = book.build_book(
        [("01.n", "5")], notebooks=FIXTURES, base=tmp_path, command="make book (test)"
    )
    assert out.parent == tmp_path and out.name.endswith("-book")
    assert [r["chapter"] for r in results] == ["01_figure", "02_exercises"]
    assert not any(r["error"] for r in results)
    index = (out / "index.html").read_text()
    chapters = index.split('<ol class="chapters">')[1].split("</ol>")[0]
    links = re.findall(r'<a href="(\d\d_[^"]+\.html)">', chapters)
    assert links == ["01_figure.html", "02_exercises.html"]
    assert "Fixture 1 — a figure and a formula" in index and "torch" in index
    p1, p2 = (out / "01_figure.html").read_text(), (out / "02_exercises.html").read_text()
    # outputs and figures embedded, nothing fetched from elsewhere for reading
    assert "data:image/png;base64," in p1 and "FLOPs = 9" in p1
    for page in (index, p1, p2):
        assert not re.search(r'<script[^>]+src="https?:', page), "a script from the network"
        assert not re.search(r'<(img|link)[^>]+(src|href)="https?:', page)
    assert (out / "_static" / "mathjax" / "MathJax.js").is_file()
    assert 'src="_static/mathjax/MathJax.js' in p1
    # table of contents, prev/next, run parameters and machine on each page
    assert 'href="#A-figure"' in p1 and 'href="#Sub-section"' in p1
    assert _rel_links(p1, "next") == {"02_exercises.html"} and not _rel_links(p1, "prev")
    assert _rel_links(p2, "prev") == {"01_figure.html"} and not _rel_links(p2, "next")
    assert "<th>n</th><td><code>5</code>" in p1 and "<th>n</th>" not in p2
    for page in (p1, p2):
        assert "torch" in page and "cpu cores" in page and "make book (test)" in page
    meta = json.loads((out / "book.json").read_text())
    assert meta["machine"]["torch"] and meta["chapters"][0]["parameters"]["n"] == 5
    assert (out / "_executed" / "01_figure.ipynb").is_file()


@pytest.mark.slow
def test_book_of_a_real_chapter(tmp_path, isolated_home):
    out, results = book.build_book(only=["01"], defaults=book.QUICK_PARAMS, base=tmp_path)
    assert not results[0]["error"], results[0]["error"]
    page = (out / results[0]["chapter"]).with_suffix(".html").read_text()
    assert page.count("data:image/png;base64,") >= 2, "chapter 1's figures are not in the page"
    assert "application/vnd.jupyter.widget-view+json" not in page


def test_instructor_notes_become_book_pages_not_student_files(tmp_path):
    from trashkit.book.html import _instructor_list, render_instructor_pages

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "01.md").write_text(
        "# Chapter 1 note\n\n| q | answer |\n|---|---|\n| 1 | 42 |\n\n<script>alert(1)</script>\n"
    )
    (notes / "README.md").write_text("not a chapter's note")
    pages = render_instructor_pages(tmp_path / "book", notes)
    assert pages == [("instructors/01.html", "Chapter 1 note")]
    page = (tmp_path / "book" / "instructors" / "01.html").read_text()
    assert "<td>42</td>" in page and "<script>alert" not in page  # markdown, HTML escaped
    assert 'href="instructors/01.html"' in _instructor_list(pages)
    assert _instructor_list([]) == ""
    real = sorted(p.stem for p in (REPO / "docs" / "instructors").glob("[0-9][0-9].md"))
    assert real == [p.name[:2] for p in CHAPTERS]  # every chapter has its note
