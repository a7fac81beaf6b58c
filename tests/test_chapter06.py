"""Chapter 6 (AutoML): its exercise checks, its shape, its headless and student runs.

The reference solutions are read from the chapter itself (its exercise cells, without the
check call), so the tests follow the notebook a lecturer teaches from.
"""

from __future__ import annotations

import math
import re

import nbformat
import optuna
import pandas as pd
import pytest
from conftest import REPO

from trashkit.exercises import ExerciseError, NotSolved, ch06
from trashkit.search import SearchConfig, load_study, space_table

NAME = "06_automl.ipynb"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise not yet solved: write your answer here")'
SOLUTION = re.compile(
    r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[^\n]*$", re.DOTALL | re.MULTILINE
)


# --- helpers (test_chapter07.py uses them too) -----------------------------------------------


def chapter(name: str = NAME) -> nbformat.NotebookNode:
    return nbformat.read(REPO / "notebooks" / name, as_version=4)


def exercise_cells(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code" and BEGIN in c.source]


def solution(name: str, chapter_file: str = NAME, namespace: dict | None = None) -> dict:
    """Execute the chapter's exercise cell that defines ``name``, without its check call:
    the tests use the chapter's own reference solution."""
    for src in exercise_cells(chapter(chapter_file)):
        if re.search(rf"^(def {name}\b|{name} = )", src, re.MULTILINE):
            code = "\n".join(
                line for line in src.splitlines() if not re.match(r"ch0\d\.|print\(", line)
            )
            ns = {"math": math, **(namespace or {})}
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


def execute(path, out, home, **params) -> nbformat.NotebookNode:
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
    after its END marker, no stored outputs, at least one "predict before you run"."""
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
        assert src.count(BEGIN) == src.count(END) == 1
        assert re.search(rf"^{module}\.\w+\(", src[src.rindex(END) :], re.MULTILINE), src
    assert "predict before you run" in "\n".join(c.source for c in nb.cells).lower()


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


def stub(*args):
    raise NotImplementedError("Exercise not yet solved: write your answer here")


# --- the exercise checks ---------------------------------------------------------------------


def test_pareto_check_accepts_the_solution_and_names_the_slips():
    ch06.check_pareto_front(solution("pareto_front")["pareto_front"])
    with pytest.raises(
        ExerciseError,
        match=r"expected indices \[0, 1, 3\], got \[0\].*only the "
        "most accurate trial",
    ):
        ch06.check_pareto_front(lambda pts: [max(range(len(pts)), key=lambda i: pts[i][0])])
    with pytest.raises(ExerciseError, match="treated MACs as something to maximise"):
        ch06.check_pareto_front(lambda pts: ch06.pareto_reference([(f, -m) for f, m in pts]))

    def strict(pts):  # drops a trial that another one merely equals
        return [
            i
            for i, p in enumerate(pts)
            if not any(q[0] >= p[0] and q[1] <= p[1] for j, q in enumerate(pts) if j != i)
        ]

    with pytest.raises(ExerciseError, match="ties both stay"):
        ch06.check_pareto_front(strict)
    with pytest.raises(ExerciseError, match="return a list of indices"):
        ch06.check_pareto_front(lambda pts: "A, B, D")
    with pytest.raises(NotSolved, match="pareto_front is not written yet"):
        ch06.check_pareto_front(stub)


def test_spearman_check_accepts_the_solution_and_names_the_slips():
    ch06.check_spearman(solution("spearman")["spearman"])
    with pytest.raises(ExerciseError, match=r"expected 0\.8000.*Pearson's correlation"):
        ch06.check_spearman(ch06._pearson)

    def short_denominator(x, y):
        n = len(x)
        return 1 - 6 * (1 - ch06.spearman_reference(x, y)) * n * (n * n - 1) / 6 / (n * (n - 1))

    with pytest.raises(ExerciseError, match=r"not n\(n - 1\)"):
        ch06.check_spearman(short_denominator)
    with pytest.raises(ExerciseError, match="return one number"):
        ch06.check_spearman(lambda x, y: [0.8])
    with pytest.raises(NotSolved):
        ch06.check_spearman(stub)


def test_share_prediction_refuses_only_what_is_not_a_fraction():
    assert solution("predicted_share")["predicted_share"] == 0.5
    ch06.record_share_prediction(0.3)
    with pytest.raises(
        ExerciseError,
        match=r"looks like a percentage; write it as a fraction "
        r"\(0\.3\)",
    ):
        ch06.record_share_prediction(30)
    with pytest.raises(ExerciseError, match="between 0 and 1"):
        ch06.record_share_prediction(-0.2)
    space = pd.DataFrame(
        {
            "MACs": [1e6, 5e6, 30e6, 40e6, math.nan],
            "rejected": ["", "", "", "", "more than 5 stride-2 stages"],
        }
    )
    line = ch06.check_share_prediction(0.9, space, 10e6)
    assert "space gave 50% of 4 built samples" in line and "too optimistic" in line
    assert "close" in ch06.check_share_prediction(0.45, space, 10e6)


# --- the helpers the chapter relies on -------------------------------------------------------


def test_space_table_prints_every_parameter():
    table = space_table(SearchConfig())
    assert len(table) == 2 + 8 * 5 + 7  # stem, five slots of eight, head/multiples/training
    assert table.loc["s0_module", "how many"] == 8
    assert table.loc["lr", "how many"] == "continuous" and "log scale" in table.loc["lr", "values"]
    assert table.loc["s4_c", "values"].startswith("64 .. 192")  # later slots are wider


def test_a_resumed_study_does_not_repeat_its_first_architectures(tmp_path):
    cfg = SearchConfig(storage=f"sqlite:///{tmp_path / 'study.db'}", seed=0)
    first = load_study(cfg, tmp_path)
    for _ in range(2):
        t = first.ask()
        t.suggest_float("lr", 0.02, 0.2, log=True)
        first.tell(t, state=optuna.trial.TrialState.PRUNED)
    again = load_study(cfg, tmp_path)
    t = again.ask()
    assert t.suggest_float("lr", 0.02, 0.2, log=True) != first.trials[0].params["lr"]


# --- the chapter as a whole ------------------------------------------------------------------


def test_chapter_shape():
    nb = chapter()
    check_structure(nb, "ch06")
    intro = nb.cells[0].source
    for needed in (
        "What you will learn",
        "What to know first",
        "How long it runs",
        "papermill notebooks/06_automl.ipynb",
        "0.035",
    ):
        assert needed in intro, needed
    text = "\n".join(c.source for c in nb.cells).lower()
    assert "did not hand-edit" not in text
    for needed in (
        "## reference results",
        "## takeaways",
        "## further reading",
        "spearman",
        "nsga-ii",
        "trial pruning",
        "weight pruning",
    ):
        assert needed in text, needed


@pytest.mark.slow
def test_chapter_runs_headless(tmp_path, tiny_home):
    nb = execute(
        REPO / "notebooks" / NAME,
        tmp_path / "out.ipynb",
        tiny_home,
        output_dir=str(tmp_path / "run"),
        n_trials=3,
        epochs=1,
        image_sizes=[32],
        budget=20_000_000,
        space_samples=20,
    )
    trials = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert len(trials) == 3 and (trials.state == "COMPLETE").any()
    shown = printed(nb)
    for needed in (
        "parameters; the discrete ones alone give",
        "constraint c",
        "TPE proposes 1.5",
        "trial 0:",
        "MACs %",
        "config(s) to",
        "you predicted 50%",
        "sum d^2 = 2, rho = 0.8",
    ):
        assert needed in shown, needed
    assert list((tmp_path / "run" / "exported").glob("trial_*.yaml"))
    assert (tmp_path / "run" / "space_macs.png").is_file()


def test_student_copy_stops_clearly_at_every_exercise(capsys):
    exercises_in_turn(chapter(), {"ch06": ch06, "math": math}, capsys)
