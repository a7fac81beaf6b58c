"""Checks for chapter 1's exercises: IoU, the overlap rule, macro-F1, the majority baseline,
the expected photo leakage, and the design task (a three-way split by photo).

Each check runs the student's answer on small cases chosen so that the usual mistakes give a
recognisable wrong number, and then names the mistake (a percentage where a fraction was
meant, width and height where the format has corners, a union that counts the overlap twice,
the smaller box dropped instead of the larger, accuracy instead of macro-F1, ...). The
expected values come from the helpers the chapter uses at scale
(:func:`trashkit.data.overlap_drops`, :func:`trashkit.metrics.macro_f1`) or from a library
computed another way (torchvision's ``box_iou``, scikit-learn's ``DummyClassifier``, scipy's
binomial distribution), never from a second copy of the answer. The design task's check
measures the split it is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from ..data.coco import overlap_drops
from ..eda import labels_from_confusion
from ..metrics import macro_f1
from .core import ExerciseError, NotSolved, call, close, ok, require

Box = Sequence[float]


# --------------------------------------------------------------------------- shares


def _share(value: object, name: str) -> float:
    """A share as a fraction in [0, 1]; a percentage or a non-number is explained."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ExerciseError(
            f"{name} must be a number such as 0.79, got {value!r} ({type(value).__name__})"
        )
    v = float(value)
    require(math.isfinite(v), f"{name} = {v} is not a finite number")
    require(
        not 1 < v <= 100,
        f"{name} = {v:g} looks like a percentage: write the share as a "
        f"fraction ({v / 100:g} for {v:g}%)",
    )
    require(0 <= v <= 1, f"{name} = {v:g} is not a share: a share lies between 0 and 1")
    return v


# --------------------------------------------------------------------------- IoU


def _iou_xywh(a: Box, b: Box) -> float:
    """Reference IoU of two ``[x, y, w, h]`` boxes (used to recognise a format mix-up)."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - ix * iy
    return ix * iy / union if union > 0 else 0.0


def _corner_parts(a: Box, b: Box) -> tuple[float, float, float, float]:
    """(signed overlap width, signed overlap height, area a, area b) of corner boxes."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    return ix, iy, (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])


#: (what the case shows, box a, box b) in corner format [x0, y0, x1, y1]
IOU_CASES = (
    ("partial overlap", (0, 0, 4, 4), (2, 2, 6, 6)),
    ("identical boxes", (1, 1, 3, 4), (1, 1, 3, 4)),
    ("one box inside the other", (0, 0, 10, 10), (2, 2, 4, 4)),
    ("boxes apart in x and y", (0, 0, 2, 2), (3, 3, 5, 5)),
    ("boxes apart in x only", (0, 0, 2, 2), (3, 0, 5, 2)),
    ("boxes touching along an edge", (0, 0, 2, 2), (2, 0, 4, 2)),
    ("fractional coordinates", (0.5, 0.5, 2.5, 1.5), (1.5, 0.5, 3.5, 2.5)),
)


def expected_iou_corners(a: Box, b: Box) -> float:
    """The right answer: intersection over union of two ``[x0, y0, x1, y1]`` boxes
    (torchvision's ``box_iou``)."""
    import torch
    from torchvision.ops import box_iou

    iou = box_iou(torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64))
    return float(iou.nan_to_num(0.0)[0, 0])


def _iou_diagnosis(got: float, a: Box, b: Box) -> str:
    """Name the usual mistake that gives ``got`` on boxes a, b (empty when none fits)."""
    ix, iy, area_a, area_b = _corner_parts(a, b)
    inter = max(0.0, ix) * max(0.0, iy)
    raw = ix * iy
    guesses = [
        (
            _iou_xywh(a, b),
            (
                "you read the last two numbers as width and height; in this format "
                "they are the right and bottom edges x1, y1 (w = x1 - x0)"
            ),
        ),
        (
            inter / (area_a + area_b),
            ("your union counts the overlap twice: union = area_a + area_b - intersection"),
        ),
        (
            inter / min(area_a, area_b),
            ("you divided by the smaller box's area; IoU divides by the union of the two boxes"),
        ),
        (inter / area_a, "you divided by box a's area; IoU divides by the union"),
        (
            raw / (area_a + area_b - raw),
            (
                "the boxes do not overlap, yet your intersection is "
                "not 0: clip the overlap width and height at 0 "
                "(max(0, ...)) before multiplying them"
            ),
        ),
    ]
    for value, why in guesses:
        if close(got, value, rel=1e-6) and not close(value, expected_iou_corners(a, b)):
            return why
    if got < 0:
        return "an IoU is never negative: clip the overlap width and height at 0"
    return ""


def check_iou_corners(fn: Callable[[Box, Box], float]) -> None:
    """Exercise 2: ``fn(a, b)`` is the IoU of two boxes given as corners ``[x0, y0, x1, y1]``.

    Why this format: Pascal VOC and torchvision write boxes this way, COCO as ``[x, y, w, h]``;
    mixing the two up is the commonest box bug, and this check recognises it.
    """
    for what, a, b in IOU_CASES:
        got = call(fn, a, b, name="iou_corners")
        require(
            isinstance(got, (int, float, np.number)) and not isinstance(got, bool),
            f"iou_corners{(a, b)} returned {got!r}; it must return one number",
        )
        want = expected_iou_corners(a, b)
        if not close(got, want, rel=1e-6, abs_tol=1e-9):
            why = _iou_diagnosis(float(got), a, b)
            raise ExerciseError(
                f"iou_corners({a}, {b}) [{what}] returned {float(got):.4f}, expected "
                f"{want:.4f}. "
                + (
                    why[0].upper() + why[1:] + "."
                    if why
                    else "Draw the two boxes on squared paper and count the squares "
                    "of the overlap and of the union."
                )
            )
        flip = call(fn, b, a, name="iou_corners")
        require(
            close(flip, got),
            f"iou_corners(a, b) = {float(got):.4f} but iou_corners(b, a) "
            f"= {float(flip):.4f} for a={a}, b={b}: IoU is symmetric",
        )
    ok(
        f"iou_corners agrees on all {len(IOU_CASES)} cases (overlap, identical, nested, "
        "apart, touching, fractional)"
    )


# --------------------------------------------------------------------------- overlap rule


def expected_drops(boxes: Sequence[Box], threshold: float) -> set[int]:
    """The pipeline's answer for one image (:func:`overlap_drops` with ids = positions)."""
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return {i for i, _, _ in overlap_drops(arr, np.arange(len(arr)), threshold)}


#: (what the case shows, boxes [x, y, w, h], threshold, hint when the answer differs)
DROP_CASES = (
    (
        "a cup (box 0) and the lid inside it (box 1)",
        [[0, 0, 4, 5], [0, 0, 4, 3]],
        0.4,
        "IoU is 12/20 = 0.6 >= 0.4 and box 0 is the larger (area 20 against 12)",
    ),
    (
        "two boxes overlapping below the threshold",
        [[0, 0, 4, 4], [3, 3, 4, 4]],
        0.4,
        "IoU is 1/31, far below 0.4: both stay",
    ),
    (
        "IoU exactly at the threshold",
        [[0, 0, 4, 5], [0, 0, 4, 2]],
        0.4,
        (
            "IoU is 8/20 = 0.4 exactly; the rule says IoU >= threshold, so the larger box goes "
            "(check that you compare with >=, not >)"
        ),
    ),
    (
        "two overlapping boxes of equal area",
        [[0, 0, 4, 4], [1, 0, 4, 4]],
        0.4,
        "both have area 16 and IoU 12/20 = 0.6: on a tie the box with the higher index goes",
    ),
    (
        "a chain: 0 overlaps 1, 1 overlaps 2, 0 and 2 do not",
        [[0, 0, 2, 1], [0, 0, 3, 1], [0, 0, 5, 1]],
        0.5,
        (
            "judge every pair on the original boxes, all at once: pair (0, 1) drops 1 and pair "
            "(1, 2) drops 2, even though 1 is dropped too"
        ),
    ),
    ("a single box", [[5, 5, 3, 3]], 0.4, "a box alone overlaps nothing"),
    ("no boxes", [], 0.4, "an image without boxes drops nothing"),
)


def _as_index_set(got: object, n: int) -> set[int]:
    """The student's return value as a set of box positions, or an error saying why not."""
    require(
        got is not None,
        "drop_larger returned None: return the positions of the dropped boxes, e.g. {0} or [0, 2]",
    )
    require(
        isinstance(got, (set, frozenset, list, tuple, np.ndarray, range)),
        f"drop_larger returned a {type(got).__name__}; return a set or list of positions",
    )
    items = list(got)
    for item in items:
        require(
            isinstance(item, (int, np.integer)) and not isinstance(item, bool),
            f"drop_larger returned {got!r}: return box positions (0, 1, ...), not boxes or areas",
        )
        require(
            0 <= int(item) < n,
            f"drop_larger returned position {item}, but there are "
            f"only {n} boxes (positions 0 to {n - 1})",
        )
    return {int(i) for i in items}


def _drop_case(fn: Callable, boxes: list, threshold: float, what: str, hint: str) -> None:
    """One case: the student's drops equal the pipeline's, or an error that names the case."""
    got = _as_index_set(call(fn, boxes, threshold, name="drop_larger"), len(boxes))
    want = expected_drops(boxes, threshold)
    if got == want:
        return
    if len(boxes) == 2 and want and got == {1 - next(iter(want))}:
        hint = "you dropped the SMALLER box; the rule drops the LARGER one of the pair"
    elif len(boxes) == 2 and want and got == {0, 1}:
        hint = "you dropped both boxes; only the larger of the pair goes"
    raise ExerciseError(
        f"drop_larger({boxes}, {threshold}) [{what}] dropped "
        f"{sorted(got)}, the rule drops {sorted(want)}: {hint}."
    )


def check_drop_larger(
    fn: Callable[[list, float], Iterable[int]], n_random: int = 200, seed: int = 0
) -> None:
    """Exercise 3: ``fn(boxes, threshold)`` returns the positions the overlap rule drops.

    After the hand-made cases it compares ``fn`` with the pipeline on ``n_random`` random
    images of 2-6 boxes, and on a difference shows the boxes, so the student can draw them.
    """
    for what, boxes, threshold, hint in DROP_CASES:
        _drop_case(fn, [list(b) for b in boxes], threshold, what, hint)
    rng = np.random.default_rng(seed)
    for _ in range(n_random):
        n = int(rng.integers(2, 7))
        xy, wh = rng.integers(0, 8, (n, 2)), rng.integers(1, 8, (n, 2))
        boxes = np.hstack([xy, wh]).tolist()
        _drop_case(
            fn,
            boxes,
            0.4,
            "random boxes",
            "draw them on squared paper and compute the IoU of every pair",
        )
    ok(
        f"drop_larger agrees with the pipeline on {len(DROP_CASES)} hand-made cases and "
        f"{n_random} random images"
    )


# --------------------------------------------------------------------------- macro-F1

#: (what the case shows, confusion matrix: rows = true class, columns = predicted class)
F1_CASES = (
    ("the chapter's toy classifier A", [[10, 1, 1], [2, 4, 0], [1, 0, 1]]),
    ("classifier B, which never predicts class 2", [[12, 0, 0], [0, 6, 0], [2, 0, 0]]),
    ("a perfect classifier", [[5, 0, 0], [0, 3, 0], [0, 0, 1]]),
    ("two classes", [[8, 2], [3, 1]]),
)


def expected_macro_f1(confusion: Sequence[Sequence[int]]) -> float:
    """The right answer, from :func:`trashkit.metrics.macro_f1` on the expanded labels."""
    y_true, y_pred = labels_from_confusion(confusion)
    return macro_f1(y_true, y_pred, len(confusion))


def _f1_diagnosis(got: float, cm: np.ndarray) -> str:
    """Name the average ``got`` is, when it is a well-known wrong one (empty otherwise)."""
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(1), cm.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(tp > 0, 2 * tp / (support + predicted), 0.0)
    mp, mr = precision.mean(), recall.mean()
    guesses = [
        (
            tp.sum() / cm.sum(),
            ("that is the accuracy (diagonal / total), which lets the large classes dominate"),
        ),
        (
            (f1 * support).sum() / support.sum(),
            ("that is the support-WEIGHTED F1; macro gives every class weight 1"),
        ),
        (mr, "that is the mean recall; F1 combines precision AND recall per class"),
        (mp, "that is the mean precision; F1 combines precision AND recall per class"),
        (
            2 * mp * mr / (mp + mr) if mp + mr else 0.0,
            (
                "that is the F1 of the averaged precision and recall; average the per-class "
                "F1 scores instead"
            ),
        ),
    ]
    for value, why in guesses:
        if close(got, value, rel=1e-9):
            return why
    return ""


def check_macro_f1(fn: Callable[[list], float]) -> None:
    """Exercise 4: ``fn(confusion)`` is macro-F1 from a confusion matrix (rows = true class).

    Compared with :func:`trashkit.metrics.macro_f1`; a class that is never predicted has
    precision 0/0, which scikit-learn (``zero_division=0``) and this check count as F1 = 0.
    """
    for what, cm in F1_CASES:
        try:
            got = call(fn, [list(r) for r in cm], name="macro_f1_from_confusion")
        except NotSolved:
            raise
        except ExerciseError as exc:  # it crashed; on a never-predicted class, say why
            if min(sum(col) for col in zip(*cm)) > 0:
                raise
            raise ExerciseError(
                f"{exc}. On {what}: a class that is never predicted has "
                "precision 0/0; count its F1 as 0"
            ) from None
        require(
            isinstance(got, (int, float, np.number)) and not isinstance(got, bool),
            f"macro_f1_from_confusion({cm}) returned {got!r}; it must return one number",
        )
        want = expected_macro_f1(cm)
        if math.isnan(float(got)):
            raise ExerciseError(
                f"macro_f1_from_confusion({cm}) [{what}] returned nan: a class "
                "that is never predicted has precision 0/0; count its F1 as 0"
            )
        if not close(got, want, rel=1e-6):
            why = _f1_diagnosis(float(got), np.asarray(cm))
            raise ExerciseError(
                f"macro_f1_from_confusion({cm}) [{what}] returned "
                f"{float(got):.4f}, expected {want:.4f}"
                + (
                    f": {why}."
                    if why
                    else ". Per class k: F1 = 2 TP / (2 TP "
                    "+ FP + FN), then the plain mean over the classes."
                )
            )
    ok(
        f"macro_f1_from_confusion agrees with trashkit.metrics.macro_f1 on all "
        f"{len(F1_CASES)} cases"
    )


# --------------------------------------------------------------------------- majority baseline

#: (what the case shows, items per class)
MAJORITY_CASES = (
    ("the chapter's toy data: 12 Plastic, 6 Paper, 2 Styrofoam", (12, 6, 2)),
    ("two classes of equal size", (5, 5)),
    ("one class far larger than three others", (97, 1, 1, 1)),
    ("six classes", (40, 25, 15, 10, 6, 4)),
)


def expected_majority(counts: Sequence[int]) -> tuple[float, float]:
    """(accuracy, macro-F1) of "always the largest class": scikit-learn's
    ``DummyClassifier(strategy="most_frequent")`` scored by ``accuracy_score`` and
    ``f1_score(average="macro", zero_division=0)`` over all the classes."""
    from sklearn.dummy import DummyClassifier
    from sklearn.metrics import accuracy_score, f1_score

    y = np.repeat(np.arange(len(counts)), np.asarray(counts, dtype=int))
    pred = (
        DummyClassifier(strategy="most_frequent").fit(np.zeros((len(y), 1)), y).predict(y[:, None])
    )
    labels = list(range(len(counts)))
    return (
        float(accuracy_score(y, pred)),
        float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
    )


def _majority_diagnosis(got: tuple[float, float], counts: Sequence[int]) -> str:
    """Name the usual mistake behind a wrong (accuracy, macro-F1) pair (empty when none fits)."""
    acc, f1 = expected_majority(counts)
    k, n, top = len(counts), sum(counts), max(counts)
    if close(got[0], f1) and close(got[1], acc) and not close(acc, f1):
        return "you returned (macro-F1, accuracy): return (accuracy, macro-F1) in that order"
    if not close(got[0], acc):
        return (
            "the accuracy is the share of ALL items it gets right: every item of the largest "
            f"class and nothing else ({top} of {n})"
        )
    guesses = [
        (acc, "that is the accuracy again; macro-F1 averages the per-class F1"),
        (
            f1 * k,
            "that is the largest class's F1 alone: macro-F1 averages over ALL "
            f"{k} classes, and the classes it never predicts score F1 = 0",
        ),
        (
            acc / k,
            "you used the largest class's precision (top / total) as its F1; its recall is "
            "1, so F1 = 2 TP / (2 TP + FP + FN) with FP = total - top and FN = 0",
        ),
        (1 / k, "that is the mean recall (1 for the largest class, 0 for the others)"),
    ]
    for value, why in guesses:
        if close(got[1], value):
            return why
    return ""


def check_majority_baseline(fn: Callable[[list], tuple], counts: Sequence[int] | None = None):
    """Exercise 4: ``fn(counts)`` is (accuracy, macro-F1) of the classifier that always
    answers the largest class, for ``counts`` items per class.

    Compared with scikit-learn's ``DummyClassifier`` on the expanded labels; ``counts`` adds
    this run's class sizes to the cases.
    """
    cases = list(MAJORITY_CASES)
    if counts is not None:
        cases.append(("this run's kept crops per class", tuple(int(c) for c in counts)))
    for what, case in cases:
        got = call(fn, list(case), name="majority_baseline")
        require(
            isinstance(got, (tuple, list)) and len(got) == 2,
            f"majority_baseline({list(case)}) returned {got!r}; return two numbers: "
            "(accuracy, macro_f1)",
        )
        pair = (_share(got[0], "the accuracy"), _share(got[1], "the macro-F1"))
        want = expected_majority(case)
        if not (close(pair[0], want[0]) and close(pair[1], want[1])):
            why = _majority_diagnosis(pair, case)
            raise ExerciseError(
                f"majority_baseline({list(case)}) [{what}] returned accuracy {pair[0]:.4f}, "
                f"macro-F1 {pair[1]:.4f}; expected {want[0]:.4f} and {want[1]:.4f}"
                + (
                    f": {why}."
                    if why
                    else ". Write TP, FP and FN of every class for this classifier, "
                    "then F1 = 2 TP / (2 TP + FP + FN) per class."
                )
            )
    ok(f"majority_baseline agrees with scikit-learn's DummyClassifier on all {len(cases)} cases")


# --------------------------------------------------------------------------- photo leakage

#: (what the case shows, crops per photo, val_fraction)
LEAKAGE_CASES = (
    ("four photos of one crop each", (1, 1, 1, 1), 0.2),
    ("one photo with two crops", (2,), 0.2),
    ("one photo with five crops", (5,), 0.2),
    ("photos of 1, 2, 3 and 7 crops", (1, 2, 3, 7), 0.2),
    ("photos of 1, 2, 3 and 7 crops, half to validation", (1, 2, 3, 7), 0.5),
)


def expected_leakage(crops_per_photo: Sequence[int], val_fraction: float) -> float:
    """The expected share of validation crops with a sibling in train, when every crop goes
    to validation on its own with probability ``val_fraction``: expected shared crops over
    expected validation crops, both summed over the photos with scipy's binomial law (j of a
    photo's n crops in validation share their photo with train unless j = n)."""
    from scipy.stats import binom

    shared = val = 0.0
    for n in crops_per_photo:
        j = np.arange(n + 1)
        p = binom.pmf(j, n, val_fraction)
        val += float((j * p).sum())
        shared += float((j[:-1] * p[:-1]).sum())
    return shared / val if val else 0.0


def _leakage_diagnosis(got: float, sizes: Sequence[int], f: float) -> str:
    """Name the usual mistake that gives ``got`` (empty when none fits)."""
    n = np.asarray(sizes, dtype=float)
    want = expected_leakage(sizes, f)
    several = [int(s) for s in sizes if s > 1]
    guesses = [
        (
            float(np.mean(1 - f ** (n - 1))),
            "you averaged over PHOTOS; the share is over validation crops, and a photo of n "
            "crops gives n times as many of them: weight every photo by its number of crops",
        ),
        (
            float((n * (1 - f**n)).sum() / n.sum()),
            "the crop itself is already in validation: only its n - 1 siblings are random",
        ),
        (
            float((n * (1 - (1 - f) ** (n - 1))).sum() / n.sum()),
            "that is the chance that a sibling is in VALIDATION; the question is whether one "
            "is in TRAIN (each sibling is there with probability 1 - val_fraction)",
        ),
        (
            float((n * (1 - f) ** (n - 1)).sum() / n.sum()),
            "that is the chance that ALL siblings are in train; one sibling in train is enough",
        ),
        (
            expected_leakage(several, f) if several else -1.0,
            "photos with a single crop count too: their validation crops have no sibling "
            "(share 0), so keep them in the denominator",
        ),
    ]
    for value, why in guesses:
        if close(got, value, rel=1e-6) and not close(value, want):
            return why
    return ""


def check_expected_leakage(
    fn: Callable[[list, float], float],
    crops_per_photo: Sequence[int] | None = None,
    val_fraction: float = 0.2,
) -> None:
    """Exercise 5: ``fn(crops_per_photo, val_fraction)`` predicts the share of validation
    crops whose photo also gave a training crop, for a split that draws crops one by one.

    Compared with :func:`expected_leakage` (scipy's binomial law, summed photo by photo);
    ``crops_per_photo`` adds this run's photos to the cases.
    """
    cases = list(LEAKAGE_CASES)
    if crops_per_photo is not None:
        sizes = tuple(int(c) for c in crops_per_photo)
        cases.append((f"this run's {len(sizes)} photos", sizes, val_fraction))
    for what, sizes, f in cases:
        got = _share(call(fn, list(sizes), f, name="expected_leakage"), "expected_leakage")
        want = expected_leakage(sizes, f)
        if not close(got, want, rel=1e-6, abs_tol=1e-9):
            shown = list(sizes) if len(sizes) <= 8 else f"[{len(sizes)} photos]"
            why = _leakage_diagnosis(got, sizes, f)
            raise ExerciseError(
                f"expected_leakage({shown}, {f}) [{what}] returned {got:.4f}, expected "
                f"{want:.4f}"
                + (
                    f": {why}."
                    if why
                    else ". Take one validation crop of a photo with n crops: what is the "
                    "chance that at least one of the other n - 1 went to train? Then weight."
                )
            )
    ok(
        f"expected_leakage agrees with the binomial count on all {len(cases)} cases"
        + (f": this run's prediction is {got:.1%}" if crops_per_photo is not None else "")
    )


# --------------------------------------------------------------------------- design task

PARTS = ("train", "val", "test")


def _assignment(got: object, kept: pd.DataFrame) -> pd.Series:
    """The student's split as a Series over the kept crops, or an error saying why not."""
    require(
        got is not None,
        "design_split returned None: return a pandas Series over the kept crops, with values "
        '"train", "val" or "test"',
    )
    if not isinstance(got, pd.Series):
        values = list(got) if isinstance(got, (list, tuple, np.ndarray)) else None
        require(
            values is not None and len(values) == len(kept),
            f"design_split returned a {type(got).__name__}; return a pandas Series indexed "
            f"like the kept crops ({len(kept)} of them)",
        )
        got = pd.Series(values, index=kept.index)
    extra = got.index.difference(kept.index)
    require(
        extra.empty,
        f"design_split assigns {len(extra)} row(s) that are not kept crops (e.g. row "
        f"{extra[0] if len(extra) else ''}): the crops dropped by steps 1-4 belong to no split",
    )
    missing = kept.index.difference(got.dropna().index)
    require(
        missing.empty,
        f"{len(missing)} kept crop(s) have no part (e.g. row {missing[0] if len(missing) else ''}"
        "): every kept crop goes to train, val or test",
    )
    bad = sorted(set(got.astype(str)) - set(PARTS))
    require(not bad, f"design_split uses {bad}: the parts are named {list(PARTS)}")
    return got.astype(str).reindex(kept.index)


def measure_split(table: pd.DataFrame, part: pd.Series) -> dict:
    """What the design task grades: photos in more than one part, each part's share of all
    kept crops, and each part's share of every class (``part`` indexed like the kept rows)."""
    kept = table.loc[part.index]
    parts_per_photo = part.groupby(kept.image_id).nunique()
    by_class = pd.crosstab(kept.cls, part, normalize="index").reindex(columns=PARTS, fill_value=0)
    return {
        "photos in two parts": parts_per_photo.index[parts_per_photo > 1].tolist(),
        "photos": int(len(parts_per_photo)),
        "share": part.value_counts(normalize=True).reindex(PARTS, fill_value=0).to_dict(),
        "class share": by_class,
        "class size": kept.cls.value_counts(),
    }


def check_design_split(
    fn: Callable[[pd.DataFrame], pd.Series],
    table: pd.DataFrame,
    test: float = 0.2,
    val: float = 0.1,
    tolerance: float = 0.015,
    min_crops: int = 100,
) -> dict:
    """The design task: ``fn(table)`` splits the kept crops into train / val / test so that
    no photo lies in two parts, test and val hold ``test`` and ``val`` of all kept crops
    and of every class with at least ``min_crops`` crops, each within ``tolerance``.

    It MEASURES the split it is given (:func:`measure_split`) and returns the measurement.
    """
    kept = table[table.status == "kept"]
    part = _assignment(call(fn, table, name="design_split"), kept)
    m = measure_split(table, part)
    leaked = m["photos in two parts"]
    require(
        not leaked,
        f"{len(leaked)} of {m['photos']} photos have crops in two parts (e.g. photo "
        f"{leaked[0] if leaked else ''}): assign whole photos, not single crops",
    )
    targets = {"test": test, "val": val}
    for name, target in targets.items():
        got = m["share"][name]
        require(
            abs(got - target) <= tolerance,
            f"{name} holds {got:.1%} of the kept crops; the target is {target:.0%} "
            f"(within {tolerance * 100:g} points)",
        )
    checked = [c for c, n in m["class size"].items() if n >= min_crops]
    worst = 0.0
    for cls in checked:
        for name, target in targets.items():
            got = float(m["class share"].loc[cls, name])
            worst = max(worst, abs(got - target))
            require(
                abs(got - target) <= tolerance,
                f"class {cls}: {got:.1%} of its {m['class size'][cls]} crops are in {name}, "
                f"the target is {target:.0%} (within {tolerance * 100:g} points): "
                "stratify by class as well as grouping by photo",
            )
    share = m["share"]
    ok(
        f"design split: 0 of {m['photos']} photos in two parts; train {share['train']:.1%}, "
        f"val {share['val']:.1%}, test {share['test']:.1%} of the kept crops; "
        + (
            f"{len(checked)} classes with at least {min_crops} crops, each within "
            f"{worst * 100:.1f} points of its targets"
            if checked
            else f"no class has {min_crops} crops (only the totals were graded)"
        )
    )
    return m
