"""Chapter 2 (FLOPs and MACs): its exercise checks, its shape, its headless and student runs.

The helpers at the top are shared with test_chapter03.py: the reference solutions are read
from the chapter itself, so the tests follow the notebook a lecturer teaches from.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import pytest
import torch
from conftest import REPO
from torch import nn

from trashkit.exercises import ExerciseError, NotSolved, ch02

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise not yet solved: write your answer here")'
SOLUTION = re.compile(
    r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[^\n]*$", re.DOTALL | re.MULTILINE
)
NAME = "02_flops_macs.ipynb"


# --- helpers (also used by test_chapter03.py) ------------------------------------------------


def chapter(name: str) -> nbformat.NotebookNode:
    return nbformat.read(REPO / "notebooks" / name, as_version=4)


def exercise_cells(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code" and BEGIN in c.source]


def solution(name: str, chapter_file: str) -> dict:
    """Execute the chapter's exercise cell that defines ``name``, without its check call, and
    return the namespace: the tests use the chapter's own reference solution."""
    for src in exercise_cells(chapter(chapter_file)):
        if re.search(rf"^(def {name}\b|{name} = )", src, re.MULTILINE):
            code = "\n".join(
                line
                for line in src.splitlines()
                if not line.startswith(("ch02.", "ch03.", "print(", "assert "))
            )
            ns = {"math": math, "torch": torch, "nn": nn}
            exec(compile(code, f"<{name}>", "exec"), ns)  # noqa: S102 - the chapter's own solution
            return ns
    raise LookupError(f"no exercise cell of {chapter_file} defines {name}")


def student_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What nbgrader's ClearSolutions does: every solution region becomes a raising stub."""
    nb = nbformat.from_dict(nb)
    for c in nb.cells:
        if c.cell_type == "code" and BEGIN in c.source:
            c.source = SOLUTION.sub(lambda m: m.group(1) + STUB, c.source)
    return nb


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


def check_structure(nb: nbformat.NotebookNode, module: str) -> None:
    """One parameters cell, check_parameters right after it, every exercise's check call
    after its END marker, no stored outputs."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    after = next(c for c in nb.cells[tagged[0] + 1 :] if c.cell_type == "code").source
    assert after.splitlines()[0] == "from trashkit.notebook import check_parameters"
    assert after.splitlines()[1].startswith("given = check_parameters(globals())")
    cells = exercise_cells(nb)
    assert len(cells) >= 3
    for src in cells:
        assert src.count(BEGIN) == src.count(END) >= 1
        tail = src[src.rindex(END) :]
        assert re.search(rf"^{module}\.\w+\(", tail, re.MULTILINE), src  # check after END


def exercises_in_turn(nb: nbformat.NotebookNode, ns: dict, capsys) -> None:
    """Every exercise cell, alone in ``ns``: the student copy stops right there with a clear
    message, and the stored solution passes its check (which prints a ✓ line)."""
    for src in exercise_cells(nb):
        student = (
            student_copy(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src)]))
            .cells[0]
            .source
        )
        with pytest.raises(NotImplementedError) as err:  # NotSolved is one too
            exec(compile(student, "student cell", "exec"), dict(ns))  # noqa: S102
        assert "not yet solved" in str(err.value) or "not written yet" in str(err.value)
        exec(compile(src, "exercise cell", "exec"), ns)  # noqa: S102 - the stored solution
        assert "✓" in capsys.readouterr().out, src


# --- the exercise checks ---------------------------------------------------------------------


def stub(*args):
    raise NotImplementedError("Exercise not yet solved: write your answer here")


def test_linear_counts_check():
    ch02.check_linear_counts(solution("linear_counts", NAME)["linear_counts"])
    with pytest.raises(ExerciseError, match=r"got \(6, 15\).*as the lecture slide does"):
        ch02.check_linear_counts(lambda fin, fout, bias: (fout * (fin - 1), fout * (2 * fin - 1)))
    with pytest.raises(ExerciseError, match="n multiplications but only n - 1 additions"):
        ch02.check_linear_counts(lambda fin, fout, bias: (fin * fout, 2 * fin * fout))
    with pytest.raises(ExerciseError, match="left the bias out"):
        ch02.check_linear_counts(lambda fin, fout, bias: (fin * fout, fout * (2 * fin - 1)))
    with pytest.raises(ExerciseError, match="return a pair"):
        ch02.check_linear_counts(lambda fin, fout, bias: fin * fout)
    with pytest.raises(NotSolved, match="linear_counts is not written yet"):
        ch02.check_linear_counts(stub)


def test_dw_separable_check():
    ch02.check_dw_separable(solution("dw_separable_macs", NAME)["dw_separable_macs"])

    def full_depthwise(cin, cout, h, w, k=3, stride=1):
        ho = (h + 2 * (k // 2) - k) // stride + 1
        return cin * cin * ho * ho * k * k + cin * cout * ho * ho

    with pytest.raises(ExerciseError, match="priced the depthwise conv like a full conv"):
        ch02.check_dw_separable(full_depthwise)

    def no_stride(cin, cout, h, w, k=3, stride=1):
        return cin * h * w * k * k + cin * cout * h * w

    with pytest.raises(ExerciseError, match=r"stride=2.*ignored the stride"):
        ch02.check_dw_separable(no_stride)
    with pytest.raises(ExerciseError, match="return a number"):
        ch02.check_dw_separable(lambda *a: "many")
    with pytest.raises(NotSolved):
        ch02.check_dw_separable(stub)


def test_counter_prediction_check():
    right = solution("prediction", NAME)["prediction"]
    assert right == {"analytic": 15422, "official": 15414}
    ch02.check_counter_prediction(right)
    with pytest.raises(ExerciseError, match="priced the hardswish the way the official"):
        ch02.check_counter_prediction({**right, "analytic": right["analytic"] - 1024})
    with pytest.raises(ExerciseError, match="priced the global pool the way the analytic"):
        ch02.check_counter_prediction({**right, "official": right["official"] - 504})
    with pytest.raises(ExerciseError, match="keys 'analytic' and 'official'"):
        ch02.check_counter_prediction({"ours": 1})


def test_slowest_prediction_check():
    import pandas as pd

    study = pd.DataFrame(
        {
            "model": ["a", "b", "c"],
            "size": [156] * 3,
            "vs size median": [0.5, 1.0, 2.5],
            "ms per 100M MACs": [1, 2, 5],
        }
    )
    assert "right: c pays 2.50x" in ch02.check_slowest_prediction("c", study, 156)
    assert "your a ranks 3 of 3" in ch02.check_slowest_prediction("a", study, 156)
    with pytest.raises(ExerciseError, match="'z' is not a model of the study"):
        ch02.check_slowest_prediction("z", study, 156)
    ch02.record_slowest_guess(solution("slowest_guess", NAME)["slowest_guess"])
    with pytest.raises(ExerciseError, match="'resnet' is not a model of the study"):
        ch02.record_slowest_guess("resnet")


# --- the chapter -------------------------------------------------------------------------------


def test_chapter_shape_and_required_text():
    nb = chapter(NAME)
    check_structure(nb, "ch02")
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for must in (
        "9 MACs",
        "slide",
        "papermill",
        "Reference results",
        "Takeaways",
        "Further reading",
        "multiply-adds",
        "per input size",
    ):
        assert must in text, must
    assert len(re.findall(r"[A-Za-z]{2,}", text)) >= 1000


@pytest.mark.slow
def test_chapter_runs_headless_quick(tmp_path, tiny_home):
    nb = execute(
        REPO / "notebooks" / NAME,
        tmp_path / NAME,
        tiny_home,
        output_dir=str(tmp_path / "run"),
        quick=True,
        interactive=False,
        resolution=96,
    )
    text = printed(nb)
    assert text.count("✓") >= 4  # every exercise check passed and said so
    assert "Spearman rank correlation" in text and "find_escapes: 0 (DodgingConv)" in text
    for f in (
        "macs_vs_latency.png",
        "correlation_by_size.csv",
        "counters_mobilenet_v3_small.csv",
        "layers_shufflenet_v2_x0_5.csv",
    ):
        assert (tmp_path / "run" / f).is_file(), f


def test_student_copy_fails_clearly_at_every_exercise(capsys):
    from trashkit.complexity.study import zoo

    exercises_in_turn(chapter(NAME), {"ch02": ch02, "zoo": zoo}, capsys)
