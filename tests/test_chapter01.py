"""Chapter 1 (the dataset story): its exercise checks, its figures' helpers, and the chapter
itself executed headless on the synthetic default, the TACO annotations and TrashNet.

Every exercise check must accept the reference solution (the one stored in the notebook) and
reject wrong answers with a message that says what is wrong; the tests assert the messages.
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
from conftest import REPO, TACO, TRASHNET, needs
from PIL import Image

from trashkit import eda
from trashkit.data import build_crop_table, load_mapping
from trashkit.exercises import ExerciseError, NotSolved, ch01

CHAPTER = REPO / "notebooks" / "01_eda.ipynb"


# ----------------------------------------------------------------------------- reference answers


def iou_corners(a, b):
    inter_w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def iou_xywh(a, b):
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def drop_larger(boxes, threshold, strict=False, keep_ties=False):
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


def macro_f1_from_confusion(confusion):
    cm = np.asarray(confusion)
    f1 = []
    for k in range(len(cm)):
        tp = cm[k, k]
        fp, fn = cm[:, k].sum() - tp, cm[k, :].sum() - tp
        f1.append(2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0)
    return float(np.mean(f1))


# ----------------------------------------------------------------------------- exercise 1 and 5


def test_top3_prediction_accepts_a_share_and_explains_the_difference(capsys):
    ch01.check_top3_prediction(0.79)
    assert "prediction recorded" in capsys.readouterr().out
    ch01.check_top3_prediction(0.79, 0.806)
    assert "well predicted" in capsys.readouterr().out
    ch01.check_top3_prediction(0.6, 0.806)
    assert "MORE imbalanced than you expected" in capsys.readouterr().out
    ch01.check_top3_prediction(0.95, 0.806)
    assert "LESS imbalanced" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (79, r"looks like a percentage: write the share as a fraction \(0.79 for 79%\)"),
        (0.3, r"impossible: with 6 classes the three largest hold at least 3/6 = 50%"),
        ("0.8", r"must be a number such as 0.79, got '0.8' \(str\)"),
        (True, r"must be a number"),
        (-0.2, r"is not a share"),
        (float("nan"), r"not a finite number"),
    ],
)
def test_top3_prediction_rejects_impossible_predictions(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        ch01.check_top3_prediction(wrong)


def test_leakage_prediction(capsys):
    ch01.check_leakage_prediction(0.7)
    assert "prediction recorded" in capsys.readouterr().out
    ch01.check_leakage_prediction(0.2, 0.7)
    assert "more than you expected" in capsys.readouterr().out
    ch01.check_leakage_prediction(0.9, 0.5)
    assert "less than you expected" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="looks like a percentage"):
        ch01.check_leakage_prediction(70)


# ----------------------------------------------------------------------------- exercise 2: IoU


def test_iou_check_accepts_the_reference(capsys):
    ch01.check_iou_corners(iou_corners)
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


def _stub(*_):
    raise NotImplementedError("Exercise not yet solved: write your answer here")


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


# ----------------------------------------------------------------------------- exercise 3


def test_drop_larger_check_accepts_the_reference(capsys):
    ch01.check_drop_larger(drop_larger)
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


# ----------------------------------------------------------------------------- exercise 4


def test_macro_f1_check_accepts_the_reference(capsys):
    ch01.check_macro_f1(macro_f1_from_confusion)
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


def _cells(nb=None) -> list:
    return [c for c in (nb or nbformat.read(CHAPTER, as_version=4)).cells]


def _exercise_cells() -> list[str]:
    return [
        c.source for c in _cells() if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source
    ]


def test_exercises_have_solution_markers_and_a_check_after_them():
    cells = _exercise_cells()
    assert len(cells) >= 3
    for src in cells:
        assert src.count("### BEGIN SOLUTION") == src.count("### END SOLUTION") == 1
        after = src.split("### END SOLUTION", 1)[1]
        assert re.search(r"^ch01\.check_\w+\(", after, re.MULTILINE), src


def _student(src: str) -> str:
    """What nbgrader's ClearSolutions makes of a cell: the solution becomes a raise."""
    return re.sub(
        r"^([ \t]*)### BEGIN SOLUTION\n.*?### END SOLUTION\n",
        r'\1raise NotImplementedError("Exercise not yet solved")\n',
        src,
        flags=re.DOTALL | re.MULTILINE,
    )


def _namespace() -> dict:
    """What the exercise cells need: ch01, numpy, and the chapter's own iou_xywh lesson."""
    ns: dict = {"ch01": ch01, "np": np, "cup": [0, 0, 4, 5], "lid": [0, 0, 4, 3]}
    lesson = next(c.source for c in _cells() if c.source.startswith("def iou_xywh"))
    defs = [n for n in ast.parse(lesson).body if isinstance(n, ast.FunctionDef)]
    code = compile(ast.Module(body=defs, type_ignores=[]), "iou_xywh cell", "exec")
    exec(code, ns)  # noqa: S102 - the chapter's own lesson function
    return ns


def test_stored_solutions_pass_their_checks(capsys):
    ns = _namespace()
    for src in _exercise_cells():
        exec(compile(src, "exercise cell", "exec"), ns)  # noqa: S102
    out = capsys.readouterr().out
    assert out.count("✓") >= len(_exercise_cells()), out


def test_student_copy_fails_clearly_at_every_exercise():
    ns = _namespace()
    first = True
    for src in _exercise_cells():
        with pytest.raises((NotImplementedError, NotSolved)) as err:
            exec(compile(_student(src), "student cell", "exec"), ns)  # noqa: S102
        assert "not yet solved" in str(err.value) or "not written yet" in str(err.value)
        if first:  # the first exercise raises NotImplementedError itself (a top-level answer)
            assert type(err.value) is NotImplementedError
            first = False


def execute(tmp_path: Path, home: Path, **params) -> nbformat.NotebookNode:
    """Run chapter 1 with papermill in a clean TRASHKIT_HOME; return the executed notebook."""
    import papermill as pm

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRASHKIT_HOME", str(home))
        out = tmp_path / "01_eda.ipynb"
        pm.execute_notebook(
            str(CHAPTER),
            str(out),
            parameters={"interactive": False, **params},
            kernel_name="python3",
            cwd=str(REPO / "notebooks"),
            progress_bar=False,
        )
    return nbformat.read(out, as_version=4)


def _printed(nb) -> str:
    return "\n".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )


def _no_errors(nb) -> None:
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors


@pytest.mark.slow
def test_chapter_on_the_synthetic_default(tmp_path, tiny_home):
    nb = execute(tmp_path, tiny_home, output_dir=str(tmp_path / "run"))
    _no_errors(nb)
    text = _printed(nb)
    assert "SYNTHETIC default data" in text and "top-3 share" in text
    assert text.count("✓") >= 7  # 5 exercises, two of them checked twice
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


#: the chapter's "Reference results" table for TACO: boxes per class surviving each step
TACO_STEPS = {
    "0 annotations in file": [544, 315, 182, 1263, 845, 140, 1495, 4784],
    "2 map: mapped to a class": [544, 315, 182, 1263, 845, 140, 0, 3289],
    "3 overlap: IoU rule": [543, 307, 176, 1246, 836, 139, 0, 3247],
    "4 aspect: ratio bound": [539, 300, 176, 1184, 826, 138, 0, 3163],
    "5 split: train": [431, 240, 141, 947, 661, 110, 0, 2530],
    "5 split: val": [108, 60, 35, 237, 165, 28, 0, 633],
}


@pytest.mark.slow
@needs(TACO)
def test_chapter_on_taco_annotations_reproduces_the_reference_results(tmp_path, tiny_home):
    nb = execute(tmp_path, tiny_home, source=str(TACO), output_dir=str(tmp_path / "run"))
    _no_errors(nb)
    text = _printed(nb)
    assert "IMAGES MISSING" in text and "no crops to show" in text
    assert "top-3 share: 80.6%" in text
    assert "42 crops dropped" in text and "something else: 41%" in text
    assert "smallest 63%" in text and "same class in both boxes: 15 of 42" in text
    assert (tmp_path / "run" / "overlaps.png").is_file()
    steps = pd.read_csv(tmp_path / "run" / "step_counts.csv", index_col=0)
    for step, row in TACO_STEPS.items():
        assert steps.loc[step].tolist() == row, step
    table = pd.read_csv(tmp_path / "run" / "crop_table.csv")
    leak = eda.photo_leakage(table)
    assert (leak["val crops sharing a photo with train"], leak["val crops"]) == (444, 633)


@pytest.mark.slow
@needs(TRASHNET)
def test_chapter_on_the_trashnet_image_folder(tmp_path, tiny_home):
    nb = execute(tmp_path, tiny_home, source=str(TRASHNET), output_dir=str(tmp_path / "run"))
    _no_errors(nb)
    text = _printed(nb)
    assert "imagefolder" in text and "2527 images in 6 classes" in text
    assert "top-3 share 62.4%" in text
    assert "steps 1-5 run on:" in text and "SYNTHETIC default data" in text
    for f in ("samples.png", "folder_classes.png"):
        assert (tmp_path / "run" / f).is_file(), f


@pytest.mark.slow
def test_output_dir_is_never_overwritten(tmp_path, tiny_home):
    import papermill as pm

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "earlier.txt").write_text("keep me")
    with pytest.raises(pm.PapermillExecutionError, match="already holds files"):
        execute(tmp_path, tiny_home, output_dir=str(tmp_path / "run"))
    assert (tmp_path / "run" / "earlier.txt").read_text() == "keep me"
