"""COCO files from nobody-checked sources: escaping paths, duplicate ids, malformed boxes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import trashkit.data.coco as coco_module
from trashkit.data import build_crop_table, export_crops, load_coco, step_counts

CATS = [
    {"id": 1, "name": "Drink can", "supercategory": "Can"},
    {"id": 2, "name": "Normal paper", "supercategory": "Paper"},
]


def _write(path: Path, images: list[dict], anns: list[dict], cats: list[dict] = CATS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def _image(path: Path, color: tuple[int, int, int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (60, 40), color).save(path)
    return path


@pytest.fixture()
def escaping(tmp_path):
    """An image root with one honest image, and three names that reach a real file outside."""
    secret = _image(tmp_path / "outside" / "secret.jpg", (255, 0, 0))
    root = tmp_path / "root"
    _image(root / "a.jpg", (0, 255, 0))
    os.symlink(secret, root / "link.jpg")
    names = ["a.jpg", "../outside/secret.jpg", str(secret), "link.jpg"]
    images = [{"id": i + 1, "file_name": n, "width": 60, "height": 40} for i, n in enumerate(names)]
    anns = [
        {"id": 10 + i, "image_id": i + 1, "category_id": 1, "bbox": [5, 5, 20, 20]}
        for i in range(len(names))
    ]
    return root, _write(root / "ann.json", images, anns)


def test_file_names_leaving_the_root_are_counted_and_never_opened(escaping, tmp_path, monkeypatch):
    root, ann = escaping
    t = build_crop_table(ann, "synthetic", val_fraction=0.0)
    # '..' and the absolute path are refused from the annotations alone
    assert t.status.tolist() == ["kept", "unsafe_path", "unsafe_path", "kept"]
    assert t.attrs["unsafe_path_ann_ids"] == [11, 12]
    counts = step_counts(t)
    assert counts.loc["1 crop: image listed", "total"] == 4
    assert counts.loc["1 crop: path inside image root", "total"] == 2
    opened = []
    real_open = coco_module.open_rgb
    monkeypatch.setattr(
        coco_module, "open_rgb", lambda p, *a, **k: opened.append(Path(p)) or real_open(p, *a, **k)
    )
    res = export_crops(t, root, tmp_path / "crops")
    # the symbolic link inside the root that leads out is refused at export
    assert opened == [(root / "a.jpg").resolve()]
    assert res.written == 1
    assert res.unsafe_ann_ids == [11, 12, 13]
    assert "REFUSED 3 annotation(s)" in res.summary()
    written = list((tmp_path / "crops").rglob("*.jpg"))
    assert [p.name for p in written] == ["1_10.jpg"]


def test_export_rechecks_a_hand_edited_table(escaping, tmp_path, monkeypatch):
    root, ann = escaping
    t = build_crop_table(ann, "synthetic", val_fraction=0.0)
    t.loc[1, "status"] = "kept"  # as if someone edited the table by hand
    monkeypatch.setattr(coco_module, "open_rgb", lambda p, *a, **k: pytest.fail(f"opened {p}"))
    t = t[t.ann_id == 11]
    res = export_crops(t, root, tmp_path / "crops")
    assert res.written == 0 and res.unsafe_ann_ids == [11]


@pytest.mark.parametrize(
    "name,safe",
    [
        ("a/../b.jpg", True),
        ("./b.jpg", True),
        ("batch_1/000006.jpg", True),
        ("a/../../b.jpg", False),
        ("..\\b.jpg", False),
        ("C:/b.jpg", False),
        ("/etc/passwd", False),
        ("", False),
    ],
)
def test_safe_image_path(tmp_path, name, safe):
    got = coco_module.safe_image_path(tmp_path, name)
    assert (got is not None) == safe
    if safe:
        assert got.is_relative_to(tmp_path.resolve())


@pytest.mark.parametrize("kind,field_name", [("image", "images"), ("category", "categories")])
def test_duplicate_image_and_category_ids_are_errors_naming_them(tmp_path, kind, field_name):
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 10, "height": 10},
        {"id": 2, "file_name": "b.jpg", "width": 10, "height": 10},
    ]
    cats = list(CATS)
    if kind == "image":
        images += [
            {"id": 2, "file_name": "c.jpg", "width": 10, "height": 10},
            {"id": 1, "file_name": "d.jpg", "width": 10, "height": 10},
        ]
    else:
        cats += [{"id": 2, "name": "Battery", "supercategory": "Battery"}]
    path = _write(tmp_path / "dup.json", images, [], cats)
    with pytest.raises(ValueError) as err:
        load_coco(path)
    msg = str(err.value)
    assert "dup.json" in msg and f"duplicate {kind} id" in msg
    assert ("[1, 2]" if kind == "image" else "[2]") in msg


def test_duplicate_annotation_ids(tmp_path):
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 50, "height": 50},
        {"id": 2, "file_name": "b.jpg", "width": 50, "height": 50},
    ]
    box = [1, 1, 10, 10]
    same = [
        {"id": 7, "image_id": 1, "category_id": 1, "bbox": box},
        {"id": 7, "image_id": 1, "category_id": 2, "bbox": box},
    ]
    with pytest.raises(ValueError, match=r"same.json: duplicate annotation id\(s\) \[7\]"):
        load_coco(_write(tmp_path / "same.json", images, same))
    # across images (as in the official TACO file) rows stay apart by (image_id, ann_id)
    across = [
        {"id": 7, "image_id": 1, "category_id": 1, "bbox": box},
        {"id": 7, "image_id": 2, "category_id": 2, "bbox": box},
    ]
    with pytest.warns(UserWarning, match=r"annotation id\(s\) \[7\]"):
        t = build_crop_table(_write(tmp_path / "across.json", images, across), "synthetic")
    assert t.attrs["duplicate_ann_ids"] == [7]
    assert t.status.tolist() == ["kept", "kept"]


def test_image_entries_without_size_are_errors_naming_them(tmp_path):
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 10, "height": 10},
        {"id": 5, "file_name": "b.jpg", "height": 10},
    ]
    with pytest.raises(ValueError, match=r"bad.json: image id\(s\) \[5\].*'width'"):
        load_coco(_write(tmp_path / "bad.json", images, []))


def _ann(ann_id: int, drop: tuple[str, ...] = (), **fields) -> dict:
    """A valid annotation on image 1, with ``fields`` overridden and ``drop`` keys removed."""
    ann = {"id": ann_id, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], **fields}
    for key in drop:
        del ann[key]
    return ann


def test_malformed_annotations_are_bad_boxes_named_by_id(tmp_path):
    images = [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}]
    anns = [
        _ann(1),  # kept
        _ann(2, drop=("bbox",)),
        _ann(3, bbox=[10, 10, 20]),  # too short
        _ann(4, bbox=["10", 10, 20, 20]),  # not numbers
        _ann(5, bbox=None),
        _ann(6, drop=("image_id",)),
        _ann(7, image_id="one"),
        _ann(8, drop=("category_id",)),
        _ann(9, category_id=1.5),
        _ann(10, image_id=42),  # a valid id of an unlisted image
        _ann(11, bbox="10,10,20,20"),
    ]
    t = build_crop_table(_write(tmp_path / "ann.json", images, anns), "synthetic", val_fraction=0.0)
    assert t.status.tolist() == ["kept"] + ["bad_box"] * 8 + ["missing_image", "bad_box"]
    bad = [2, 3, 4, 5, 6, 7, 8, 9, 11]
    assert t.attrs["bad_box_ann_ids"] == bad
    reasons = t.attrs["bad_box_reasons"]
    assert reasons[2] == "bbox missing" and "3 value" in reasons[3]
    assert "non-numbers" in reasons[4] and "image_id" in reasons[6]
    assert "category_id" in reasons[9]
    counts = step_counts(t)
    assert counts.loc["1 crop: valid boxes", "total"] == 2
    assert str(t.image_id.dtype) == "Int64" and pd.isna(t.image_id.iloc[5])


def test_box_empty_after_clipping_is_named_too(tmp_path):
    images = [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}]
    anns = [{"id": 3, "image_id": 1, "category_id": 1, "bbox": [150, 150, 10, 10]}]
    t = build_crop_table(_write(tmp_path / "ann.json", images, anns), "synthetic")
    assert t.status.tolist() == ["bad_box"] and t.attrs["bad_box_ann_ids"] == [3]
    assert "outside its image" in t.attrs["bad_box_reasons"][3]
    assert t.image_id.dtype == "int64"
