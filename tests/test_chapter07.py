"""Chapter 7 (compression): its exercise checks, its shape, its headless run.

The reference solutions are read from the chapter itself (its exercise cells, without the
check call), so the tests follow the notebook a lecturer teaches from.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from conftest import REPO
from chapters import (
    chapter,
    check_structure,
    execute,
    exercises_in_turn,
    printed,
    solution,
    stub,
)

from trashkit.exercises import ExerciseError, NotSolved, ch07

NAME = "07_compress.ipynb"


def solved(name: str):
    return solution(name, NAME, {"torch": torch})[name]


# --- the exercise checks ---------------------------------------------------------------------


def test_kd_check_accepts_the_solution_and_names_the_slips():
    ch07.check_kd_loss(solved("kd_by_hand"))

    def no_t2(s, t, hard, temp, alpha):
        ps, pt = ch07._softmax(s, temp), ch07._softmax(t, temp)
        return alpha * ch07._kl(pt, ps) + (1 - alpha) * hard

    with pytest.raises(ExerciseError, match=r"expected 0\.608198.*left out the T\^2 factor"):
        ch07.check_kd_loss(no_t2)

    def reversed_kl(s, t, hard, temp, alpha):
        ps, pt = ch07._softmax(s, temp), ch07._softmax(t, temp)
        return alpha * temp * temp * ch07._kl(ps, pt) + (1 - alpha) * hard

    with pytest.raises(ExerciseError, match="KL is the wrong way round"):
        ch07.check_kd_loss(reversed_kl)
    with pytest.raises(ExerciseError, match="return one number"):
        ch07.check_kd_loss(lambda *a: None)
    with pytest.raises(NotSolved, match="kd_by_hand is not written yet"):
        ch07.check_kd_loss(stub)


def test_keep_channels_check_accepts_the_solution_and_names_the_slips():
    ch07.check_keep_channels(solved("keep_channels"))

    def by_l1(w, n):
        return torch.argsort(w.flatten(1).abs().sum(1), descending=True)[:n].tolist()

    with pytest.raises(ExerciseError, match=r"expected \[0, 3\], got \[0, 1\].*L1 norm"):
        ch07.check_keep_channels(by_l1)

    def signed(w, n):
        return torch.argsort(w.flatten(1).sum(1), descending=True)[:n].tolist()

    with pytest.raises(ExerciseError, match="summed the signed weights"):
        ch07.check_keep_channels(signed)
    with pytest.raises(ExerciseError, match="return a list of filter indices"):
        ch07.check_keep_channels(lambda w, n: None)


def test_affine_params_check_accepts_the_solution_and_names_the_slips():
    ch07.check_affine_params(solved("affine_qparams"))
    with pytest.raises(ExerciseError, match=r"255 steps between 0 and 255, not 256"):
        ch07.check_affine_params(lambda lo, hi: ((hi - lo) / 256, round(-lo / ((hi - lo) / 256))))
    with pytest.raises(ExerciseError, match=r"lo=0\.5, hi=2\.55.*range must include 0"):
        ch07.check_affine_params(lambda lo, hi: ((hi - lo) / 255, round(-lo / ((hi - lo) / 255))))
    with pytest.raises(ExerciseError, match="zero point must be an integer"):
        ch07.check_affine_params(
            lambda lo, hi: (
                (max(hi, 0) - min(lo, 0)) / 255,
                -min(lo, 0) * 255 / (max(hi, 0) - min(lo, 0)),
            )
        )
    with pytest.raises(ExerciseError, match=r"return \(scale, zero_point\)"):
        ch07.check_affine_params(lambda lo, hi: 0.01)


def test_speedup_prediction_is_explained_not_rejected():
    assert solved("predicted_speedup") > 0
    line = ch07.check_speedup_prediction(1 / 0.57, 0.57, 1.1)
    assert "from the MACs alone" in line and "measured 1.10x for 57% of the MACs" in line
    assert "close" in ch07.check_speedup_prediction(1.12, 0.57, 1.1)
    with pytest.raises(ExerciseError, match="give a positive number"):
        ch07.record_speedup_prediction(0)


def test_student_copy_stops_clearly_at_every_exercise(capsys):
    exercises_in_turn(chapter(NAME), {"ch07": ch07, "math": math, "torch": torch}, capsys)


# --- the chapter as a whole ------------------------------------------------------------------


def test_chapter_shape():
    nb = chapter(NAME)
    check_structure(nb, "ch07")
    intro = nb.cells[0].source
    for needed in (
        "What you will learn",
        "What to know first",
        "How long it runs",
        "papermill notebooks/07_compress.ipynb",
        "1.06–1.15×",
        "1.00×",
    ):
        assert needed in intro, needed
    text = "\n".join(c.source for c in nb.cells).lower()
    assert "really drop" not in text
    for needed in (
        "## reference results",
        "## takeaways",
        "## further reading",
        "kd_temperature",
        "kd_alpha",
        "meaningless",
        "fair baseline",
    ):
        assert needed in text, needed


@pytest.mark.slow
def test_chapter_runs_headless(tmp_path, tiny_home, isolated_home):
    from trashkit.train import train

    train(
        {"model": "tiny", "image_size": 48, "epochs": 1, "batch_size": 32},
        tmp_path / "orig",
        progress=False,
    )
    nb = execute(
        REPO / "notebooks" / NAME,
        tmp_path / "out.ipynb",
        tiny_home,
        output_dir=str(tmp_path / "run"),
        checkpoint=str(tmp_path / "orig" / "best.pt"),
        train_epochs=1,
        finetune_epochs=1,
        student="tiny",
        latency_runs=3,
        scan_ratios=[0.6, 0.3],
        scan_epochs=1,
    )
    table = pd.read_csv(tmp_path / "run" / "variants.csv").set_index("variant")
    assert {
        "original",
        "original + same extra epochs",
        "pruned",
        "decomposed",
        "student alone (tiny)",
        "student distilled (tiny)",
        "ONNX Runtime fp32",
        "ONNX Runtime int8",
    } <= set(table.index)
    assert "ArcFace head" not in table.index  # chapter 8; only on request here
    assert pd.isna(table.loc["ONNX Runtime int8", "MACs"])
    assert "not countable" in table.loc["ONNX Runtime int8", "note"]
    assert table.loc["pruned", "MACs"] <= 0.6 * table.loc["original", "MACs"]
    scan = pd.read_csv(tmp_path / "run" / "sensitivity.csv")
    assert list(scan.target) == [1.0, 0.6, 0.3]
    # each point keeps fewer MACs than the one before; the tiny net reaches 0.6 (not 0.3)
    assert scan["kept MACs"].is_monotonic_decreasing and scan["kept MACs"][1] <= 0.6
    assert (scan["MACs"] / scan["MACs"][0]).round(6).tolist() == scan["kept MACs"].round(6).tolist()
    shown = printed(nb)
    for needed in (
        "= trashkit's kd_loss",
        "torch-pruning builds the same network",
        "ONNX Runtime agrees",
        "WARNING: runs this short",
        "you predicted 1.20x",
    ):
        assert needed in shown, needed
    for figure in ("variants.png", "sensitivity.png", "cross_chapter.png"):
        assert (tmp_path / "run" / figure).is_file(), figure
