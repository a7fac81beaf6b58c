"""Both competition scores, case by case, against hand computations."""

from __future__ import annotations

import math

import pytest

from trashkit.scoring import F1_BASELINE_MACS, MACS_BASELINE, TIME_BASELINE, score_macs, score_time


def test_macs_edition_cases():
    # F1 below 0.5: the F1 term is 1 whatever the F1
    assert score_macs(0.3, MACS_BASELINE) == pytest.approx(2.0)
    assert score_macs(0.49, MACS_BASELINE / 2) == pytest.approx(1.5)
    # between 0.5 and the baseline: full weight
    assert score_macs(0.6, 2e6) == pytest.approx(2e6 / 13_863_553 + 1 - 0.6 / 0.8366)
    # exactly the baseline: F1 term 0
    assert score_macs(F1_BASELINE_MACS, MACS_BASELINE) == pytest.approx(1.0)
    # above the baseline: half weight, so it can go negative
    assert score_macs(0.9, 1e5) == pytest.approx(1e5 / 13_863_553 + 0.5 * (1 - 0.9 / 0.8366))
    assert score_macs(0.95, 0) < 0
    # overridable baselines
    assert score_macs(0.8, 10, macs_baseline=10, f1_baseline=0.8) == pytest.approx(1.0)


def test_time_edition():
    # at F1 = baseline the sigmoid is 1/2: 0.5 t/t_base + 0.5
    for t in (10.0, 43.15, 60.0):
        assert score_time(0.70, t) == pytest.approx(0.5 * t / TIME_BASELINE + 0.5)
    # the published target row: F1 0.70 at 60 s -> ~1.195
    assert score_time(0.70, 60.0) == pytest.approx(1.195, abs=5e-4)
    # better F1 lowers the score smoothly
    assert score_time(0.9, 43.15) == pytest.approx(0.5 + 1 / (1 + math.exp(4)))
    assert score_time(0.5, 1.0, time_baseline=2.0, f1_baseline=0.5) == pytest.approx(0.75)
