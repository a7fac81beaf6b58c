"""Chapter 2 (FLOPs and MACs): its exercise checks, its shape, its headless and student runs.

The helpers live in chapters.py (shared by every chapter test): the reference solutions are
read from the chapter itself, so the tests follow the notebook a lecturer teaches from.
"""

from __future__ import annotations

import re

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

from trashkit.exercises import ExerciseError, NotSolved, ch02

NAME = "02_flops_macs.ipynb"


# --- the exercise checks ---------------------------------------------------------------------


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
    check_structure(nb, "ch02", one_solution=False)
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
