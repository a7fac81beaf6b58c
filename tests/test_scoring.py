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


#: the team's wrap-up report (submit-time edition), rows 1-5, and the edition's target row
PUBLISHED_TIME_ROWS = [
    (0.6880, 84.9850, 1.5460),
    (0.6530, 92.9260, 1.7950),
    (0.6870, 63.0780, 1.2950),
    (0.7005, 58.3412, 1.1732),
    (0.7012, 58.1225, 1.1676),
    (0.70, 60.0, 1.195),
]


def test_time_baseline_solved_from_the_published_rows():
    from trashkit.scoring import solve_time_baseline, time_baseline_from_row

    fit = solve_time_baseline(PUBLISHED_TIME_ROWS)
    assert fit["time_baseline"] == pytest.approx(43.15, abs=0.005)  # the default, rounded
    assert min(fit["per_row"]) == pytest.approx(43.083, abs=1e-3)  # row 1, the odd one
    assert max(abs(r) for r in fit["residuals"][1:]) < 9e-4
    assert fit["residuals"][0] == pytest.approx(-0.0016, abs=1e-4)
    # one row solved exactly reproduces its own score
    t0 = time_baseline_from_row(0.7012, 58.1225, 1.1676)
    assert score_time(0.7012, 58.1225, time_baseline=t0) == pytest.approx(1.1676, abs=1e-12)
    # exact rows made with another baseline give that baseline back
    made = [(f, t, score_time(f, t, time_baseline=50.0)) for f, t, _ in PUBLISHED_TIME_ROWS]
    assert solve_time_baseline(made)["time_baseline"] == pytest.approx(50.0, rel=1e-12)
    with pytest.raises(ValueError, match="below its F1 term"):
        time_baseline_from_row(0.5, 10.0, 0.5)


def test_implied_f1_inverts_the_time_score():
    from trashkit.scoring import implied_f1_time

    for f1, t in [(0.6, 80.0), (0.7012, 58.1225), (0.75, 30.0)]:
        assert implied_f1_time(score_time(f1, t), t) == pytest.approx(f1, abs=1e-9)
    # rows 1-3 are published as 0.688 / 0.653 / 0.687: the implied F1 rounds to them
    for f1, t, s in PUBLISHED_TIME_ROWS[:3]:
        assert round(implied_f1_time(s, t), 3) == pytest.approx(f1)
    with pytest.raises(ValueError, match="outside"):
        implied_f1_time(3.0, 10.0)


def test_macs_baselines_solved_from_rows_of_every_branch():
    from trashkit.scoring import solve_macs_baselines

    pts = [(0.62, 4e6), (0.78, 9e6), (0.90, 12e6), (0.45, 2e6)]
    exact = [(f, m, score_macs(f, m)) for f, m in pts]
    fit = solve_macs_baselines(exact)
    assert fit["macs_baseline"] == pytest.approx(MACS_BASELINE, rel=1e-9)
    assert fit["f1_baseline"] == pytest.approx(F1_BASELINE_MACS, rel=1e-9)
    # two rows on the F1 ramp, printed to 4 decimals, fix both to about 0.1%
    two = [(f, m, round(score_macs(f, m), 4)) for f, m in pts[:2]]
    fit = solve_macs_baselines(two)
    assert fit["macs_baseline"] == pytest.approx(MACS_BASELINE, rel=2e-3)
    assert fit["f1_baseline"] == pytest.approx(F1_BASELINE_MACS, rel=2e-3)


def test_resample_halves():
    import numpy as np

    from trashkit.metrics import macro_f1
    from trashkit.scoring import resample_halves

    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    pred = np.where(rng.random(300) < 0.7, y, rng.integers(0, 4, 300))
    df = resample_halves(y, {"a": pred, "b": y}, 120, draws=5, seed=3)
    assert len(df) == 10 and set(df.team) == {"a", "b"}
    assert (df[df.team == "b"][["public", "private"]] == 1.0).all().all()
    order = np.random.default_rng(3).permutation(300)  # draw 0 by hand
    first = df[(df.draw == 0) & (df.team == "a")].iloc[0]
    assert first.public == pytest.approx(macro_f1(y[order[:120]], pred[order[:120]], 4))
    assert first.private == pytest.approx(macro_f1(y[order[120:]], pred[order[120:]], 4))
    right = pred == y
    acc = resample_halves(np.ones(300, bool), {"a": right}, 120, 2, 3, "accuracy")
    assert acc.public[0] == pytest.approx(right[order[:120]].mean())
    with pytest.raises(ValueError, match="must split"):
        resample_halves(y, {"a": pred}, 300)


def test_held_out_split_falls_back_to_validation_and_says_so():
    from trashkit.scoring import held_out_split

    assert held_out_split({"test_fraction": 0.2}) == ("test", None)
    assert held_out_split({"test_fraction": 0.2}, "val") == ("val", None)
    split, warning = held_out_split({"test_fraction": 0.0})
    assert split == "val" and "held back no test images" in warning and "optimistic" in warning
    assert held_out_split({})[0] == "val"  # an old config without the field
    with pytest.raises(ValueError, match="use 'test'"):
        held_out_split({}, "train")


@pytest.mark.slow
def test_score_held_out_and_score_at_size(trained_run):
    from trashkit.checkpoint import load_checkpoint
    from trashkit.scoring import score_at_size, score_held_out, score_run_split

    folder, _ = trained_run  # trained with test_fraction 0
    ckpt = load_checkpoint(folder / "best.pt")
    res = score_held_out(ckpt)
    assert res["split"] == "val" and "optimistic" in res["warning"]
    assert res["f1"] == pytest.approx(score_run_split(ckpt, "val")["f1"])
    same = score_at_size(ckpt, ckpt.image_size, "val")
    assert same["f1"] == pytest.approx(res["f1"])
    small = score_at_size(ckpt, 32, "val")
    assert small["macs"] < same["macs"] and 0 <= small["f1"] <= 1
    assert small["score_macs"] == pytest.approx(score_macs(small["f1"], small["macs"]))
    with pytest.raises(ValueError, match="no test images"):
        score_at_size(ckpt, 32, "test")
