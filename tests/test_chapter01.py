"""Chapter 1 (the dataset story): its exercise checks and design-task check, the helpers behind
its figures and its grouped split, the numbers its prose quotes (recomputed from the data, from
docs/results.md and from the instructor's note), and the chapter itself executed headless on
the synthetic default, the TACO annotations and TrashNet.

Every exercise check must accept the reference solution stored in the notebook and reject
wrong answers with a message that says what is wrong; the tests assert the messages.
"""

from __future__ import annotations

import ast
import json
import os
import re
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from chapters import (
    check_structure,
    exercise_cells,
    exercises_in_turn,
    printed,
    solution,
    student_copy,
)
from chapters import (
    execute as execute_chapter,
)
from conftest import REPO, TACO, TRASHNET, needs
from PIL import Image

from trashkit import book, eda
from trashkit.data import build_crop_table, load_coco, load_mapping, make_synthetic_coco
from trashkit.data.split import grouped_split
from trashkit.exercises import ExerciseError, NotSolved, ch01

NAME = "01_eda.ipynb"
CHAPTER = REPO / "notebooks" / NAME
NOTE = REPO / "docs" / "instructors" / "01.md"
RESULTS = REPO / "docs" / "results.md"


def _nb() -> nbformat.NotebookNode:
    return nbformat.read(CHAPTER, as_version=4)


def _cell(cell_id: str) -> str:
    return next(c.source for c in _nb().cells if c.id == cell_id)


def _markdown(nb=None) -> str:
    return "\n".join(c.source for c in (nb or _nb()).cells if c.cell_type == "markdown")


def _section(heading: str, nb=None) -> str:
    """The markdown from a heading line that starts with ``heading`` to the next heading of
    the same or a higher level."""
    md = _markdown(nb)
    m = re.search(rf"^(#+) {re.escape(heading)}.*$", md, re.MULTILINE)
    assert m, heading
    rest = md[m.end() :]
    end = re.search(rf"^#{{1,{len(m.group(1))}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def _lesson_iou() -> dict:
    """The chapter's own ``iou_xywh`` (section 5), which exercise 2 builds on."""
    lesson = next(c.source for c in _nb().cells if c.source.startswith("def iou_xywh"))
    defs = [n for n in ast.parse(lesson).body if isinstance(n, ast.FunctionDef)]
    ns: dict = {}
    exec(compile(ast.Module(body=defs, type_ignores=[]), "iou_xywh cell", "exec"), ns)  # noqa: S102
    return ns


def chapter_solution(name: str, **namespace):
    """The reference solution ``name`` as stored in the chapter's exercise cell."""
    return solution(name, NAME, {"pd": pd, **_lesson_iou(), **namespace})[name]


# ----------------------------------------------------------------------------- wrong answers


def iou_xywh(a, b):
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def iou_corners(a, b):
    return chapter_solution("iou_corners")(a, b)


def drop_larger(boxes, threshold, strict=False, keep_ties=False):
    """The rule, with two switches that make it wrong in the ways students do."""
    dropped = set()
    for i, a in enumerate(boxes):
        for j, b in enumerate(boxes):
            iou = iou_xywh(a, b)
            if i == j or iou < threshold or (strict and iou == threshold):
                continue
            area_a, area_b = a[2] * a[3], b[2] * b[3]
            if area_a > area_b or (area_a == area_b and i > j and not keep_ties):
                dropped.add(i)
    return dropped


def _stub(*_):
    raise NotImplementedError("Exercise not yet solved: write your answer here")


# ----------------------------------------------------------------------------- exercise 4


def test_majority_check_accepts_the_chapter_solution(capsys):
    ch01.check_majority_baseline(chapter_solution("majority_baseline"), [1184, 826, 539, 300])
    assert "agrees with scikit-learn's DummyClassifier on all 5 cases" in capsys.readouterr().out


def _top(c):
    return max(c) / sum(c)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda c: (_top(c), _top(c)), r"\[the chapter's toy data.*that is the accuracy again"),
        (
            lambda c: (_top(c), 2 * max(c) / (max(c) + sum(c))),
            "that is the largest class's F1 alone: macro-F1 averages over ALL 3 classes",
        ),
        (lambda c: (_top(c), _top(c) / len(c)), "you used the largest class's precision"),
        (lambda c: (_top(c), 1 / len(c)), "that is the mean recall"),
        (lambda c: (1 / len(c), 0.25), "the accuracy is the share of ALL items"),
        (
            lambda c: (2 * max(c) / (max(c) + sum(c)) / len(c), _top(c)),
            r"you returned \(macro-F1, accuracy\)",
        ),
        (lambda c: (60, 25), "looks like a percentage"),
        (lambda c: 0.6, r"return two numbers: \(accuracy, macro_f1\)"),
        (lambda c: (_top(c), 0.3), r"expected 0.6000 and 0.2500. Write TP, FP and FN"),
    ],
)
def test_majority_check_names_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch01.check_majority_baseline(wrong)


def test_majority_check_on_the_stub_says_not_written_yet():
    with pytest.raises(NotSolved, match="majority_baseline is not written yet"):
        ch01.check_majority_baseline(_stub)


def test_expected_majority_is_the_hand_computation():
    acc, f1 = ch01.expected_majority([12, 6, 2])
    assert acc == pytest.approx(12 / 20) and f1 == pytest.approx((24 / 32) / 3)


# ----------------------------------------------------------------------------- exercise 5


def test_leakage_check_accepts_the_chapter_solution(capsys):
    fn = chapter_solution("expected_leakage")
    ch01.check_expected_leakage(fn, [1, 2, 2, 3, 5], 0.2)
    out = capsys.readouterr().out
    assert "agrees with the binomial count on all 6 cases" in out
    # this run's prediction, by hand: (0 + 2*0.8 + 2*0.8 + 3*(1-0.04) + 5*(1-0.2**4)) / 13
    assert f"{(1.6 + 1.6 + 2.88 + 5 * (1 - 0.2**4)) / 13:.1%}" in out


def _sizes(s):
    return np.asarray(s, dtype=float)


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            lambda s, f: float(np.mean(1 - f ** (_sizes(s) - 1))),
            r"\[photos of 1, 2, 3 and 7 crops\].*you averaged over PHOTOS",
        ),
        (
            lambda s, f: float((_sizes(s) * (1 - f ** _sizes(s))).sum() / _sizes(s).sum()),
            r"\[four photos of one crop each\] returned 0.8000, expected 0.0000: the crop itself",
        ),
        (
            lambda s, f: float(
                (_sizes(s) * (1 - (1 - f) ** (_sizes(s) - 1))).sum() / _sizes(s).sum()
            ),
            "that is the chance that a sibling is in VALIDATION",
        ),
        (
            lambda s, f: float((_sizes(s) * (1 - f) ** (_sizes(s) - 1)).sum() / _sizes(s).sum()),
            "that is the chance that ALL siblings are in train",
        ),
        (
            lambda s, f: (
                float(
                    (_sizes(s)[_sizes(s) > 1] * (1 - f ** (_sizes(s)[_sizes(s) > 1] - 1))).sum()
                    / _sizes(s)[_sizes(s) > 1].sum()
                )
                if (_sizes(s) > 1).any()
                else 0.0
            ),
            "photos with a single crop count too",
        ),
        (lambda s, f: 70.0, "looks like a percentage"),
        (lambda s, f: 0.5, "returned 0.5000, expected 0.0000. Take one validation crop"),
    ],
)
def test_leakage_check_names_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch01.check_expected_leakage(wrong)


def test_expected_leakage_agrees_with_a_simulation():
    """The check's reference, by a third route: split many times, crop by crop, and count."""
    sizes, f = [1, 2, 3, 7], 0.2
    rng = np.random.default_rng(0)
    photo = np.repeat(np.arange(len(sizes)), sizes)
    leaked = val = 0
    for _ in range(20_000):
        in_val = rng.random(len(photo)) < f
        train_photos = set(photo[~in_val])
        val += in_val.sum()
        leaked += sum(p in train_photos for p in photo[in_val])
    assert leaked / val == pytest.approx(ch01.expected_leakage(sizes, f), abs=0.005)


# ----------------------------------------------------------------------------- design task


@pytest.fixture(scope="module")
def crop_table(tmp_path_factory) -> pd.DataFrame:
    """Steps 1-5 on 150 synthetic scenes: enough photos for a grouped three-way split."""
    coco = make_synthetic_coco(tmp_path_factory.mktemp("coco150"), n_images=150, seed=5)
    return build_crop_table(coco, "synthetic")


def _design(table):
    return chapter_solution("design_split", grouped_split=grouped_split, seed=42)(table)


def test_design_check_accepts_the_chapter_solution_and_measures_it(crop_table, capsys):
    m = ch01.check_design_split(_design, crop_table)
    assert m["photos in two parts"] == [] and abs(m["share"]["test"] - 0.2) <= 0.02
    assert "design split: 0 of 150 photos in two parts" in capsys.readouterr().out


def _crop_by_crop(table):
    """The leaky split: step 5's crop-by-crop draw, with test taken the same way."""
    kept = table[table.status == "kept"]
    part = pd.Series("train", index=kept.index)
    rng = np.random.default_rng(0)
    part[rng.random(len(kept)) < 0.2] = "test"
    part[(part == "train") & (rng.random(len(kept)) < 0.125)] = "val"
    return part


def _half_test(table):
    part = _design(table)
    part[part == "train"] = "test"
    return part


def _skewed(table):
    """Whole photos and the right totals, but the photos richest in Paper go to test first."""
    kept = table[table.status == "kept"]
    paper = kept.groupby("image_id").cls.apply(lambda s: (s == "Paper").mean())
    sizes = kept.groupby("image_id").size()
    part, n = pd.Series("train", index=kept.index), 0
    for photo in paper.sort_values(ascending=False, kind="stable").index:
        if n >= 0.3 * len(kept):
            break
        part[kept.image_id == photo] = "test" if n < 0.2 * len(kept) else "val"
        n += sizes[photo]
    return part


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_crop_by_crop, r"photos have crops in two parts \(e\.g\. photo \d+\): assign whole"),
        (_half_test, r"test holds \d+\.\d% of the kept crops; the target is 20%"),
        (_skewed, r"class Paper: \d+\.\d% of its \d+ crops are in test.*stratify by class"),
        (lambda t: _design(t).iloc[1:], r"1 kept crop\(s\) have no part"),
        (lambda t: _design(t).reindex(t.index).fillna("train"), r"row\(s\) that are not kept"),
        (lambda t: _design(t).replace("val", "validation"), r"uses \['validation'\]"),
        (lambda t: None, "design_split returned None"),
        (lambda t: {"a": 1}, "return a pandas Series indexed like the kept crops"),
    ],
)
def test_design_check_fails_on_what_it_measures(crop_table, wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch01.check_design_split(wrong, crop_table)


def test_design_check_on_the_stub_says_not_written_yet(crop_table):
    with pytest.raises(NotSolved, match="design_split is not written yet"):
        ch01.check_design_split(_stub, crop_table)


def test_design_check_accepts_a_list_in_kept_order(crop_table, capsys):
    ch01.check_design_split(lambda t: _design(t).tolist(), crop_table)
    assert "✓ design split" in capsys.readouterr().out


# ----------------------------------------------------------------------------- grouped split


def test_grouped_split_never_cuts_a_group_and_keeps_class_shares():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(300), rng.integers(1, 6, 300))
    labels = rng.choice(["a", "b", "c"], len(groups), p=[0.6, 0.3, 0.1])
    train, val = grouped_split(labels, groups, 0.2, seed=3)
    assert sorted([*train, *val]) == list(range(len(groups)))
    assert not set(groups[train]) & set(groups[val])
    for cls in "abc":
        share = (labels[val] == cls).sum() / (labels == cls).sum()
        assert abs(share - 0.2) < 0.03, (cls, share)
    again = grouped_split(labels, groups, 0.2, seed=3)
    assert np.array_equal(again[1], val)  # the seed decides
    assert not np.array_equal(grouped_split(labels, groups, 0.2, seed=4)[1], val)


def test_grouped_split_edges():
    train, val = grouped_split(["a", "b"], [1, 2], 0.0)
    assert train.tolist() == [0, 1] and val.size == 0
    with pytest.raises(ValueError, match="needs at least 5 groups"):
        grouped_split(["a"] * 4, [1, 2, 3, 4], 0.2)
    with pytest.raises(ValueError, match="one group per item"):
        grouped_split(["a", "b"], [1], 0.2)
    with pytest.raises(ValueError, match=r"val_fraction in \[0, 0.5\]"):
        grouped_split(["a", "b"], [1, 2], 0.7)
    with pytest.raises(ValueError, match="needs a class with at least 10 items, the largest has 8"):
        grouped_split(["a"] * 8 + ["b"] * 4, list(range(12)), 0.1)
    groups = [0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    train, val = grouped_split(["a"] * 10 + ["b"] * 4, groups, 0.1, seed=0)
    assert len(val) >= 1 and not {groups[i] for i in train} & {groups[i] for i in val}


def test_photo_split_and_the_comparison(crop_table):
    by_photo = eda.photo_split(crop_table, 0.2, 42)
    assert (by_photo.status == "kept").sum() == by_photo.split.isin(["train", "val"]).sum()
    assert by_photo.split[by_photo.status != "kept"].isna().all()
    cmp = eda.split_comparison({"crop": crop_table, "photo": by_photo})
    assert cmp.loc["photo", "val crops sharing a photo with train"] == 0
    assert cmp.loc["crop", "val crops sharing a photo with train"] > 0.9  # several objects/scene
    kept = by_photo[by_photo.status == "kept"]
    share = kept.groupby("cls").split.apply(lambda s: (s == "val").mean())
    assert cmp.loc["photo", "Paper"] == round(share["Paper"], 3)
    overall = (kept.split == "val").mean()
    assert cmp.loc["photo", "largest class deviation"] == round((share - overall).abs().max(), 3)


def test_split_seed_study_has_one_row_per_seed(crop_table):
    study = eda.split_seed_study(crop_table, 0.2, range(3))
    assert study.index.tolist() == [0, 1, 2]
    assert (study["leakage, photo split"] == 0).all() and (study["leakage, crop split"] > 0.5).all()


def test_presets():
    assert eda.preset_values("quick", set()) == {}
    full = eda.preset_values("full", {"seed"})
    assert full["split_seeds"] == 20 and "seed" not in full and full["iou_threshold"] == 0.4
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        eda.preset_values("fast", set())


def test_headline_figures_by_hand():
    table = pd.DataFrame(
        {
            "status": ["kept"] * 6 + ["overlap", "aspect", "unmapped"],
            "cls": ["A", "A", "A", "B", "C", "D", "A", "B", None],
            "image_id": [1, 1, 2, 2, 3, 3, 1, 2, 3],
            "split": ["train", "val", "train", "val", "val", "val", None, None, None],
        }
    )
    fig = eda.headline_figures(table)
    assert fig["step 3 drops (share of mapped boxes)"] == round(1 / 8, 3)
    assert fig["step 4 drops (share of mapped boxes)"] == round(1 / 8, 3)
    assert fig["top-3 share of the kept crops"] == round(5 / 6, 3)
    assert fig["kept crops per photo (mean)"] == 2.0
    assert fig["leaked val crops (crop-by-crop split)"] == round(2 / 4, 3)


# ----------------------------------------------------------------------------- exercise 1: IoU


def test_iou_check_accepts_the_reference(capsys):
    ch01.check_iou_corners(chapter_solution("iou_corners"))
    assert capsys.readouterr().out.startswith("✓ iou_corners agrees on all 7 cases")


def _iou_no_clip(a, b):
    inter = (min(a[2], b[2]) - max(a[0], b[0])) * (min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _iou_double_union(a, b):
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]))


def _iou_over_a(a, b):
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (iou_xywh, "You read the last two numbers as width and height"),
        (
            _iou_no_clip,
            (
                r"boxes apart in x and y\] returned 0.1429, expected 0.0000. The boxes "
                r"do not overlap, yet your intersection is not 0: clip"
            ),
        ),
        (_iou_double_union, "Your union counts the overlap twice"),
        (_iou_over_a, "You divided by the smaller box's area; IoU divides by the union"),
        (lambda a, b: "0.5", "it must return one number"),
        (
            lambda a, b: 0.5,
            (
                r"iou_corners\(\(0, 0, 4, 4\), \(2, 2, 6, 6\)\) \[partial overlap\] "
                r"returned 0.5000, expected 0.1429. Draw the two boxes"
            ),
        ),
    ],
)
def test_iou_check_names_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch01.check_iou_corners(wrong)


def test_iou_check_on_the_student_stub_says_not_written_yet():
    with pytest.raises(NotSolved, match="iou_corners is not written yet"):
        ch01.check_iou_corners(_stub)


def test_iou_check_wants_symmetry():
    def lopsided(a, b):
        return iou_corners(a, b) if a <= b else iou_corners(a, b) + 0.1

    with pytest.raises(ExerciseError, match="IoU is symmetric"):
        ch01.check_iou_corners(lopsided)


# ----------------------------------------------------------------------------- exercise 2


def test_drop_larger_check_accepts_the_reference(capsys):
    ch01.check_drop_larger(chapter_solution("drop_larger"))
    assert (
        "agrees with the pipeline on 7 hand-made cases and 200 random images"
        in capsys.readouterr().out
    )


def _drop_smaller(boxes, threshold):
    big = drop_larger(boxes, threshold)
    return {
        j
        for i in big
        for j in range(len(boxes))
        if j != i and iou_xywh(boxes[i], boxes[j]) >= threshold
    }


def _greedy(boxes, threshold):
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i][2] * boxes[i][3], i))
    kept, dropped = [], set()
    for i in order:
        (
            dropped.add(i)
            if any(iou_xywh(boxes[i], boxes[k]) >= threshold for k in kept)
            else kept.append(i)
        )
    return dropped


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            _drop_smaller,
            (
                r"\[a cup \(box 0\) and the lid inside it \(box 1\)\] dropped \[1\], the "
                r"rule drops \[0\]: you dropped the SMALLER box"
            ),
        ),
        (lambda b, t: drop_larger(b, t, strict=True), "check that you compare with >=, not >"),
        (lambda b, t: drop_larger(b, t, keep_ties=True), "on a tie the box with the higher index"),
        (_greedy, "judge every pair on the original boxes, all at once"),
        (lambda b, t: None, "returned None: return the positions"),
        (lambda b, t: [b[i] for i in drop_larger(b, t)], "return box positions"),
        (lambda b, t: {0, 1} if len(b) == 2 else drop_larger(b, t), "you dropped both boxes"),
        (lambda b, t: "0", "returned a str; return a set or list of positions"),
    ],
)
def test_drop_larger_check_names_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch01.check_drop_larger(wrong)


def test_drop_larger_check_finds_a_mistake_only_random_boxes_show():
    def no_overlap_beyond_two(boxes, threshold):  # right on <= 3 boxes, wrong on crowded images
        return drop_larger(boxes, threshold) if len(boxes) <= 3 else set()

    with pytest.raises(ExerciseError, match=r"\[random boxes\].*draw them on squared paper"):
        ch01.check_drop_larger(no_overlap_beyond_two)


def test_expected_drops_is_the_pipeline_rule():
    cup, lid = [0, 0, 4, 5], [0, 0, 4, 3]
    assert ch01.expected_drops([cup, lid], 0.4) == {0}
    assert ch01.expected_drops([cup, lid], 0.61) == set()
    assert ch01.expected_drops([], 0.4) == set()


# ----------------------------------------------------------------------------- exercise 3


def test_macro_f1_check_accepts_the_reference(capsys):
    ch01.check_macro_f1(chapter_solution("macro_f1_from_confusion"))
    assert "agrees with trashkit.metrics.macro_f1 on all 4 cases" in capsys.readouterr().out


def _accuracy(cm):
    cm = np.asarray(cm)
    return float(np.trace(cm) / cm.sum())


def _weighted(cm):
    cm = np.asarray(cm, float)
    tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    f1 = np.where(tp > 0, 2 * tp / (support + predicted), 0.0)
    return float((f1 * support).sum() / support.sum())


def _f1_of_means(cm):
    cm = np.asarray(cm, float)
    p = (np.diag(cm) / np.maximum(cm.sum(0), 1)).mean()
    r = (np.diag(cm) / cm.sum(1)).mean()
    return float(2 * p * r / (p + r))


def _crashes_on_zero(cm):
    f1 = []
    for k in range(len(cm)):
        tp = cm[k][k]
        p, r = tp / sum(row[k] for row in cm), tp / sum(cm[k])
        f1.append(2 * p * r / (p + r))
    return sum(f1) / len(f1)


def _nan_on_zero(cm):
    cm = np.asarray(cm, float)
    with np.errstate(all="ignore"):
        p, r = np.diag(cm) / cm.sum(0), np.diag(cm) / cm.sum(1)
        return float(np.mean(2 * p * r / (p + r)))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_accuracy, r"toy classifier A\] returned 0.7500, expected 0.6758: that is the accuracy"),
        (_weighted, "support-WEIGHTED F1"),
        (_f1_of_means, "F1 of the averaged precision and recall"),
        (
            lambda cm: float(np.mean(np.diag(np.asarray(cm)) / np.asarray(cm).sum(1))),
            "that is the mean recall",
        ),
        (_crashes_on_zero, r"raised ZeroDivisionError.*never predicts class 2.*count its F1 as 0"),
        (_nan_on_zero, r"returned nan: a class that is never predicted has precision 0/0"),
        (lambda cm: 0.5, r"returned 0.5000, expected 0.6758. Per class k: F1 = 2 TP"),
        (lambda cm: None, "it must return one number"),
    ],
)
def test_macro_f1_check_names_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch01.check_macro_f1(wrong)


def test_expected_macro_f1_matches_the_hand_computation():
    assert ch01.expected_macro_f1([[10, 1, 1], [2, 4, 0], [1, 0, 1]]) == pytest.approx(
        (20 / 25 + 8 / 11 + 2 / 4) / 3
    )
    assert ch01.expected_macro_f1([[12, 0, 0], [0, 6, 0], [2, 0, 0]]) == pytest.approx(
        (24 / 26 + 1) / 3
    )


# ----------------------------------------------------------------------------- eda helpers


def test_labels_from_confusion_round_trips():
    from sklearn.metrics import confusion_matrix

    cm = [[10, 1, 1], [2, 4, 0], [1, 0, 1]]
    y_true, y_pred = eda.labels_from_confusion(cm)
    assert len(y_true) == 20 and confusion_matrix(y_true, y_pred).tolist() == cm


def test_mapping_overview_lists_what_feeds_each_class():
    view = eda.mapping_overview(load_mapping("taco"))
    assert view.index.tolist() == load_mapping("taco")["classes"] + ["(dropped)"]
    assert "Can" in view.loc["Metal", "supercategories"]
    assert "Battery" in view.loc["(dropped)", "supercategories"]
    assert "Paper cup" in view.loc["Paper", "categories (by name)"]
    assert (
        eda.mapping_overview(load_mapping("synthetic")).loc["Paperpack", "supercategories"]
        == "Carton"
    )


def test_draw_boxes_marks_the_overlap():
    fig = eda.draw_boxes({"A": [1, 1, 4, 3], "B": [3, 2, 4, 4]})
    ax = fig.axes[0]
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 1 and (hatched[0].get_width(), hatched[0].get_height()) == (2, 2)
    assert ax.get_ylim() == (7, 0)  # y grows downwards, as in an image


def _write_coco(path: Path, images: list[dict], anns: list[dict]) -> Path:
    cats = [
        {"id": 1, "name": "Paper cup", "supercategory": "Cup"},
        {"id": 2, "name": "Plastic lid", "supercategory": "Lid"},
    ]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


MAPPING = {"classes": ["Paper", "Plastic"], "supercategories": {"Cup": "Paper", "Lid": "Plastic"}}


def test_overlap_pairs_finds_the_partner_on_the_same_photo(tmp_path):
    """Annotation id 2 is used on two photos (as in the real TACO file): the partner of the
    dropped cup must be the lid on the cup's photo, not the box with id 2 elsewhere."""
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 100, "height": 100},
        {"id": 2, "file_name": "b.jpg", "width": 100, "height": 100},
    ]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 30]},  # cup
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 30, 30]},  # lid inside
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 50, 10, 20]},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 90, 90]},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reused annotation id is reported by a warning
        table = build_crop_table(_write_coco(tmp_path / "c.json", images, anns), MAPPING)
    pairs = eda.overlap_pairs(table)
    assert len(pairs) == 1
    row = pairs.iloc[0]
    assert (row.dropped, row.kept, row.image_id) == ("Paper cup", "Plastic lid", 1)
    assert row.iou == pytest.approx(0.75) and row.area_ratio == pytest.approx(4 / 3)
    assert row.small_inside == pytest.approx(1.0) and row.large_other == pytest.approx(0.25)
    fig = eda.overlap_examples(table, tmp_path, n=4)
    assert fig is not None and "drop Paper cup" in fig.axes[0].get_title()


def test_overlap_pairs_and_examples_without_overlaps(tmp_path):
    images = [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]}]
    table = build_crop_table(_write_coco(tmp_path / "c.json", images, anns), MAPPING)
    assert eda.overlap_pairs(table).columns.tolist() == eda.PAIR_COLUMNS
    assert eda.overlap_examples(table, tmp_path) is None


def _pair_table(tmp_path: Path, file_name: str) -> pd.DataFrame:
    images = [{"id": 1, "file_name": file_name, "width": 60, "height": 40}]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 30]},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 30, 30]},
    ]
    return build_crop_table(_write_coco(tmp_path / f"{len(file_name)}.json", images, anns), MAPPING)


def _drawn(fig, rgb: tuple[int, int, int]) -> bool:
    """The pixel inside both boxes has about this colour (JPEG moves colours slightly)."""
    pixel = np.asarray(fig.axes[0].images[0].get_array())[20, 20][:3].astype(int)
    return bool(np.abs(pixel - np.array(rgb)).max() <= 8)


def test_overlap_examples_never_open_a_photo_outside_the_image_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    Image.new("RGB", (60, 40), (0, 255, 0)).save(root / "inside.jpg")
    secret = tmp_path / "secret.jpg"
    Image.new("RGB", (60, 40), (255, 0, 0)).save(secret)
    os.symlink(secret, root / "link.jpg")
    # an honest photo is drawn
    assert _drawn(eda.overlap_examples(_pair_table(tmp_path, "inside.jpg"), root), (0, 255, 0))
    # a symbolic link inside the root that leads out of it: grey canvas, the secret unread
    assert _drawn(eda.overlap_examples(_pair_table(tmp_path, "link.jpg"), root), (200, 200, 200))
    # a hand-edited table whose file_name climbs out of the root
    table = _pair_table(tmp_path, "inside.jpg").assign(file_name="../secret.jpg")
    assert _drawn(eda.overlap_examples(table, root), (200, 200, 200))


def test_photo_leakage_counts_val_crops_with_a_sibling_in_train():
    table = pd.DataFrame(
        {"image_id": [1, 1, 2, 2, 3, 4], "split": ["train", "val", "val", "val", "train", None]}
    )
    leak = eda.photo_leakage(table)
    assert leak["val crops"] == 3 and leak["val crops sharing a photo with train"] == 1
    assert leak["share of val crops"] == pytest.approx(0.3333)
    assert leak["photos with crops"] == 3 and leak["photos on both sides"] == 1


# ----------------------------------------------------------------------------- the notebook


def test_structure_and_the_design_task_is_graded_by_its_measuring_check():
    nb = _nb()
    check_structure(nb, "ch01", n_exercises=6)
    assert "ch01.check_design_split(design_split, table)" in exercise_cells(nb)[-1]
    assert re.search(r"^## Design task", _markdown(nb), re.MULTILINE)
    assert book.check_markers(nb, NAME) == 6


def test_parameters_are_all_used_and_the_presets_name_real_ones():
    from trashkit.book import QUICK_PARAMS, declared_parameters

    nb = _nb()
    declared = declared_parameters(nb)
    rest = "\n".join(
        c.source
        for c in nb.cells
        if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
    )
    assert not [n for n in declared if not re.search(rf"\b{n}\b", rest)]
    for values in eda.PRESETS.values():
        assert set(values) <= set(declared)
        assert all(declared[k] == v for k, v in values.items() if k != "split_seeds")
    assert set(QUICK_PARAMS["01_eda"]) <= set(declared)


def _namespace(table: pd.DataFrame) -> dict:
    """What the exercise cells take from the cells before them."""
    kept = table[table.status == "kept"]
    return {
        "ch01": ch01,
        "np": np,
        "pd": pd,
        **_lesson_iou(),
        "cup": [0, 0, 4, 5],
        "lid": [0, 0, 4, 3],
        "table": table,
        "class_sizes": kept.cls.value_counts(),
        "crops_per_photo": kept.groupby("image_id").size(),
        "val_fraction": 0.2,
        "seed": 42,
        "grouped_split": grouped_split,
    }


def test_every_exercise_stops_in_the_student_copy_and_its_solution_passes(crop_table, capsys):
    exercises_in_turn(_nb(), _namespace(crop_table), capsys)


def test_the_student_copy_holds_no_answer():
    nb = _nb()
    outside = "\n".join(
        re.sub(r"### BEGIN SOLUTION\n.*?### END SOLUTION", "", c.source, flags=re.DOTALL)
        for c in nb.cells
    )
    answers = {
        line.strip()
        for src in exercise_cells(nb)
        for block in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", src, re.DOTALL)
        for line in block.splitlines()
        if len(line.strip()) >= 12
        and not line.strip().startswith("#")
        and line.strip() not in outside  # lines the lessons show too (e.g. the IoU's last line)
    }
    assert len(answers) >= 15
    for copy in (book.student_copy(nb), student_copy(nb)):
        text = "\n".join(c.source for c in copy.cells)
        assert not [a for a in answers if a in text]
        assert "### BEGIN SOLUTION" not in text or copy is not None
    questionnaire = _section("Questionnaire", nb)
    assert not re.search(r"\banswers?:", questionnaire, re.IGNORECASE)


def _questions(nb=None) -> list[str]:
    return re.findall(r"^(\d+)\. ", _section("Questionnaire", nb), re.MULTILINE)


def test_questionnaire_has_10_to_20_questions_and_the_note_answers_each():
    numbers = _questions()
    assert 10 <= len(numbers) <= 20 and numbers == [str(i) for i in range(1, len(numbers) + 1)]
    note = NOTE.read_text()
    key = note[note.index("## Questionnaire: answer key") :]
    key = key[: key.find("\n## ", 1)] if "\n## " in key[1:] else key
    assert re.findall(r"^(\d+)\. ", key, re.MULTILINE) == numbers


def test_glossary_has_the_course_terms():
    glossary = _section("Glossary")
    for korean, english in [
        ("경량화", "lightweighting"),
        ("연산량", "amount of computation"),
        ("추론", "inference"),
        ("파라미터 수", "number of parameters"),
        ("가지치기", "pruning"),
        ("양자화", "quantization"),
        ("지식 증류", "knowledge distillation"),
        ("데이터 증강", "data augmentation"),
        ("검증 데이터", "validation data"),
        ("과적합", "overfitting"),
        ("클래스 불균형", "class imbalance"),
    ]:
        row = next((r for r in glossary.splitlines() if r.startswith(f"| {korean} |")), "")
        assert english in row, korean


def test_attributions_follow_the_course_material():
    text = re.sub(r"\s+", " ", _markdown() + "\n" + "\n".join(c.source for c in _nb().cells))
    for wrong in ("solution talk", "competition's recipe", "winning", "the talk's method"):
        assert wrong not in text.lower(), wrong
    for sentence in re.split(r"(?<=[.;])\s", text):
        if "156" in sentence:
            assert "one team" in sentence or "156-pixel" in sentence, sentence
        if "office-hour talk" in sentence and "matters most" in sentence:
            assert "course day 20" in sentence
            assert "earlier image-classification competition of the course" in sentence


def test_course_facts_table_matches_the_cell_that_computes_with_them():
    def numbers(s):
        return {int(n.replace(",", "")) for n in re.findall(r"\b\d{1,2},\d{3}\b", s)}

    facts, cell = numbers(_cell("cell-04b")), numbers(_cell("cell-05").replace("_", ","))
    assert cell == {20851, 2606, 2611, 32599, 4076, 4083}
    assert facts == cell | {2606 + 2611, 4076 + 4083}  # the test sets, which the cell adds up


# ----------------------------------------------------------------------------- prose numbers


def _results_rows(heading: str) -> dict[int, list[str]]:
    """The per-split-seed rows of the docs/results.md table under ``### <heading>``."""
    text = RESULTS.read_text()
    part = text[text.index(f"### {heading}") :]
    part = part[: part.index("\n### ", 5)]
    rows = {}
    for line in part.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0] in ("0", "1", "2"):
            rows[int(cells[0])] = cells
    return rows


def _trashnet_cell() -> dict[str, list[float]]:
    tree = ast.parse(_cell("cell-49a"))
    table = next(n for n in ast.walk(tree) if isinstance(n, ast.Dict))
    return ast.literal_eval(table)


def test_trashnet_figures_are_those_of_docs_results_and_the_prose_quotes_their_means():
    quick, full = _results_rows("Quick recipe"), _results_rows("Full recipe")
    # columns of both tables: split seed | test (best.pt) | test, last epoch | val | ...
    want = {
        "quick recipe (100 epochs), val: chose best.pt": [float(quick[s][3]) for s in range(3)],
        "quick recipe (100 epochs), test": [float(quick[s][1]) for s in range(3)],
        "full recipe (300 epochs), val: chose best.pt": [float(full[s][3]) for s in range(3)],
        "full recipe (300 epochs), test": [float(full[s][1]) for s in range(3)],
    }
    assert _trashnet_cell() == want
    summaries = {k: f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}" for k, v in want.items()}
    results = RESULTS.read_text()
    for text in summaries.values():  # docs/results.md prints the same mean ± sd
        assert text in results, text
    prose = _cell("cell-49b")
    quoted = re.findall(r"\d\.\d{3} ± \d\.\d{3}", prose)
    assert sorted(quoted) == sorted(summaries.values())
    assert "0.836 ± 0.020" in quoted  # the quick recipe's test macro-F1 (chapters 4 and 5)


def test_every_number_of_the_trashnet_protocol_prose_is_in_docs_results():
    results = RESULTS.read_text()
    protocol = results[results.index("**Protocol**") : results.index("### Ablation")]
    summaries = {f"{np.mean(v):.3f}" for v in _trashnet_cell().values()}
    summaries |= {f"{np.std(v, ddof=1):.3f}" for v in _trashnet_cell().values()}
    prose = _cell("cell-49") + _cell("cell-49b")
    _all_numbers_verified(prose, [protocol, *summaries], {"4", "5"})  # chapters 4 and 5


def _numbers(text: str) -> set[str]:
    """The number tokens of prose: code spans and references (section 11, chapter 4, step 3,
    exercise 5, steps 1-5) are not figures."""
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"\b(?:sections?|chapters?|steps?|exercises?) \d+(?:[–-]\d+)?", "", text)
    return set(re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?%?", text))


def _all_numbers_verified(text: str, fragments: list[str], allowed: set[str]) -> None:
    """Every number token of ``text`` is one a fragment checked, or an allowed constant."""
    verified = set().union(*(_numbers(f) for f in fragments)) | allowed
    assert _numbers(text) <= verified, _numbers(text) - verified


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def taco():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        coco = load_coco(TACO)
    reused = sorted(
        int(i)
        for w in caught
        for i in re.findall(r"\d+", str(w.message).split("[")[1].split("]")[0])
    )
    return coco, build_crop_table(coco, "taco"), reused


def _naive_split():
    """The chapter's own inline split by photo (section 11), read from its cell."""
    src = _cell("cell-48b")
    defs = [n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef)]
    ns = {"np": np, "pd": pd}
    exec(compile(ast.Module(body=defs, type_ignores=[]), "split cell", "exec"), ns)  # noqa: S102
    return ns["split_by_photo"]


def _taco_fragments(coco, table, reused) -> list[str]:
    from trashkit.data import step_counts

    cats = coco.categories
    photos = pd.DataFrame(list(coco.images.values()))
    mapped = table[table.status.isin(["kept", "overlap", "aspect"])]
    kept = table[table.status == "kept"]
    sizes = kept.cls.value_counts()
    dropped = table[table.status == "unmapped"].category.value_counts()
    pairs = eda.overlap_pairs(table)
    top_pairs = (pairs.dropped + " | " + pairs.kept).value_counts().head(4)
    aspect = table[table.status == "aspect"]
    before = table[table.cls.notna() & (table.status != "bad_box")]
    leak = eda.photo_leakage(table)
    acc, f1 = ch01.expected_majority(sizes.tolist())
    naive = table.copy()
    is_kept = naive.status == "kept"
    naive.loc[is_kept, "split"] = _naive_split()(naive.image_id[is_kept], 0.2, 42)
    naive_dev = eda.split_comparison({"n": naive}).loc["n", "largest class deviation"]
    n_overlap = int((table.status == "overlap").sum())
    steps = step_counts(table)
    frags = [
        f"{len(coco.images):,} photos, {len(coco.annotations):,} annotations, {len(cats)} "
        f"categories in {len({c['supercategory'] for c in cats})} supercategories",
        f"median {photos.width.median():.0f} × {photos.height.median():.0f} px",
        f"Two annotation ids ({reused[0]} and {reused[1]})",
        f"clipped {int(table.clipped.sum())} boxes to their photo and refused none",
        f"drops {len(dropped) and int(dropped.sum()):,} of the {len(table):,} boxes "
        f"({dropped.sum() / len(table):.0%})",
        *[f"{name} ({n}" for name, n in dropped.head(4).items()],
        *[f"{c} {n:,} ({n / sizes.sum():.1%})" for c, n in sizes.items()],
        f"Top-3 share {eda.top3_share(sizes):.1%}",
        f"the smallest class is {sizes.min() / sizes.max():.0%} of the largest",
        f"accuracy {acc:.3f} and macro-F1 {f1:.3f}",
        f"drops {n_overlap} crops ({n_overlap / len(mapped):.1%} of the mapped boxes)",
        *[f"{p} ({n})" for p, n in top_pairs.items()],
        f"is {pairs.small_inside.median():.0%} (rounded; at least {pairs.small_inside.min():.0%}",
        f"something else is {pairs.large_other.median():.0%}",
        f"In {(pairs.dropped_class == pairs.kept_class).sum()} of the {len(pairs)} pairs",
        f"drops {len(aspect)} crops, {(aspect.cls == 'Plastic').sum()} of them Plastic",
        *[f"{name} ({n})" for name, n in aspect.category.value_counts().head(2).items()],
        f"width from {before.w.min():.0f} to {before.w.max():,.0f} px (median "
        f"{before.w.median():.0f})",
        f"height from {before.h.min():.0f} to {before.h.max():,.0f} px (median "
        f"{before.h.median():.0f})",
        f"aspect ratio median {before.aspect.median():.1f}, largest {before.aspect.max():.0f}",
        f"{leak['val crops sharing a photo with train']} of the {leak['val crops']} validation "
        f"crops ({leak['share of val crops']:.0%}",
        f"{leak['photos on both sides']} of the {leak['photos with crops']:,} photos",
        f"predicts {ch01.expected_leakage(kept.groupby('image_id').size().tolist(), 0.2):.1%}",
        f"strays by {naive_dev:.3f} at seed 42",
        f'"IMAGES MISSING" for all {kept.image_id.nunique():,} photos',
    ]
    first = steps.iloc[0].tolist()
    for step, row in steps.iterrows():  # the rows equal to the first are left out
        if step == steps.index[0] or row.tolist() != first:
            frags.append("| " + " | ".join([step, *map(str, row.tolist())]) + " |")
    return frags


@needs(TACO)
def test_taco_reference_numbers_are_recomputed(taco):
    coco, table, reused = taco
    section = _section("TACO annotations")
    flat = _flat(section)
    frags = _taco_fragments(coco, table, reused)
    for f in frags:
        assert _flat(f) in flat, f
    seeds = ["70.9% ± 2.0% (67.6% to 73.6%)", "0.003 ± 0.001, 0.003 ± 0.000"]  # the slow test
    course = {"79%"}  # the competition's top-3 share (the course material)
    parameters = {"0", "1", "2", "3", "4", "5", "0.4", "4.0", "0.2", "42", "20"}
    _all_numbers_verified(section, [*frags, *seeds], course | parameters)
    supers = len({c["supercategory"] for c in coco.categories})
    assert f"TACO has {len(coco.categories)} in {supers} supercategories" in _cell("cell-10")
    reference = ast.literal_eval(
        next(n for n in ast.walk(ast.parse(_cell("cell-59a"))) if isinstance(n, ast.Dict))
    )
    assert reference == eda.headline_figures(table).to_dict()


@pytest.mark.slow
@needs(TACO)
def test_taco_split_seed_figures_are_recomputed(taco):
    _, table, _ = taco
    study = eda.split_seed_study(table, 0.2, range(eda.PRESETS["full"]["split_seeds"]))
    crop, photo = study["leakage, crop split"], study["largest class deviation, photo split"]
    dev_crop = study["largest class deviation, crop split"]
    flat = _flat(_section("TACO annotations"))
    assert (
        f"leaks {crop.mean():.1%} ± {crop.std():.1%} of the validation crops (from "
        f"{crop.min():.1%} to {crop.max():.1%})" in flat
    )
    assert (study["leakage, photo split"] == 0).all()
    assert f"{photo.mean():.3f} ± {photo.std():.3f} (the crop-by-crop split's: " in flat
    assert f"split's: {dev_crop.mean():.3f} ± {dev_crop.std():.3f})" in flat


@needs(TRASHNET)
def test_trashnet_reference_numbers_are_recomputed():
    counts = {
        d.name: sum(1 for f in d.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
        for d in sorted(TRASHNET.iterdir())
        if d.is_dir()
    }
    sizes = set()
    for d in TRASHNET.iterdir():
        for f in d.glob("*.jpg") if d.is_dir() else []:
            with Image.open(f) as im:
                sizes.add(im.size)
    total = sum(counts.values())
    series = pd.Series(counts)
    section = _section("TrashNet photos")
    ((width, height),) = sizes
    frags = [
        f"{total:,} photos in {len(counts)} classes",
        ", ".join(f"{c} {n}" for c, n in counts.items()),
        f"Top-3 share {eda.top3_share(series):.1%}",
        f"the smallest class {series.min() / series.max():.0%} of the largest",
        f"Every image is {width} × {height} px",
        "`plastic26.jpg` and `plastic256.jpg`",
        "seed-42",
    ]
    for f in frags:
        assert _flat(f) in _flat(section), f
    assert (TRASHNET / "plastic" / "plastic26.jpg").is_file()
    assert (TRASHNET / "plastic" / "plastic256.jpg").is_file()
    _all_numbers_verified(section, frags, {"1", "5", "1–5", "6"})


def test_header_cost_is_the_measurement_the_instructor_note_records():
    header = _cell("cell-00")
    cost = re.search(r"\*\*Cost on 2 CPU cores: (.*?)\*\*", header, re.DOTALL).group(1)
    timings = NOTE.read_text()
    timings = timings[timings.index("## Timings") :]
    for figure in re.findall(r"(\d+(?:½)? (?:s|minutes?))\b", cost):
        assert figure in timings, figure
    assert "papermill notebooks/01_eda.ipynb" in header


# ----------------------------------------------------------------------------- executed


def _run(tmp_path: Path, home: Path, **params) -> nbformat.NotebookNode:
    return execute_chapter(CHAPTER, tmp_path / NAME, home, interactive=False, **params)


def _no_errors(nb) -> None:
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors


@pytest.mark.slow
def test_chapter_on_the_synthetic_default(tmp_path, tiny_home):
    from trashkit.book import QUICK_PARAMS

    nb = _run(tmp_path, tiny_home, output_dir=str(tmp_path / "run"), **QUICK_PARAMS["01_eda"])
    _no_errors(nb)
    text = printed(nb)
    assert "SYNTHETIC default data" in text and "top-3 share" in text
    assert text.count("✓") == 6  # five exercises and the design task
    assert re.search(r"leaked validation crops: predicted \d+\.\d%, measured \d+\.\d%", text)
    for f in (
        "step_counts.csv",
        "crop_table.csv",
        "class_distribution.png",
        "sizes.png",
        "overlaps.png",
        "samples.png",
        "folder_classes.png",
    ):
        assert (tmp_path / "run" / f).is_file(), f
    assert any((tmp_path / "run" / "crops" / "train").iterdir())


@pytest.mark.slow
def test_chapter_exports_the_split_by_photo(tmp_path, tiny_home):
    nb = _run(
        tmp_path, tiny_home, output_dir=str(tmp_path / "run"), split_by="photo", split_seeds=1
    )
    _no_errors(nb)
    table = pd.read_csv(tmp_path / "run" / "crop_table.csv")
    by_photo = eda.photo_split(table, 0.2, 42)
    val = {f"{r.image_id}_{r.ann_id}.jpg" for r in by_photo[by_photo.split == "val"].itertuples()}
    written = {p.name for p in (tmp_path / "run" / "crops" / "val").rglob("*.jpg")}
    assert written == val


#: the chapter's "Reference results" table for TACO: boxes per class surviving each step
TACO_STEPS = {
    "0 annotations in file": [544, 315, 182, 1263, 845, 140, 1495, 4784],
    "5 split: val": [108, 60, 35, 237, 165, 28, 0, 633],
}


@pytest.mark.slow
@needs(TACO)
def test_chapter_on_taco_annotations_prints_the_reference_results(tmp_path, tiny_home):
    nb = _run(tmp_path, tiny_home, source=str(TACO), preset="full", output_dir=str(tmp_path / "r"))
    _no_errors(nb)
    text = printed(nb)
    assert "IMAGES MISSING" in text and "no crops to show" in text
    assert "top-3 share: 80.6%" in text and "split_seeds 20" in text
    assert "42 crops dropped" in text and "something else: 41%" in text
    assert "leaked validation crops: predicted 71.5%, measured 70.1%" in text
    steps = pd.read_csv(tmp_path / "r" / "step_counts.csv", index_col=0)
    for step, row in TACO_STEPS.items():
        assert steps.loc[step].tolist() == row, step
    figures = next(c for c in nb.cells if c.id == "cell-59a").outputs[0]["data"]["text/plain"]
    rows = [r.split()[-2:] for r in figures.splitlines()[1:]]
    assert rows and all(a == b for a, b in rows), figures


@pytest.mark.slow
@needs(TRASHNET)
def test_chapter_on_the_trashnet_image_folder(tmp_path, tiny_home):
    nb = _run(tmp_path, tiny_home, source=str(TRASHNET), output_dir=str(tmp_path / "run"))
    _no_errors(nb)
    text = printed(nb)
    assert "imagefolder" in text and "2527 images in 6 classes" in text
    assert "top-3 share 62.4%" in text
    assert "steps 1-5 run on:" in text and "SYNTHETIC default data" in text


@pytest.mark.slow
def test_output_dir_is_never_overwritten(tmp_path, tiny_home):
    import papermill as pm

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "earlier.txt").write_text("keep me")
    with pytest.raises(pm.PapermillExecutionError, match="already holds files"):
        _run(tmp_path, tiny_home, output_dir=str(tmp_path / "run"))
    assert (tmp_path / "run" / "earlier.txt").read_text() == "keep me"
