"""Chapter 8 (metric learning): it runs headless, and its exercise checks accept the answers
and name the mistakes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F


@pytest.mark.slow
def test_chapter_8_runs_headless_on_the_default(tmp_path, tiny_home):
    from test_notebooks import _text, execute

    nb = execute(
        "08_metric_learning.ipynb",
        tmp_path,
        tiny_home,
        quick=True,
        output_dir=str(tmp_path / "run"),
    )
    text = _text(nb, rich=True)
    assert "SYNTHETIC" in text and "nearest class mean" in text
    assert (tmp_path / "run" / "embedding_space.png").is_file()


def test_chapter_8_checks_accept_the_answers_and_name_the_mistakes():
    from trashkit.exercises import ExerciseError, ch08

    ch08.check_arcface_logit(lambda c, s, m: s * math.cos(math.acos(c) + m))
    with pytest.raises(ExerciseError, match="CosFace"):
        ch08.check_arcface_logit(lambda c, s, m: s * (c - m))
    with pytest.raises(ExerciseError, match="without the scale"):
        ch08.check_arcface_logit(lambda c, s, m: math.cos(math.acos(c) + m))

    def right(vectors, labels, queries, n):
        sums = torch.zeros(n, vectors.shape[1]).index_add_(0, torch.as_tensor(labels), vectors)
        return (queries @ F.normalize(sums, dim=1).T).argmax(1).numpy()

    def unnormalised(vectors, labels, queries, n):
        means = torch.stack([vectors[torch.as_tensor(labels) == j].mean(0) for j in range(n)])
        return (queries @ means.T).argmax(1).numpy()

    ch08.check_nearest_class_mean(right)
    with pytest.raises(ExerciseError, match="un-normalised"):
        ch08.check_nearest_class_mean(unnormalised)
    measured = {"loss_without": 0.37, "loss_with": 1.13, "prediction_changed": False}
    ch08.check_margin_prediction("up", False, measured)
    with pytest.raises(ExerciseError, match="only inside ArcFaceLoss"):
        ch08.check_margin_prediction("up", True, measured)
    cost = {"n_small": 500, "n_large": 5000, "dim": 512, "macs_ratio": 10.0, "time_ratio": 4.0}
    assert "fixed costs" in ch08.check_search_cost(10, 4, cost)
    with pytest.raises(ExerciseError, match="n x d MACs"):
        ch08.check_search_cost(100, 4, cost)
