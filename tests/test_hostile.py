"""The README's table "bad input -> what trashkit does", run row by row against one generated
hostile dataset (image folders, a COCO file, YAMLs, checkpoints), so the table stays true.

Each row of :data:`TABLE` is (input, what trashkit does, check); the README must hold every
row's two texts, and every check must pass.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from trashkit.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from trashkit.data import build_cache, build_crop_table, export_crops, load_coco, load_source
from trashkit.models import YamlConfigError, build_model, build_yaml_model

RNG = np.random.default_rng(0)


def _jpeg(path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 255, (30, 40, 3), np.uint8)).save(path, **kw)
    return path


def _folder(root: Path) -> Path:
    """An image folder with one of every kind of trouble beside good images."""
    metal, paper = root / "Metal", root / "Paper"
    for i in range(3):
        _jpeg(metal / f"ok{i}.jpg")
        _jpeg(paper / f"ok{i}.jpg")
    good = (metal / "ok0.jpg").read_bytes()
    (metal / "cut.jpg").write_bytes(good[: len(good) // 2])
    (metal / "zero.jpg").write_bytes(b"")
    (metal / "fake.jpg").write_text("not an image")
    base = Image.fromarray(RNG.integers(0, 255, (30, 40, 3), np.uint8))
    base.convert("CMYK").save(metal / "cmyk.jpg")
    Image.new("RGBA", (40, 30), (0, 0, 0, 0)).save(metal / "clear.png")
    base.convert("P").save(paper / "palette.png")
    Image.fromarray((RNG.integers(0, 65535, (30, 40))).astype(np.uint16)).save(
        paper / "sixteen.png"
    )
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown upright
    _jpeg(paper / "rotated.jpg", exif=exif.tobytes())
    Image.new("1", (15000, 12000)).save(paper / "huge.png")  # 180 M pixels: a bomb
    (paper / "Thumbs.db").write_bytes(b"\x00" * 10)
    os.symlink(root / "nowhere.jpg", paper / "dangling.jpg")
    (root / "Plastic").mkdir()
    return root


def _coco(root: Path) -> Path:
    """A COCO file whose names, boxes and categories were never checked."""
    _jpeg(root / "images" / "a.jpg")
    _jpeg(root / "outside" / "secret.jpg")
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
        {"id": 2, "file_name": "../outside/secret.jpg", "width": 40, "height": 30},
        {"id": 3, "file_name": str(root / "outside" / "secret.jpg"), "width": 40, "height": 30},
    ]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10]},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [2, 2, 10, 10]},
        {"id": 3, "image_id": 3, "category_id": 1, "bbox": [2, 2, 10, 10]},
        {"id": 4, "image_id": 1, "category_id": 1},
        {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 2]},
        {"id": 6, "image_id": 1, "category_id": 1, "bbox": ["x", 1, 2, 3]},
        {"id": 7, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0, -3]},
        {"id": 8, "image_id": 1, "category_id": 1, "bbox": [30, 20, 30, 30]},
        {"id": 9, "image_id": 1, "category_id": 99, "bbox": [20, 2, 8, 8]},
    ]
    cats = [{"id": 1, "name": "Drink can", "supercategory": "Can"}]
    path = root / "images" / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    dup = root / "dup.json"
    dup.write_text(
        json.dumps(
            {
                "images": images + [dict(images[0], file_name="b.jpg")],
                "annotations": anns[:1],
                "categories": cats,
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    return {"root": root, "folder": _folder(root / "folder"), "coco": _coco(root / "coco")}


@pytest.fixture(scope="module")
def cached(hostile):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scan = load_source(hostile["folder"])
        cache = build_cache(scan.samples, 24, hostile["root"] / "cache", progress=False)
    reasons = {
        Path(p).name: why for p, why in cache.skipped + [(str(p), w) for p, w in scan.skipped]
    }
    return scan, cache, reasons


def check_corrupt(hostile, cached):
    _, cache, why = cached
    assert "truncated" in why["cut.jpg"] and "zero.jpg" in why and "fake.jpg" in why
    assert len(cache) > 0  # the rest is kept


def check_not_image(hostile, cached):
    assert "not an image file" in cached[2]["Thumbs.db"]


def check_modes(hostile, cached):
    scan, cache, why = cached
    kept = {Path(p).name for p in cache.paths}
    assert {"cmyk.jpg", "clear.png", "palette.png", "sixteen.png"} <= kept
    clear = cache.images[[Path(p).name for p in cache.paths].index("clear.png")]
    assert clear.min() == 255  # transparent pixels become white


def check_exif(hostile, cached):
    from trashkit.data import open_rgb

    assert open_rgb(hostile["folder"] / "Paper" / "rotated.jpg").size == (30, 40)


def check_huge(hostile, cached):
    assert "huge.png" in cached[2] and "refused" in cached[2]["huge.png"]


def check_empty_class(hostile, cached):
    with pytest.warns(UserWarning, match="class folder 'Plastic' has no images"):
        scan = load_source(hostile["folder"])
    assert "Plastic" not in scan.classes


def check_dangling(hostile, cached):
    assert "missing file" in cached[2]["dangling.jpg"]


def check_val_only_class(hostile, cached):
    comp = hostile["root"] / "comp"
    shutil.copytree(hostile["folder"] / "Metal", comp / "train" / "Metal", dirs_exist_ok=True)
    shutil.copytree(hostile["folder"] / "Metal", comp / "val" / "Glass", dirs_exist_ok=True)
    with pytest.raises(ValueError, match="Glass"):
        load_source(comp)


def check_rare_class(hostile, cached):
    from trashkit.data.split import holdout_split, uncovered_classes

    labels = np.array([0] * 10 + [1] * 10 + [2] * 2)
    _, val, _ = holdout_split(labels, 0.2, 0.0, seed=0)
    assert uncovered_classes(labels, val, ["a", "b", "rare"]) == ["rare"]


def check_unsafe_path(hostile, cached):
    t = build_crop_table(hostile["coco"], "synthetic", val_fraction=0.0)
    assert t.attrs["unsafe_path_ann_ids"] == [2, 3]
    out = export_crops(t, hostile["coco"].parent, hostile["root"] / "crops")
    assert out.written == (t.status == "kept").sum() == 2  # a.jpg's two good boxes only
    assert not any(
        "_2.jpg" in p.name or "_3.jpg" in p.name for p in (hostile["root"] / "crops").rglob("*.jpg")
    )


def check_duplicate_ids(hostile, cached):
    with pytest.raises(ValueError, match=r"duplicate image id\(s\) \[1\]"):
        load_coco(hostile["coco"].parent.parent / "dup.json")


def check_bad_bbox(hostile, cached):
    t = build_crop_table(hostile["coco"], "synthetic", val_fraction=0.0)
    assert {4, 5, 6, 7} <= set(t.attrs["bad_box_ann_ids"])
    assert bool(t.set_index("ann_id").loc[8, "clipped"])  # reaches outside: clipped


def check_unknown_category(hostile, cached):
    t = build_crop_table(hostile["coco"], "synthetic", val_fraction=0.0)
    assert t.attrs["unknown_category_ids"] == [99]


def check_yaml(hostile, cached):
    for text, arg in (
        ("width_multiple: 0", "width_multiple"),
        ("depth_multiple: -1", "depth_multiple"),
        ("input_channel: 0", "input_channel"),
    ):
        path = hostile["root"] / "bad.yaml"
        path.write_text(f"{text}\nbackbone:\n  - [1, Conv, [16, 3, 2]]\n")
        with pytest.raises(YamlConfigError, match=rf"bad.yaml:1.*{arg}"):
            build_yaml_model(path, 6)
    path.write_text("backbone:\n  - [1, Conv, [16, 3, 1, -1]]\n")
    with pytest.raises(YamlConfigError, match=r"bad.yaml:2: backbone\[0\] Conv.*'p'"):
        build_yaml_model(path, 6)


def check_train_config(hostile, cached):
    from trashkit.train import TrainConfig

    with pytest.raises(ValueError, match="training parameter image_size=32.7 is invalid"):
        TrainConfig.from_dict({"image_size": 32.7})
    with pytest.raises(ValueError, match="training parameter epochs='2' is invalid"):
        TrainConfig.from_dict({"epochs": "2"})


def check_misspelled_parameter(hostile, cached):
    from trashkit.notebook import UnknownParameter, check_parameters

    history = ["import x", "epochs = 30\nlr = 0.1\n", "# Parameters\nepoch = 1\n"]
    with pytest.raises(UnknownParameter, match="unknown parameter 'epoch' — did you mean"):
        check_parameters({"In": history})


def _checkpoint(path: Path, model: str = "tiny", **raw) -> Path:
    ck = Checkpoint(
        model=build_model("tiny", 6).state_dict(),
        classes=list("abcdef"),
        config={"model": model},
        image_size=24,
    )
    save_checkpoint(path, ck)
    if raw:
        torch.save({**torch.load(path, weights_only=True), **raw}, path)
    return path


class _Planted:
    def __reduce__(self):
        return (print, ("this must never run",))


def check_pickled_code(hostile, cached):
    path = _checkpoint(hostile["root"] / "evil.pt", extra={"x": _Planted()})
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(path)


def check_mismatch(hostile, cached):
    path = _checkpoint(hostile["root"] / "mismatch.pt", model="mbv3_reduced")
    with pytest.raises(CheckpointError, match="do not fit model 'mbv3_reduced'"):
        load_checkpoint(path).build_model()


def check_newer(hostile, cached):
    path = _checkpoint(hostile["root"] / "newer.pt", version=99)
    with pytest.raises(CheckpointError, match="newer trashkit"):
        load_checkpoint(path)


def check_unknown_class(hostile, cached):
    from trashkit.scoring import score_folder

    ckpt = load_checkpoint(_checkpoint(hostile["root"] / "six.pt"))
    with pytest.raises(ValueError, match=r"class\(es\) \['Metal', 'Paper'\] that the model"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score_folder(ckpt, hostile["folder"], progress=False)


def check_reused_folder(hostile, cached):
    from trashkit.runs import resolve_output_dir

    with pytest.raises(FileExistsError, match="already holds files"):
        resolve_output_dir(hostile["folder"], "x")


def check_storage_url(hostile, cached):
    from trashkit.search import SearchConfig, storage_url

    with pytest.raises(ValueError, match="is not a database URL"):
        storage_url(SearchConfig(storage="postgres//nope"), hostile["root"])


#: (input, what trashkit does, check) - the README table, row by row
TABLE = [
    (
        "truncated, zero-byte or non-image file with an image extension",
        "skipped and reported by name; the rest is kept",
        check_corrupt,
    ),
    ("stray non-image file (Thumbs.db, notes)", "not scanned; reported", check_not_image),
    (
        "grayscale, RGBA, CMYK, 16-bit, palette image",
        "converted to RGB (transparent: white)",
        check_modes,
    ),
    ("EXIF-rotated phone photo", "turned upright", check_exif),
    ("huge image (a decompression bomb)", "refused, skipped and reported", check_huge),
    ("empty class folder", "reported; left out of the class list", check_empty_class),
    (
        "dangling symlink, or file deleted after the scan",
        "skipped and reported as missing",
        check_dangling,
    ),
    (
        "competition layout: class in val/ but not in train/",
        "error naming the class",
        check_val_only_class,
    ),
    (
        "class too small for a validation share",
        "said before training; macro-F1 covers the "
        "classes that have validation images (listed in metrics.json)",
        check_rare_class,
    ),
    (
        "COCO file_name with ../ or an absolute path",
        "never opened; counted as unsafe_path and reported by annotation id",
        check_unsafe_path,
    ),
    ("COCO duplicate image / category ids", "error naming the ids", check_duplicate_ids),
    (
        "COCO bbox missing, too short, not numbers, or empty",
        "counted as bad_box, named by annotation id; boxes reaching outside the image are clipped",
        check_bad_bbox,
    ),
    (
        "COCO category id missing from the categories",
        "counted as unknown_category, ids reported",
        check_unknown_category,
    ),
    (
        "YAML with width_multiple <= 0, negative depth, input_channel 0, negative padding",
        "error naming file, line, module and argument",
        check_yaml,
    ),
    (
        'training parameter of the wrong type or range (image_size=32.7, epochs="2")',
        "error naming the parameter and what it expects",
        check_train_config,
    ),
    (
        "misspelled papermill parameter (-p epoch 1)",
        "the chapter stops at once: unknown parameter 'epoch' — did you mean 'epochs'?",
        check_misspelled_parameter,
    ),
    (
        "checkpoint holding pickled code",
        "refused without running it (weights_only loading)",
        check_pickled_code,
    ),
    (
        "checkpoint whose weights do not fit its model",
        "error naming the model and the mismatch",
        check_mismatch,
    ),
    ("checkpoint from a newer trashkit", "refused, with the versions", check_newer),
    (
        "evaluation images of a class the model does not know",
        "error naming the class",
        check_unknown_class,
    ),
    (
        "output folder that already holds files",
        "refused; nothing is overwritten",
        check_reused_folder,
    ),
    ("Optuna storage URL that is not a URL", "fails at once with examples", check_storage_url),
]


@pytest.mark.parametrize("row", TABLE, ids=[r[0][:40] for r in TABLE])
def test_row_holds(row, hostile, cached):
    row[2](hostile, cached)


def test_readme_shows_every_row():
    readme = (REPO / "README.md").read_text()
    missing = [f"{a} -> {b}" for a, b, _ in TABLE if f"| {a} | {b} |" not in readme]
    assert not missing, "README table rows missing or different:\n" + "\n".join(missing)


def test_no_row_is_forgotten():
    """Every check_* function of this module is a row of the table."""
    checks = {name for name in globals() if name.startswith("check_")}
    assert checks == {r[2].__name__ for r in TABLE}
