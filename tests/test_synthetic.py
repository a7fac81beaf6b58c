"""The embedded default data: deterministic, labelled as synthetic, realistically imbalanced."""

from __future__ import annotations

import hashlib
import json

from trashkit.data import build_crop_table, make_synthetic_coco


def _digest(root):
    h = hashlib.sha1()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_deterministic_whatever_the_workers(tmp_path):
    a = make_synthetic_coco(tmp_path / "a", n_images=12, seed=7, workers=1)
    b = make_synthetic_coco(tmp_path / "b", n_images=12, seed=7, workers=2)
    assert _digest(a.parent) == _digest(b.parent)
    c = make_synthetic_coco(tmp_path / "c", n_images=12, seed=8)
    assert _digest(c.parent) != _digest(a.parent)


def test_labelled_synthetic_and_imbalanced(tmp_path):
    path = make_synthetic_coco(tmp_path, n_images=150, seed=0)
    coco = json.loads(path.read_text())
    assert coco["info"]["synthetic"] is True and "SYNTHETIC" in coco["info"]["description"]
    assert "SYNTHETIC" in (path.parent / "README.txt").read_text()
    t = build_crop_table(path, "synthetic")
    counts = t[t.status == "kept"].cls.value_counts()
    assert set(counts.index) == {
        "Metal",
        "Paper",
        "Paperpack",
        "Plastic",
        "Plasticbag",
        "Styrofoam",
    }
    top3 = counts.iloc[:3].sum() / counts.sum()
    assert 0.70 <= top3 <= 0.88
    # varied sizes and aspect ratios, and overlaps for the IoU rule to find
    assert t.w.std() > 10 and t.aspect.max() > 4
    assert (t.status == "overlap").sum() >= 5
