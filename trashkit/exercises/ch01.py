"""Checks for chapter 1's exercises: two predictions, IoU, the overlap rule and macro-F1.

Each check runs the student's answer on small cases chosen so that the usual mistakes give a
recognisable wrong number, and then names the mistake (a percentage where a fraction was
meant, width and height where the format has corners, a union that counts the overlap twice,
the smaller box dropped instead of the larger, accuracy instead of macro-F1, ...). The
expected values come from the same helpers the chapter uses at scale
(:func:`trashkit.data.overlap_drops`, :func:`trashkit.metrics.macro_f1`), so "correct" means
"agrees with the pipeline", not "agrees with a second copy of the answer".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ..data.coco import overlap_drops
from ..eda import labels_from_confusion
from ..metrics import macro_f1
from .core import ExerciseError, NotSolved, call, close, ok, require

Box = Sequence[float]


# --------------------------------------------------------------------------- predictions


def _share(value: object, name: str) -> float:
    """A prediction as a fraction in [0, 1]; a percentage or a non-number is explained."""
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


def _compare(
    name: str, predicted: float, measured: float, more: str, less: str, tolerance: float = 0.05
) -> None:
    """One sentence comparing a prediction with the measurement, whichever way it missed."""
    head = f"{name}: you predicted {predicted:.0%}, this run measured {measured:.0%}"
    if abs(measured - predicted) <= tolerance:
        ok(f"{head} - within {tolerance * 100:.0f} percentage points, well predicted.")
    else:
        ok(f"{head} - {more if measured > predicted else less}")


def check_top3_prediction(
    predicted: object, measured: float | None = None, n_classes: int = 6
) -> None:
    """Exercise 1: the share of the three largest classes, predicted before it is computed.

    Without ``measured`` it checks that the prediction is a possible share and records it;
    with ``measured`` it explains the difference either way (a prediction is never "wrong",
    only surprised).
    """
    p = _share(predicted, "predicted_top3")
    floor = 3 / n_classes
    require(
        p >= floor - 1e-9,
        f"predicted_top3 = {p:g} is impossible: with {n_classes} classes the three largest "
        f"hold at least 3/{n_classes} = {floor:.0%} of the crops (that is a perfectly "
        "balanced dataset); any imbalance pushes the share above it",
    )
    if measured is None:
        ok(
            f"prediction recorded: the top 3 classes will hold {p:.0%}. The class "
            "distribution section measures it and compares."
        )
        return
    m = _share(measured, "measured top-3 share")
    _compare(
        "top-3 share",
        p,
        m,
        more="the data is MORE imbalanced than you expected: look at which classes the "
        "mapping table fed (several supercategories go to one class).",
        less="the data is LESS imbalanced than you expected: compare the three largest "
        "and the three smallest classes in the step table.",
    )


def check_leakage_prediction(predicted: object, measured: float | None = None) -> None:
    """Exercise 5: the share of validation crops whose photo also gave a training crop."""
    p = _share(predicted, "predicted_leakage")
    if measured is None:
        ok(
            f"prediction recorded: {p:.0%} of the validation crops share a photo with a "
            "training crop. The next cell measures it."
        )
        return
    m = _share(measured, "measured leakage")
    _compare(
        "val crops sharing a photo with train",
        p,
        m,
        more="more than you expected: the split draws crops one by one, so a photo with "
        "several crops almost always lands on both sides.",
        less="less than you expected: many photos hold a single crop here, and a photo "
        "with one crop cannot be on both sides.",
    )


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
