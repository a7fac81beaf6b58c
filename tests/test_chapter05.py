"""Chapter 5 (scoring): its exercise checks, its shape and claims, and its headless run on a
checkpoint whose run held back no test images (the fallback a student meets with a run
trained by hand). Its run on chapter 4's checkpoint is test_chapter04's
``test_train_and_score_chapters``."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from chapters import chapter, check_structure, exercises_in_turn, printed, solution, stub
from test_notebooks import execute

from trashkit import scoring
from trashkit.exercises import ExerciseError, NotSolved, ch05
from trashkit.notebook import assigned_names

NAME = "05_score.ipynb"


def test_score_macs_check():
    ch05.check_score_macs(solution("my_score_macs", NAME)["my_score_macs"])

    def no_jump(f1, macs):
        return macs / 13_863_553 + (1 - f1 / 0.8366 if f1 < 0.8366 else 0.5 * (1 - f1 / 0.8366))

    with pytest.raises(ExerciseError, match=r"f1=0.49.*below F1 0.5 the F1 term is 1"):
        ch05.check_score_macs(no_jump)

    def full_weight(f1, macs):
        return macs / 13_863_553 + (1.0 if f1 < 0.5 else 1 - f1 / 0.8366)

    with pytest.raises(ExerciseError, match=r"f1=0.9,.*has half weight"):
        ch05.check_score_macs(full_weight)
    with pytest.raises(ExerciseError, match="the MACs term is missing"):
        ch05.check_score_macs(lambda f1, macs: scoring.score_f1_part(f1))
    with pytest.raises(ExerciseError, match="you inverted it"):
        ch05.check_score_macs(lambda f1, macs: 13_863_553 / macs + scoring.score_f1_part(f1))
    with pytest.raises(NotSolved, match="my_score_macs is not written yet"):
        ch05.check_score_macs(stub)


def test_score_time_check():
    assert "scores 1.1675" in ch05.check_score_time(
        solution("my_score_time", NAME)["my_score_time"]
    )

    def sig(z):
        return 1 / (1 + math.exp(-z))

    with pytest.raises(ExerciseError, match="a better F1 must LOWER the score"):
        ch05.check_score_time(lambda f1, t: 0.5 * t / 43.15 + sig(20 * (f1 - 0.70)))
    with pytest.raises(ExerciseError, match="the time term has weight 0.5"):
        ch05.check_score_time(lambda f1, t: t / 43.15 + sig(20 * (0.70 - f1)))
    with pytest.raises(ExerciseError, match="factor 20 inside the sigmoid is missing"):
        ch05.check_score_time(lambda f1, t: 0.5 * t / 43.15 + sig(0.70 - f1))


def test_class_report_check():
    assert "macro-F1 only 0.750" in ch05.check_class_report(
        solution("class_report", NAME)["class_report"]
    )
    good = solution("class_report", NAME)["class_report"]

    def swapped(cm):
        r = good(cm)
        return {**r, "precision": r["recall"], "recall": r["precision"]}

    with pytest.raises(ExerciseError, match="precision and recall are swapped"):
        ch05.check_class_report(swapped)

    def accuracy(cm):
        return {**good(cm), "macro_f1": np.trace(cm) / cm.sum()}

    with pytest.raises(ExerciseError, match="that is the accuracy"):
        ch05.check_class_report(accuracy)

    def weighted(cm):
        r = good(cm)
        return {**r, "macro_f1": np.average(r["f1"], weights=cm.sum(1))}

    with pytest.raises(ExerciseError, match="support-weighted mean"):
        ch05.check_class_report(weighted)

    def nan_precision(cm):
        with np.errstate(invalid="ignore", divide="ignore"):
            return {**good(cm), "precision": np.diag(cm) / cm.sum(0)}

    with pytest.raises(ExerciseError, match="never predicted has precision 0/0"):
        ch05.check_class_report(nan_precision)


def test_optimism_prediction_check():
    assert "recorded" in ch05.check_optimism_prediction("validation higher")
    msg = ch05.check_optimism_prediction("validation higher", 0.735, 0.716)
    assert "measured 'validation higher'" in msg and "as predicted" in msg
    msg = ch05.check_optimism_prediction("validation higher", 0.70, 0.73)
    assert "a surprise" in msg and "noise can outweigh the optimism" in msg
    assert "about equal" in ch05.check_optimism_prediction("about equal", 0.700, 0.705)
    with pytest.raises(ExerciseError, match="choose one of"):
        ch05.check_optimism_prediction("higher")


def test_student_copy_fails_clearly_at_every_exercise(capsys):
    exercises_in_turn(
        chapter(NAME), {"ch05": ch05, "math": math, "np": np}, capsys, ("not yet solved",)
    )


def test_chapter_shape_and_required_text():
    nb = chapter(NAME)
    check_structure(nb, "ch05", 4, check=r"check_\w+")
    md = " ".join("\n".join(c.source for c in nb.cells if c.cell_type == "markdown").split())
    for must in (
        "What you will learn",
        "What to know first",
        "How long it runs",
        "papermill",
        "Reference results",
        "Takeaways",
        "Further reading",
        "58.1225",
        "1.1676",
        "13{,}863{,}553",
        "0.8366",
        "43.15",
        "5,217",
        "not comparable",
        "0.797",
        "0.716",
        "0.735",
        "find_checkpoint",
        "chosen on purpose",
        "f1 on",
        "synthetic",
        "p90",
        "support",
    ):
        assert must in md, must
    assert len(re.findall(r"[A-Za-z]{2,}", md)) >= 1000
    params = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    ns: dict = {}
    exec(params, ns)  # noqa: S102 - the chapter's own parameters
    assert ns["split"] == "test" and ns["checkpoint"] is None
    rest = "\n".join(
        c.source
        for c in nb.cells
        if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
    )
    assert not [n for n in assigned_names(params) if not re.search(rf"\b{n}\b", rest)]


def test_published_rows_agree_with_the_formula():
    """The chapter's claim: the team's rows recomputed with the back-derived baselines agree
    with the published scores to within 0.0006 (the constants are rounded)."""
    for f1, t, published in [
        (0.687, 63.08, 1.295),
        (0.7005, 58.34, 1.1732),
        (0.7012, 58.1225, 1.1676),
        (0.70, 60.0, 1.195),
    ]:
        assert abs(scoring.score_time(f1, t) - published) < 6e-4


@pytest.mark.slow
def test_chapter_on_a_run_without_test_images(tmp_path, tiny_home, tiny_crops):
    """A run trained with test_fraction 0 (TrainConfig's default): chapter 5 says so, scores
    the validation images and labels the F1 as the split that chose best.pt."""
    from trashkit.train import train

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRASHKIT_HOME", str(tiny_home))
        train(
            {
                "model": "tiny",
                "image_size": 48,
                "epochs": 1,
                "batch_size": 32,
                "data": str(tiny_crops),
            },
            tmp_path / "run",
            progress=False,
        )
    nb = execute(
        NAME,
        tmp_path,
        tiny_home,
        checkpoint=str(tmp_path / "run" / "best.pt"),
        output_dir=str(tmp_path / "score"),
        latency_runs=3,
        interactive=False,
        test_folder=str(tiny_crops / "test" / "NoLabel"),
    )
    text = printed(nb)
    assert "WARNING: this run held back no test images" in text
    assert "the gap cannot be measured" in text
    scores = json.loads((tmp_path / "score" / "scores.json").read_text())
    assert "chose best.pt: optimistic" in scores["f1_source"]
    assert scores["n_test"] == len(list((tiny_crops / "test" / "NoLabel").iterdir()))
