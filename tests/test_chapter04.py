"""Chapter 4 (training): its exercise checks, its shape and parameters, its headless run
together with chapter 5 (the smoke test moved here from test_notebooks.py), its student copy.

The reference solutions are read from the chapter itself, so the tests follow the notebook a
lecturer teaches from.
"""

from __future__ import annotations

import json
import math
import re
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from chapters import chapter, check_structure, exercises_in_turn, printed, solution, stub
from conftest import REPO
from test_notebooks import WORKER_NOISE, _text, execute
from torch import nn

from trashkit.exercises import ExerciseError, NotSolved, ch04
from trashkit.notebook import assigned_names
from trashkit.train import TrainConfig
from trashkit.train.setup import build_optimizer

NAME = "04_train.ipynb"


def onecycle_trace(cfg: TrainConfig, steps: int) -> pd.DataFrame:
    """The real scheduler's learning rate and momentum at every step (as the chapter plots)."""
    opt, sched = build_optimizer(cfg, nn.Linear(2, 2), steps)
    rows, total = [], cfg.epochs * steps
    for step in range(total):
        rows.append({"lr": opt.param_groups[0]["lr"], "momentum": opt.param_groups[0]["momentum"]})
        opt.step()
        if step < total - 1:
            sched.step()
    return pd.DataFrame(rows)


# --- the exercise checks ---------------------------------------------------------------------


def test_onecycle_prediction_check():
    cfg = TrainConfig(epochs=3)
    prediction = solution("prediction", NAME, {"config": cfg})["prediction"]
    assert "recorded" in ch04.check_onecycle_prediction(prediction)
    trace = onecycle_trace(cfg, 20)
    assert "4 of 4 right" in ch04.check_onecycle_prediction(prediction, trace)
    wrong = {**prediction, "first_lr": 0.1, "momentum_at_peak": 0.95}
    msg = ch04.check_onecycle_prediction(wrong, trace)
    assert "2 of 4 right" in msg
    assert "warms up from max_lr / div_factor" in msg
    assert "when the lr is highest the momentum is lowest" in msg
    assert "final_div_factor" in ch04.check_onecycle_prediction(
        {**prediction, "last_lr": 0.004}, trace
    )
    with pytest.raises(ExerciseError, match="no value for last_lr, momentum_at_peak"):
        ch04.check_onecycle_prediction({"first_lr": 0.004, "peak_lr": 0.1})
    with pytest.raises(ExerciseError, match="must be a number"):
        ch04.check_onecycle_prediction({**prediction, "peak_lr": "0.1"})
    # a constant momentum (one number) is held: the prediction then is that number
    flat = onecycle_trace(TrainConfig(epochs=1, momentum=0.9), 10)
    assert flat.momentum.nunique() == 1 and flat.momentum.iloc[0] == 0.9


def test_smooth_targets_check():
    ch04.check_smooth_targets(solution("smooth_targets", NAME)["smooth_targets"])

    def other_convention(y, k, eps):
        t = torch.full((len(y), k), eps / (k - 1))
        t[torch.arange(len(y)), y] = 1 - eps
        return t

    with pytest.raises(
        ExerciseError,
        match=r"should be \[0.95, 0.05\], got \[0.9, 0.1\] - that "
        "is the other convention",
    ):
        ch04.check_smooth_targets(other_convention)
    with pytest.raises(ExerciseError, match="each row must sum to 1"):
        ch04.check_smooth_targets(lambda y, k, eps: F.one_hot(y, k) * (1 - eps))
    with pytest.raises(ExerciseError, match=r"expected one row of 2 per label, shape \(1, 2\)"):
        ch04.check_smooth_targets(lambda y, k, eps: torch.zeros(k))
    with pytest.raises(NotSolved, match="smooth_targets is not written yet"):
        ch04.check_smooth_targets(stub)


def test_balanced_weights_check():
    ch04.check_balanced_weights(solution("balanced_weights", NAME)["balanced_weights"])
    with pytest.raises(
        ExerciseError,
        match=r"expected \[0.6667, 2.0\], got \[0.3333, 1.0\] - "
        "1 / n_c without the N / C factor",
    ):
        ch04.check_balanced_weights(lambda labels, n: 1 / np.bincount(labels, minlength=n))
    with pytest.raises(ExerciseError, match="weights the LARGE classes up"):
        ch04.check_balanced_weights(
            lambda labels, n: np.bincount(labels, minlength=n) / len(labels)
        )
    with pytest.raises(ExerciseError, match="divides by zero"), np.errstate(divide="ignore"):
        ch04.check_balanced_weights(
            lambda labels, n: len(labels) / (n * np.bincount(labels, minlength=n).astype(float))
        )
    with pytest.raises(ExerciseError, match="expected one per class"):
        ch04.check_balanced_weights(lambda labels, n: [1.0])


def test_focal_loss_check():
    ch04.check_focal_loss(solution("focal_loss", NAME)["focal_loss"])

    def logp(logits, y):
        return F.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1)

    with pytest.raises(
        ExerciseError,
        match=r"expected 0\.001054, got 0\.105361 - that is plain "
        "cross-entropy",
    ):
        ch04.check_focal_loss(lambda z, y, g: F.cross_entropy(z, y))
    with pytest.raises(ExerciseError, match="you weighted by p_t\\^gamma"):
        ch04.check_focal_loss(lambda z, y, g: (-(logp(z, y).exp() ** g) * logp(z, y)).mean())
    with pytest.raises(ExerciseError, match="note the minus"):
        ch04.check_focal_loss(lambda z, y, g: ((1 - logp(z, y).exp()) ** g * logp(z, y)).mean())
    with pytest.raises(ExerciseError, match="you summed over the batch"):
        ch04.check_focal_loss(lambda z, y, g: (-((1 - logp(z, y).exp()) ** g) * logp(z, y)).sum())
    with pytest.raises(ExerciseError, match="return one number"):
        ch04.check_focal_loss(lambda z, y, g: "small")


def test_scaling_prediction_check():
    prediction = solution("scaling_prediction", NAME)["scaling_prediction"]
    assert "recorded" in ch04.check_scaling_prediction(prediction)
    msg = ch04.check_scaling_prediction(
        prediction, {"macs_ratio_resolution": 2.04, "macs_ratio_depth": 1.44}
    )
    assert "macs_ratio_depth: predicted 1.50, measured 1.44 - well predicted" in msg
    assert "macs_ratio_resolution: predicted 2.25, measured 2.04 - you over-estimated" in msg
    low = ch04.check_scaling_prediction(
        {"macs_ratio_resolution": 1.5, "macs_ratio_depth": 2},
        {"macs_ratio_resolution": 2.04, "macs_ratio_depth": 1.44},
    )
    assert "under-estimated" in low and "less than 2x" in low
    with pytest.raises(ExerciseError, match="must be a positive number"):
        ch04.check_scaling_prediction({"macs_ratio_resolution": -1, "macs_ratio_depth": 2})
    with pytest.raises(ExerciseError, match="no value for macs_ratio_depth"):
        ch04.check_scaling_prediction({"macs_ratio_resolution": 2})


# --- the chapter's shape, claims and parameters ----------------------------------------------


def parameters_cell(nb) -> str:
    return next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))


def test_chapter_shape_and_required_text():
    nb = chapter(NAME)
    check_structure(nb, "ch04", 5, check=r"check_\w+")
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    flat = " ".join(md.split())
    for must in (
        "What you will learn",
        "What to know first",
        "How long it runs",
        "papermill",
        "Reference results",
        "Takeaways",
        "Further reading",
        "regulariser",
        "0.85",
        "0.95",
        "31 bins",
        "group of 4 images",
        "torchrun --nproc_per_node",
        "179",
        "2,127,374",
        "294,854",
        "0.7005",
        "58.34",
        "1.1732",
        "1.1804",
        "0.6986",
        "N / (C\\,n_c)",
        "(1 - p_y)^\\gamma",
        "synthetic",
        "0.836 ± 0.020",
        "0.722 ± 0.006",
    ):
        assert must in flat, must
    text = md + "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "winning teams converged" not in text.lower()
    assert not re.search(r"build_model\([^)]*,\s*6\)", text), "class count must come from data"
    assert len(re.findall(r"[A-Za-z]{2,}", md)) >= 1000


def test_parameters_expose_the_recipe_and_nothing_unused():
    nb = chapter(NAME)
    declared = assigned_names(parameters_cell(nb))
    for name in (
        "momentum",
        "weight_decay",
        "label_smoothing",
        "focal_gamma",
        "val_fraction",
        "test_fraction",
        "amp",
        "crop_scale",
        "mixup",
        "cutmix",
        "ema",
    ):
        assert name in declared, name
    rest = "\n".join(
        c.source
        for c in nb.cells
        if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
    )
    unused = [n for n in declared if not re.search(rf"\b{n}\b", rest)]
    assert not unused, f"parameters never used: {unused}"
    ns: dict = {}
    exec(parameters_cell(nb), ns)  # noqa: S102 - the chapter's own parameters
    assert ns["test_fraction"] > 0  # the default run holds back images chapter 5 scores
    TrainConfig.from_dict(
        {k: ns[k] for k in declared if k not in ("ablation_epochs", "output_dir", "resume")}
    )


def test_defaults_are_the_recommended_trashnet_recipe():
    """Issue 17: benchmarks/trashnet.py's defaults = chapter 4's parameters for TrashNet."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import protocol
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    ns: dict = {}
    exec(parameters_cell(chapter(NAME)), ns)  # noqa: S102
    quick = {
        **protocol.QUICK,
        "val_fraction": protocol.VAL_FRACTION,
        "test_fraction": protocol.TEST_FRACTION,
    }
    for key, value in quick.items():
        assert ns[key] == value, (key, ns[key], value)


# --- headless runs ---------------------------------------------------------------------------


@pytest.mark.slow
def test_train_and_score_chapters(tmp_path, tiny_home, capfd):
    nb = execute(
        "04_train.ipynb",
        tmp_path,
        tiny_home,
        output_dir=str(tmp_path / "train"),
        epochs=3,
        model="tiny",
        image_size=64,
        ablation_epochs=1,
    )
    assert "val_macro_f1" in _text(nb)
    seen = _text(nb, rich=True) + "".join(capfd.readouterr())  # the notebook and stderr
    for noise in WORKER_NOISE:
        assert noise not in seen, f"training in a kernel printed {noise!r}"
    text = printed(nb)
    assert "= the inline epoch's" in text  # the 15-line epoch equals train()'s first epoch
    assert text.count("✓") >= 7  # every exercise check passed and said so
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["input_size"] == 64 and metrics["macs"] > 0
    assert metrics["n_test"] > 0  # the default run holds back test images
    assert len(list((tmp_path / "train" / "exercise-4.5").glob("*/best.pt"))) == 4
    nb = execute(
        "05_score.ipynb",
        tmp_path,
        tiny_home,
        checkpoint=str(tmp_path / "train" / "best.pt"),
        output_dir=str(tmp_path / "score"),
        latency_runs=3,
        interactive=False,
    )
    scores = json.loads((tmp_path / "score" / "scores.json").read_text())
    for key in (
        "f1",
        "macs",
        "params",
        "latency_ms",
        "submit_time_s",
        "score_macs",
        "score_time",
        "submit_ms_per_image",
        "submit_time_scaled_s",
    ):
        assert scores[key] is not None, key
    assert scores["f1_source"].startswith("test split of")
    assert "x 5217 images" in scores["score_time_basis"]
    assert (tmp_path / "score" / "submission.csv").is_file()
    assert (tmp_path / "score" / "leaderboard.csv").is_file()
    text = printed(nb)
    assert text.count("✓") >= 5 and "test (chose nothing)" in text
    assert "WARNING" not in text


def test_student_copy_fails_clearly_at_every_exercise(capsys):
    exercises_in_turn(
        chapter(NAME),
        {
            "ch04": ch04,
            "config": TrainConfig(),
            "math": math,
            "torch": torch,
            "nn": nn,
            "F": F,
            "np": np,
        },
        capsys,
        ("not yet solved",),
    )
