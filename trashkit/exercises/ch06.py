"""Checks for chapter 6's exercises (AutoML: the front, the samplers, the proxy, the supernet).

Each check tries the student's answer on cases a pencil can follow, compares it with a library
(Optuna, SciPy) or with trashkit's own helpers, and when it is wrong says which case, what was
expected, and which common slip the wrong answer matches. The design task's check measures
the sub-network it is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..scoring import MACS_BASELINE, score_f1_part, score_macs
from .core import ExerciseError, call, close, ok, require

# --- Exercise 6.1: which Pareto trial wins the MACs-edition score? (predict before you run) --


def _score_terms(name: str, f1: float, macs: float) -> str:
    return (
        f"{name}: MACs term {macs:,.0f} / {MACS_BASELINE:,} = {macs / MACS_BASELINE:.4f}, "
        f"F1 term {score_f1_part(f1):.4f}, score {score_macs(f1, macs):.4f}"
    )


def check_winner_prediction(predicted: str, toy: dict[str, tuple[float, float]]) -> str:
    """``predicted``: the name of the toy trial (``{name: (F1, MACs)}``) with the lowest
    MACs-edition score. Judged with trashkit's own score; a wrong guess gets the terms."""
    names = list(toy)
    require(
        isinstance(predicted, str) and predicted.strip().upper() in names,
        f"predicted_winner = {predicted!r}: name one trial of the toy, one of {names}",
    )
    guess = predicted.strip().upper()
    scores = {n: score_macs(*toy[n]) for n in names}
    winner = min(scores, key=scores.get)
    front = [names[i] for i in pareto_reference([toy[n] for n in names])]
    if guess not in front:
        raise ExerciseError(
            f"{guess} is not on the Pareto front {front}: another trial has at least its F1 "
            "and at most its MACs, so it scores at least as well on any score that rewards "
            f"F1 and punishes MACs. {_score_terms(guess, *toy[guess])}"
        )
    if guess != winner:
        raise ExerciseError(
            f"{guess} does not have the lowest score. {_score_terms(guess, *toy[guess])}; "
            f"{_score_terms(winner, *toy[winner])}. Compare the exchange rate: one million "
            f"MACs costs {1e6 / MACS_BASELINE:.3f} of score, 0.01 of F1 below the baseline "
            f"{0.01 / 0.8366:.3f}."
        )
    return ok(
        f"{winner} wins with {scores[winner]:.4f} (lower is better): "
        + "; ".join(f"{n} {scores[n]:.4f}" for n in front)
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


# --- Exercise 6.3: NSGA-II's crowding distance, as Optuna computes it --------------------------

CROWDING_CASES: list[list[tuple[float, float]]] = [
    [(0.80, 9e6), (0.78, 4e6), (0.70, 2e6)],  # the toy's front {A, B, D}
    [(0.9, 10.0), (0.8, 6.0), (0.7, 3.0), (0.5, 1.0)],
    [(0.6, 2.0), (0.75, 5.0)],  # two trials: both are ends
    [(0.55, 1.0), (0.62, 1.5), (0.66, 4.0), (0.71, 4.5), (0.80, 9.0)],
]


def crowding_reference(points: Sequence[tuple[float, float]]) -> list[float]:
    """Optuna's own crowding distance (NSGA-II's elite selection) of each point, in order."""
    import optuna
    from optuna.samplers.nsgaii._elite_population_selection_strategy import (
        _calc_crowding_distance,
    )

    trials = []
    for number, (f1, macs) in enumerate(points):
        trial = optuna.trial.create_trial(values=[f1, macs])
        trial.number = number  # what Optuna's study would number it
        trials.append(trial)
    distance = _calc_crowding_distance(list(trials))
    return [float(distance[number]) for number in range(len(points))]


def _crowding_variant(points, normalise: bool = True, ends: float = math.inf, share=1.0):
    """The crowding distance with one rule changed (for naming a student's slip)."""
    values = np.asarray(points, dtype=float)
    result = np.zeros(len(values))
    for column in values.T:
        rank = np.argsort(column, kind="stable")
        ordered = column[rank]
        width = ordered[-1] - ordered[0] if normalise else 1.0
        inner = share * (ordered[2:] - ordered[:-2]) / width
        result[rank[1:-1]] += inner
        result[rank[[0, -1]]] += ends
    return result.tolist()


def _crowding_slips(points) -> list[tuple[list[float], str]]:
    return [
        (
            _crowding_variant(points, normalise=False),
            "the gaps are not normalised: divide each objective's gap by that objective's "
            "range (max - min) over the front, or MACs (millions) drown F1 (fractions)",
        ),
        (
            _crowding_variant(points, ends=0.0),
            "the two ends of the front get 0: they get infinity, so NSGA-II always keeps "
            "the extremes",
        ),
        (
            _crowding_variant(points, share=0.5),
            "you halved the gap: the distance is the whole gap between the two neighbours",
        ),
    ]


def _same(got: Sequence[float], want: Sequence[float]) -> bool:
    return len(got) == len(want) and all(
        (math.isinf(w) and math.isinf(g) and g > 0) or close(g, w, rel=1e-9, abs_tol=1e-12)
        for g, w in zip(got, want)
    )


def check_crowding_distance(fn: Callable[[list[tuple[float, float]]], list[float]]) -> str:
    """``fn(front) -> [distance of each point]`` for ``(F1, MACs)`` points of one front,
    compared with Optuna's ``_calc_crowding_distance``."""
    for points in CROWDING_CASES:
        got = call(fn, list(points), name="crowding_distance")
        require(
            isinstance(got, list | tuple | np.ndarray)
            and len(got) == len(points)
            and all(isinstance(v, int | float | np.floating) for v in got),
            f"crowding_distance({points}) returned {got!r}: return one number per point, "
            "in the order of the points",
        )
        want = crowding_reference(points)
        if _same(got, want):
            continue
        slip = next((why for value, why in _crowding_slips(points) if _same(got, value)), "")
        raise ExerciseError(
            f"crowding_distance({points}): Optuna gives {[round(w, 4) for w in want]}, you "
            f"gave {[round(float(g), 4) for g in got]}."
            + (
                f" It looks like {slip}."
                if slip
                else " Per objective: sort the points, give both ends infinity, give every "
                "other point (next value - previous value) / (max - min); add the objectives."
            )
        )
    return ok(
        f"crowding_distance equals Optuna's on {len(CROWDING_CASES)} fronts; on the toy's "
        "front B gets 2.0 and the two ends infinity"
    )


# --- Exercise 6.4: how often does the short run order two architectures wrongly? -------------


def _pairs(short: Sequence[float], long: Sequence[float]) -> tuple[int, int, int]:
    """(concordant, discordant, all) pairs, by scipy's Kendall tau (no ties here)."""
    from scipy.stats import kendalltau

    n = len(short)
    total = n * (n - 1) // 2
    tau = float(kendalltau(short, long).statistic)
    disc = round((1 - tau) * total / 2)
    return total - disc, disc, total


def check_discordant(discordant: int, table: pd.DataFrame, short: str, long: str) -> str:
    """``discordant``: how many pairs of architectures of ``table`` the column ``short``
    orders differently from the column ``long``. Judged with SciPy's Kendall tau."""
    require(
        isinstance(discordant, int | np.integer) and not isinstance(discordant, bool),
        f"discordant = {discordant!r}: give a whole number of pairs",
    )
    conc, disc, total = _pairs(table[short].tolist(), table[long].tolist())
    slips = {
        conc: "that is the number of pairs the two columns order the *same* way (concordant)",
        total: f"that is every pair: {len(table)} architectures make {total} pairs; count only "
        "those where one column says a > b and the other a < b",
    }
    val_long = long.replace("test", "val")
    if val_long != long and val_long in table:
        slips.setdefault(
            _pairs(table[short].tolist(), table[val_long].tolist())[1],
            f"you compared with '{val_long}': the question is about '{long}'",
        )
    if discordant != disc:
        hint = slips.get(int(discordant), "")
        raise ExerciseError(
            f"{discordant} pairs: not right"
            + (f" - {hint}." if hint else ".")
            + f" Of the {total} pairs, list each (i, j) and compare the sign of "
            f"{short}[i] - {short}[j] with that of {long}[i] - {long}[j]."
        )
    return ok(
        f"{disc} of {total} pairs are ordered differently ({conc} the same way): Kendall's "
        f"tau = ({conc} - {disc}) / {total} = {(conc - disc) / total:.2f}"
    )


# --- Design task: a small sub-network of the supernet, measured -------------------------------


def check_design(
    config: dict,
    supernet,
    data,
    table: pd.DataFrame,
    image_size: int,
    macs_share: float = 0.25,
) -> str:
    """Measure ``config``: extracted from ``supernet``, batch norm recalibrated, validation
    macro-F1 and official MACs. It passes with at most ``macs_share`` of the largest
    sub-network's MACs and an F1 at least that of the best randomly sampled sub-network
    under the same cap (``table``: the sub-networks evaluated in the chapter)."""
    from ..search.supernet import evaluate_subnet, subnet_macs, subnet_name

    space = supernet.space
    try:
        space.check(config)
    except ValueError as exc:
        raise ExerciseError(f"design_config: {exc}") from None
    cap = macs_share * subnet_macs(space, space.largest(), image_size, supernet.n_classes)
    under = table[table.MACs <= cap]
    require(len(under) > 0, f"no evaluated sub-network is under {cap:,.0f} MACs to compare")
    bar = under.loc[under.val_macro_f1.idxmax()]
    got = evaluate_subnet(supernet, config, data, image_size)
    name = subnet_name(config)
    require(
        got["MACs"] <= cap,
        f"{name}: {got['MACs']:,} official MACs, over the cap of {cap:,.0f} "
        f"({macs_share:.0%} of the largest sub-network): keep fewer layers or channels",
    )
    require(
        got["val_macro_f1"] >= bar.val_macro_f1 - 1e-9,
        f"{name}: measured validation macro-F1 {got['val_macro_f1']:.4f} at {got['MACs']:,} "
        f"MACs, below the best sub-network of section 10's table under the cap ({bar.subnet}: "
        f"{bar.val_macro_f1:.4f}). Rank every sub-network under the cap with the accuracy "
        "predictor, measure the first few, keep the best.",
    )
    return ok(
        f"{name}: {got['MACs']:,} official MACs (cap {cap:,.0f}), validation macro-F1 "
        f"{got['val_macro_f1']:.4f} >= {bar.val_macro_f1:.4f}, the best sub-network of "
        "section 10's table under the cap"
    )
