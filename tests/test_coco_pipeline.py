"""The five steps of the dataset story: hand-made cases, and invariants on real TACO."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trashkit.data import (
    build_crop_table,
    export_crops,
    iou_matrix,
    load_mapping,
    load_source,
    overlap_drops,
    resolve_mapping,
    step_counts,
)
from trashkit.data.split import stratified_split
from conftest import TACO, needs


def test_iou_hand_values():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10]])
    m = iou_matrix(boxes)
    assert m[0, 1] == pytest.approx(50 / 150)
    assert m[0, 2] == 0.0
    assert m[0, 3] == pytest.approx(1.0)
    assert np.allclose(m, m.T)


def test_larger_box_of_overlapping_pair_is_dropped():
    small = [10, 10, 20, 20]  # area 400
    large = [8, 8, 26, 26]  # area 676, IoU = 400/676 = 0.59
    far = [100, 100, 30, 30]
    drops = overlap_drops(np.array([small, large, far], float), np.array([1, 2, 3]), 0.4)
    assert [(i, j) for i, j, _ in drops] == [(1, 0)]
    assert drops[0][2] == pytest.approx(400 / 676)
    # below threshold: nothing dropped
    assert overlap_drops(np.array([small, large], float), np.array([1, 2]), 0.6) == []


def test_equal_areas_tie_breaks_on_id():
    drops = overlap_drops(np.array([[0, 0, 10, 10], [1, 0, 10, 10]], float), np.array([7, 3]), 0.4)
    assert drops[0][0] == 0  # the one with the higher annotation id (7) goes


def _coco(tmp_path, anns, categories=None, size=(100, 100)):
    cats = categories or [
        {"id": 1, "name": "Drink can", "supercategory": "Can"},
        {"id": 2, "name": "Normal paper", "supercategory": "Paper"},
        {"id": 3, "name": "Battery", "supercategory": "Battery"},
    ]
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": size[0], "height": size[1]}],
        "annotations": [
            {
                "id": i + 1,
                "image_id": a.get("image_id", 1),
                "category_id": a["cat"],
                "bbox": a["bbox"],
            }
            for i, a in enumerate(anns)
        ],
        "categories": cats,
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path


def test_bad_boxes_unknown_categories_and_mapping(tmp_path):
    path = _coco(
        tmp_path,
        [
            {"cat": 1, "bbox": [10, 10, 20, 20]},  # kept
            {"cat": 1, "bbox": [10, 10, 0, 20]},  # zero width -> bad_box
            {"cat": 1, "bbox": [10, 10, -5, 20]},  # negative -> bad_box
            {"cat": 2, "bbox": [90, 90, 30, 30]},  # partly outside -> clipped to 10x10, kept
            {"cat": 2, "bbox": [150, 150, 10, 10]},  # fully outside -> bad_box
            {"cat": 3, "bbox": [50, 50, 10, 10]},  # Battery -> unmapped
            {"cat": 99, "bbox": [60, 10, 10, 10]},  # unknown category id
            {"cat": 1, "bbox": [1, 1, 5, 5], "image_id": 42},  # image not listed
        ],
    )
    t = build_crop_table(path, "synthetic", val_fraction=0.0)
    assert t.status.tolist() == [
        "kept",
        "bad_box",
        "bad_box",
        "kept",
        "bad_box",
        "unmapped",
        "unknown_category",
        "missing_image",
    ]
    clipped = t.iloc[3]
    assert clipped.clipped and (clipped.w, clipped.h) == (10.0, 10.0)
    assert t.attrs["unknown_category_ids"] == [99]


def test_aspect_filter(tmp_path):
    path = _coco(
        tmp_path,
        [
            {"cat": 1, "bbox": [0, 0, 10, 41]},  # 4.1 > 4
            {"cat": 1, "bbox": [50, 0, 10, 40]},  # exactly 4: kept
            {"cat": 2, "bbox": [0, 60, 45, 10]},
        ],
    )  # 4.5 (wide) dropped
    t = build_crop_table(path, "synthetic", aspect_bound=4.0)
    assert t.status.tolist() == ["aspect", "kept", "aspect"]


def test_mapping_name_overrides_supercategory():
    table = load_mapping("taco")
    cats = [
        {"id": 0, "name": "Corrugated carton", "supercategory": "Carton"},
        {"id": 1, "name": "Drink carton", "supercategory": "Carton"},
        {"id": 2, "name": "Glass bottle", "supercategory": "Bottle"},
        {"id": 3, "name": "Something new", "supercategory": "Unheard of"},
    ]
    assert resolve_mapping(table, cats) == {0: "Paper", 1: "Paperpack", 2: None, 3: None}


def test_mapping_table_errors_name_the_entry(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes: [Metal]\nsupercategories:\n  Can: Metall\n")
    with pytest.raises(ValueError, match="supercategories.Can -> 'Metall'"):
        load_mapping(bad)
    with pytest.raises(FileNotFoundError, match="nope"):
        load_mapping("nope")


def test_stratified_split_is_deterministic_and_stratified():
    labels = ["a"] * 50 + ["b"] * 20 + ["c"] * 1
    tr1, va1 = stratified_split(labels, 0.2, seed=5)
    tr2, va2 = stratified_split(labels, 0.2, seed=5)
    assert (va1 == va2).all() and (tr1 == tr2).all()
    assert sorted(np.concatenate([tr1, va1]).tolist()) == list(range(71))
    vl = np.array(labels)[va1]
    assert (vl == "a").sum() == 10 and (vl == "b").sum() == 4 and (vl == "c").sum() == 0
    _, va3 = stratified_split(labels, 0.2, seed=6)
    assert not (va3 == va1).all()


def _check_invariants(t: pd.DataFrame, thr: float):
    # no two kept boxes of one image overlap at IoU >= thr (boxes kept after step 3,
    # i.e. status kept or aspect, were all judged together)
    judged = t[t.status.isin(["kept", "aspect"])]
    for _, g in judged.groupby("image_id"):
        m = iou_matrix(g[["x", "y", "w", "h"]].to_numpy())
        np.fill_diagonal(m, 0)
        assert (m < thr).all()
    # every dropped box was the larger of an overlapping pair
    by_id = t.set_index("ann_id")
    for r in t[t.status == "overlap"].itertuples():
        partner = by_id.loc[r.partner]
        assert partner.image_id == r.image_id
        assert r.area >= partner.area and r.iou >= thr
        assert (
            iou_matrix(
                np.array([[r.x, r.y, r.w, r.h], [partner.x, partner.y, partner.w, partner.h]])
            )[0, 1]
            >= thr
        )
    # per-step counts add up: each row = previous row - what that step dropped
    c = step_counts(t)
    totals = c["total"].tolist()
    dropped = t.status.value_counts()
    steps = [
        "bad_box",
        "missing_image",
        "unsafe_path",
        "unknown_category",
        "unmapped",
        "overlap",
        "aspect",
    ]
    for k, step in enumerate(steps):
        assert totals[k] - totals[k + 1] == dropped.get(step, 0), step
    assert totals[-2] + totals[-1] == totals[len(steps)] == (t.status == "kept").sum()


@needs(TACO)
@pytest.mark.parametrize("thr", [0.4, 0.2])
def test_invariants_on_real_taco(thr):
    t = build_crop_table(TACO, "taco", iou_threshold=thr)
    assert len(t) == 4784
    assert (t.status == "overlap").sum() > 0
    _check_invariants(t, thr)
    # real quirks: float boxes, nothing without an image, every TACO category is mapped or null
    assert (t.status == "unknown_category").sum() == 0


def test_invariants_on_synthetic(tiny_coco):
    t = build_crop_table(tiny_coco, "synthetic")
    assert {"overlap", "unmapped", "kept"} <= set(t.status)
    _check_invariants(t, 0.4)


@needs(TACO)
def test_taco_crop_step_reports_missing_images(tmp_path):
    t = build_crop_table(TACO, "taco")
    res = export_crops(t, TACO.parent, tmp_path / "crops")
    assert res.written == 0
    assert len(res.missing_images) == t[t.status == "kept"].file_name.nunique()
    assert "IMAGES MISSING" in res.summary()


def test_export_writes_competition_layout_and_never_overwrites(tiny_coco, tmp_path):
    t = build_crop_table(tiny_coco, "synthetic", val_fraction=0.25, seed=1)
    res = export_crops(t, tiny_coco.parent, tmp_path / "crops")
    kept = t[t.status == "kept"]
    assert res.written == len(kept) and not res.missing_images
    scan = load_source(tmp_path / "crops")
    assert scan.layout == "competition"
    assert len(scan.samples) == len(kept)
    assert sum(s.split == "val" for s in scan.samples) == (kept.split == "val").sum()
    with pytest.raises(FileExistsError):
        export_crops(t, tiny_coco.parent, tmp_path / "crops")


def test_corrupt_scene_is_reported_not_fatal(tiny_coco, tmp_path):
    import shutil

    root = tmp_path / "scenes"
    shutil.copytree(tiny_coco.parent, root)
    t = build_crop_table(root / "annotations.json", "synthetic")
    victim = t[t.status == "kept"].file_name.iloc[0]
    (root / victim).write_bytes(b"\xff\xd8\xff not really")
    res = export_crops(t, root, tmp_path / "crops")
    assert len(res.bad_images) == 1 and victim in res.bad_images[0]
    assert (
        res.written
        == (t.status == "kept").sum() - (t[t.status == "kept"].file_name == victim).sum()
    )
