"""The five dataset-building steps called one at a time, as chapter 1 shows them."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from trashkit.data import (
    TEST_DIR,
    aspect_step,
    build_crop_table,
    class_counts,
    crop_step,
    export_crops,
    load_coco,
    map_step,
    overlap_step,
    split_step,
)
from conftest import TACO, needs


def _steps(path, mapping, thr=0.4, bound=4.0, val=0.2, seed=42):
    coco = load_coco(path)
    tables = {"crop": crop_step(coco)}
    tables["map"] = map_step(tables["crop"], mapping, coco.categories)
    tables["overlap"] = overlap_step(tables["map"], thr)
    tables["aspect"] = aspect_step(tables["overlap"], bound)
    tables["split"] = split_step(tables["aspect"], val, seed)
    return tables


def test_steps_one_by_one_equal_the_whole_table(tiny_coco):
    tables = _steps(tiny_coco, "synthetic", 0.3, 2.5, 0.25, 1)
    whole = build_crop_table(tiny_coco, "synthetic", 0.3, 2.5, 0.25, 1)
    pd.testing.assert_frame_equal(tables["split"], whole)
    assert tables["split"].attrs == whole.attrs
    # each step returns a new table: the earlier ones still show their own state
    assert set(tables["crop"].status) == {"kept"}
    assert tables["crop"].cls.isna().all()
    assert "overlap" not in set(tables["map"].status)
    assert tables["aspect"].split.isna().all()


@needs(TACO)
def test_steps_on_real_taco_match_and_count():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TACO's two annotation ids used on two images
        tables = _steps(TACO, "taco")
        whole = build_crop_table(TACO, "taco")
    pd.testing.assert_frame_equal(tables["split"], whole)
    crop = class_counts(tables["crop"])  # before mapping: per detection supercategory
    assert crop.index.name == "supercategory"
    assert crop.loc["total", "kept"] == 4784 and crop.kept.iloc[0] == crop.kept.iloc[:-1].max()
    mapped = class_counts(tables["map"])
    assert mapped.index.tolist() == whole.attrs["classes"] + ["(unmapped)", "total"]
    assert mapped.loc["total", "kept"] == (tables["map"].status == "kept").sum()
    assert mapped.loc["(unmapped)", "unmapped"] == mapped.loc["total", "unmapped"] == 1495
    final = class_counts(whole)
    assert (final.train + final.val == final.kept).all()
    assert final.loc["total", "kept"] == (whole.status == "kept").sum() == 3163
    assert list(final.columns) == ["kept", "unmapped", "overlap", "aspect", "train", "val"]


def test_class_counts_shows_every_class_in_table_order(tmp_path, tiny_coco):
    t = build_crop_table(tiny_coco, "synthetic")
    counts = class_counts(t)
    assert counts.index[:6].tolist() == t.attrs["classes"]
    kept = t[t.status == "kept"].cls.value_counts()
    for cls, n in kept.items():
        assert counts.loc[cls, "kept"] == n
    by_category = class_counts(t, by="category")
    assert by_category.loc["total"].sum() == counts.loc["total"].sum()


def test_split_step_needs_the_mapping_first(tiny_coco):
    with pytest.raises(ValueError, match="map_step"):
        split_step(crop_step(tiny_coco))


@pytest.mark.parametrize(
    "step,value", [(overlap_step, 0.0), (overlap_step, 1.5), (aspect_step, 0.5)]
)
def test_step_parameters_are_checked(tiny_coco, step, value):
    with pytest.raises(ValueError, match="must be"):
        step(crop_step(tiny_coco), value)


def test_test_split_crops_go_to_the_one_test_folder(tiny_coco, tmp_path):
    t = build_crop_table(tiny_coco, "synthetic", val_fraction=0.0)
    t.loc[t.status == "kept", "split"] = "test"
    res = export_crops(t, tiny_coco.parent, tmp_path / "crops")
    written = sorted(p.parent for p in (tmp_path / "crops").rglob("*.jpg"))
    assert res.written == (t.status == "kept").sum() > 0
    assert set(written) == {tmp_path / "crops" / TEST_DIR}
