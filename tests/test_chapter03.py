"""Chapter 3 (the ShuffleNet V2 guidelines): its exercise checks, its shape, its headless and
student runs. The helpers live in test_chapter02.py."""

from __future__ import annotations

import math
import re

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
from torch import nn

from trashkit.exercises import ExerciseError, NotSolved, ch03

NAME = "03_shufflenetv2_guidelines.ipynb"


def test_mem_1x1_check():
    ns = solution("mem_1x1", NAME)
    ch03.check_mem_1x1(ns["mem_1x1"], ns["mem_bound"])
    bound = ns["mem_bound"]
    with pytest.raises(ExerciseError, match=r"expected 31, got 21.*left out the weights"):
        ch03.check_mem_1x1(lambda h, w, c1, c2: h * w * (c1 + c2), bound)
    with pytest.raises(ExerciseError, match="FLOPs B = hw"):
        ch03.check_mem_1x1(lambda h, w, c1, c2: h * w * c1 * c2, bound)
    with pytest.raises(ExerciseError, match="without the weights' B/\\(hw\\) term"):
        ch03.check_mem_1x1(ns["mem_1x1"], lambda h, w, b: 2 * math.sqrt(h * w * b))
    with pytest.raises(NotSolved, match="mem_1x1 is not written yet"):
        ch03.check_mem_1x1(stub, bound)


def test_equal_flops_widths_check():
    fn = solution("equal_flops_widths", NAME)["equal_flops_widths"]
    assert "1:12 exact (37.0, 443.4) paper (36, 432) FLOPs -5.1%" in ch03.check_equal_flops_widths(
        fn
    )
    with pytest.raises(ExerciseError, match="c1\\*c2 is right but c2/c1 is not r"):
        ch03.check_equal_flops_widths(lambda c, r: (c / r, c * r))
    with pytest.raises(ExerciseError, match="the ratio is right but c1\\*c2"):
        ch03.check_equal_flops_widths(lambda c, r: (c, c * r))
    with pytest.raises(NotSolved):
        ch03.check_equal_flops_widths(stub)


def test_prediction_checks():
    predictions = solution("predictions", NAME)["predictions"]
    ch03.record_predictions(predictions)
    with pytest.raises(ExerciseError, match="no prediction for G2, G3, G4"):
        ch03.record_predictions({"G1": "holds"})
    with pytest.raises(ExerciseError, match="must be one of"):
        ch03.record_predictions({**predictions, "G4": "faster"})
    summary = pd.DataFrame(
        {
            "verdict": ["holds", "does not hold"],
            "measured": ["last row 0.5x [0.4, 0.6]", "1.01x [0.95, 1.1]"],
            "paper": ["p1", "p4"],
        },
        index=["G1 GPU", "G4 GPU"],
    )
    msg = ch03.check_predictions(
        {"G1": "holds", "G2": "holds", "G3": "holds", "G4": "holds"}, summary
    )
    assert "1 of 2 predictions matched" in msg
    assert "G4 GPU: predicted holds, measured does not hold (1.01x [0.95, 1.1]) <- paper: p4" in msg


def test_channel_shuffle_check():
    ch03.check_channel_shuffle(solution("channel_shuffle", NAME)["channel_shuffle"])
    with pytest.raises(ExerciseError, match=r"should be \[0, 2, 1, 3\], got \[0, 1, 2, 3\]"):
        ch03.check_channel_shuffle(lambda x, g: x)

    def wrong_groups(x, g):
        return nn.ChannelShuffle(x.shape[1] // g)(x)

    with pytest.raises(ExerciseError, match="you shuffled with 2 groups"):
        ch03.check_channel_shuffle(wrong_groups)
    with pytest.raises(ExerciseError, match="the shape must not change"):
        ch03.check_channel_shuffle(lambda x, g: x.flatten())
    with pytest.raises(NotSolved):
        ch03.check_channel_shuffle(stub)


def test_chapter_shape_and_required_text():
    nb = chapter(NAME)
    check_structure(nb, "ch03", one_solution=False)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for must in (
        "2\\sqrt{hwB} + B/(hw)",
        "multiply-adds",
        "(90, 180)",
        "(22, 44)",
        "64, 90, 128, 180",
        "within the noise",
        "Reference results",
        "Takeaways",
        "Further reading",
        "papermill",
        "channel shuffle",
        "around 20%",
    ):
        assert must in text, must
    assert "~15%" not in text and "within ~1%" not in text
    assert len(re.findall(r"[A-Za-z]{2,}", text)) >= 1000


@pytest.mark.slow
def test_chapter_runs_headless_quick(tmp_path, tiny_home):
    nb = execute(
        REPO / "notebooks" / NAME,
        tmp_path / NAME,
        tiny_home,
        output_dir=str(tmp_path / "run"),
        quick=True,
    )
    text = printed(nb)
    assert text.count("✓") >= 5  # every exercise check passed and said so
    assert "our unit = torchvision's InvertedResidual" in text
    verdicts = pd.read_csv(tmp_path / "run" / "verdicts.csv")
    assert sorted(verdicts.experiment) == ["G1 ARM", "G2 ARM", "G3 ARM", "G4 ARM"]
    assert set(verdicts.verdict) <= {"holds", "partly", "does not hold"}
    assert (tmp_path / "run" / "relative_speeds.png").is_file()


def test_student_copy_fails_clearly_at_every_exercise(capsys):
    exercises_in_turn(chapter(NAME), {"ch03": ch03, "math": math, "torch": torch}, capsys)


def test_unit_matches_torchvision():
    # the chapter's unit, rebuilt from its cell, equals torchvision's with the same weights
    from torchvision.models.shufflenetv2 import InvertedResidual

    src = next(c.source for c in chapter(NAME).cells if "class ShuffleUnit" in c.source)
    ns = {
        "nn": nn,
        "torch": torch,
        "channel_shuffle": solution("channel_shuffle", NAME)["channel_shuffle"],
        "InvertedResidual": InvertedResidual,
    }
    exec(src.split("print(")[0], ns)  # noqa: S102 - the chapter's own cell
    assert isinstance(ns["ours"], nn.Module)
