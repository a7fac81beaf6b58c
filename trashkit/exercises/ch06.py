"""Checks for chapter 6's exercises (AutoML: the space, the Pareto front, the proxy).

Each check tries the student's answer on cases a pencil can follow, and when it is wrong says
which case, what was expected, and which common slip the wrong answer matches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .core import ExerciseError, call, close, ok, require

# --- Exercise 6.1: how much of the space fits the budget? (predict before you run) ----------


def record_share_prediction(share: float) -> str:
    """Check that a predicted share is a fraction, before the space is sampled."""
    _check_fraction(share)
    return ok(f"prediction recorded: {share:.0%} of the samples under the budget")


def _check_fraction(share: float) -> None:
    require(
        isinstance(share, int | float) and not isinstance(share, bool),
        f"predicted_share = {share!r}: give a number, the fraction of samples under budget",
    )
    require(
        not 1 < share <= 100,
        f"predicted_share = {share}: that looks like a percentage; "
        f"write it as a fraction ({share / 100:g})",
    )
    require(0 <= share <= 1, f"predicted_share = {share}: a share lies between 0 and 1")


def check_share_prediction(share: float, space: pd.DataFrame, budget: float) -> str:
    """Compare the predicted share with the sampled one and explain the difference.

    A prediction is a guess, so a far-off one is explained rather than rejected: the point
    is to notice *why* the space is where it is.
    """
    _check_fraction(share)
    built = space.MACs.dropna()
    measured = float((built <= budget).mean()) if len(built) else 0.0
    rejected = int((space.rejected != "").sum())
    gap = share - measured
    if abs(gap) <= 0.15:
        verdict = "close: you have a feel for where this space's MACs lie"
    elif gap > 0:
        verdict = (
            "too optimistic: a network's MACs grow with the *square* of the input side "
            "and with the product of neighbouring channel counts, so a few wide slots "
            "at high resolution put most random samples over the budget"
        )
    else:
        verdict = (
            "too pessimistic: the space was calibrated (channels grow with depth, "
            "Fire/Bottleneck downsample through a max-pool), so cheap networks are common"
        )
    return ok(
        f"you predicted {share:.0%}, the space gave {measured:.0%} of {len(built)} built "
        f"samples under {budget:,.0f} ({rejected} of {len(space)} rejected before "
        f"costing) - {verdict}"
    )


# --- Exercise 6.2: the Pareto front of (macro-F1 up, MACs down) -----------------------------

PARETO_CASES: list[list[tuple[float, float]]] = [
    [(0.80, 9e6), (0.78, 4e6), (0.75, 5e6), (0.70, 2e6), (0.80, 12e6)],  # the chapter's toy
    [(0.5, 1.0)],  # one trial
    [(0.7, 3.0), (0.7, 3.0), (0.6, 5.0)],  # a tie
    [(0.9, 1.0), (0.8, 2.0), (0.7, 3.0)],  # one dominates all
    [(0.6, 1.0), (0.7, 2.0), (0.8, 3.0), (0.75, 2.5), (0.65, 2.0)],
]


def pareto_reference(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (F1 >=, MACs <=, one of them strictly)."""
    f1, macs = np.asarray(points, dtype=float).reshape(-1, 2).T
    no_worse = (f1[:, None] >= f1[None, :]) & (macs[:, None] <= macs[None, :])
    better = (f1[:, None] > f1[None, :]) | (macs[:, None] < macs[None, :])
    return np.flatnonzero(~(no_worse & better).any(axis=0)).tolist()


def _pareto_slips(points: list[tuple[float, float]]) -> dict[frozenset, str]:
    """Wrong fronts a student is likely to return, with what each means."""
    flipped = [(f, -m) for f, m in points]
    strict = [
        i
        for i, p in enumerate(points)
        if not any(q[0] >= p[0] and q[1] <= p[1] for j, q in enumerate(points) if j != i)
    ]
    best = max(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    return {
        frozenset(pareto_reference(flipped)): "you treated MACs as something to maximise: "
        "fewer MACs is better",
        frozenset(strict): "a point equal to another one does not dominate it: dominating "
        "needs strictly better in at least one objective, so ties both stay",
        frozenset([best]): "that is only the most accurate trial: the front also holds the "
        "cheaper trials nothing beats on both counts",
        frozenset(range(len(points))): "you returned every trial: drop those another trial "
        "beats on both objectives",
    }


def check_pareto_front(fn: Callable[[list[tuple[float, float]]], list[int]]) -> str:
    """``fn(points) -> indices`` of the Pareto-optimal points of ``(F1, MACs)`` pairs."""
    for points in PARETO_CASES:
        got = call(fn, list(points), name="pareto_front")
        require(
            isinstance(got, list | tuple | set) and all(isinstance(i, int) for i in got),
            f"pareto_front({points}) returned {got!r}: return a list of indices (ints)",
        )
        want = pareto_reference(points)
        if sorted(set(got)) == want:
            continue
        slip = _pareto_slips(points).get(frozenset(got), "")
        raise ExerciseError(
            f"pareto_front({points}): expected indices {want}, got {sorted(got)}."
            + (
                f" It looks like {slip}."
                if slip
                else " Keep trial i unless some trial j has F1_j >= F1_i and MACs_j <= MACs_i, "
                "better in at least one."
            )
        )
    return ok(
        f"pareto_front right on {len(PARETO_CASES)} sets of trials (ties and a single "
        "trial included); on the chapter's toy: trials 0, 1 and 3"
    )


# --- Exercise 6.3: Spearman's rank correlation by hand ----------------------------------------

SPEARMAN_CASES: list[tuple[list[float], list[float]]] = [
    ([0.30, 0.45, 0.50, 0.60], [0.70, 0.72, 0.80, 0.76]),  # the chapter's toy: rho = 0.8
    ([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]),  # reversed: -1
    ([0.1, 0.9, 0.5, 0.3, 0.7], [10.0, 50.0, 30.0, 20.0, 40.0]),
    ([0.2, 0.4, 0.1, 0.3], [0.25, 0.85, 0.5, 0.9]),
]


def spearman_reference(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (scipy's; equal to 1 - 6 sum d^2 / (n (n^2 - 1)) when
    there are no ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def _pearson(x: Sequence[float], y: Sequence[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


def _spearman_slips(x: list[float], y: list[float]) -> list[tuple[float, str]]:
    n = len(x)
    rho = spearman_reference(x, y)
    d2 = (1 - rho) * n * (n * n - 1) / 6
    return [
        (_pearson(x, y), "that is Pearson's correlation of the raw values: rank them first"),
        (1 - 6 * d2 / (n * (n - 1)), "the denominator is n(n^2 - 1), not n(n - 1)"),
        (1 - d2 / (n * (n * n - 1)), "you left out the factor 6"),
        (-rho, "the sign is flipped: rank both lists the same way (smallest = rank 1)"),
        (1 - 6 * d2 / (n * n * n), "the denominator is n(n^2 - 1), not n^3"),
    ]


def check_spearman(fn: Callable[[list[float], list[float]], float]) -> str:
    """``fn(x, y) -> rho`` for two lists without ties."""
    for x, y in SPEARMAN_CASES:
        got = call(fn, list(x), list(y), name="spearman")
        require(
            isinstance(got, int | float) and not isinstance(got, bool),
            f"spearman({x}, {y}) returned {got!r}: return one number",
        )
        want = spearman_reference(x, y)
        if close(got, want, rel=1e-9, abs_tol=1e-9):
            continue
        slip = next(
            (
                why
                for value, why in _spearman_slips(x, y)
                if close(got, value, rel=1e-9, abs_tol=1e-9)
            ),
            "",
        )
        raise ExerciseError(
            f"spearman({x}, {y}): expected {want:.4f}, got {got}."
            + (
                f" It looks like {slip}."
                if slip
                else " Rank each list (smallest = 1), take d = rank_x - rank_y, then "
                "1 - 6 * sum(d^2) / (n * (n^2 - 1))."
            )
        )
    return ok(
        f"spearman right on {len(SPEARMAN_CASES)} pairs of lists; on the chapter's toy "
        "rho = 0.8: the short runs put two of the four architectures in the wrong order"
    )
