"""Chapter 6 (AutoML): its exercise checks, its shape, its headless and student runs.

The reference solutions are read from the chapter itself (its exercise cells, without the
check call), so the tests follow the notebook a lecturer teaches from.
"""

from __future__ import annotations

import math

import optuna
import pandas as pd
import pytest
from chapters import (
    chapter,
    check_structure,
    execute,
    exercises_in_turn,
    printed,
    solution,
    stub,
)
from conftest import REPO

from trashkit.exercises import ExerciseError, NotSolved, ch06
from trashkit.search import SearchConfig, load_study, space_table

NAME = "06_automl.ipynb"


# --- the exercise checks ---------------------------------------------------------------------


def test_pareto_check_accepts_the_solution_and_names_the_slips():
    ch06.check_pareto_front(solution("pareto_front", NAME)["pareto_front"])
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
    ch06.check_spearman(solution("spearman", NAME)["spearman"])
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
    assert solution("predicted_share", NAME)["predicted_share"] == 0.5
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
    nb = chapter(NAME)
    check_structure(nb, "ch06")
    assert "predict before you run" in "\n".join(c.source for c in nb.cells).lower()
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
    exercises_in_turn(chapter(NAME), {"ch06": ch06, "math": math}, capsys)
