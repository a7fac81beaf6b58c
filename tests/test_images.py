"""Every kind of bad or unusual image file gets converted or a clear error naming it."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from trashkit.data import BadImage, build_cache, load_source, open_rgb, scan_image_folder


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_modes_are_converted_to_rgb(tmp_path):
    base = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8))
    cases = {
        "gray.png": base.convert("L"),
        "rgba.png": base.convert("RGBA"),
        "palette.png": base.convert("P"),
        "cmyk.jpg": base.convert("CMYK"),
        "one_bit.png": base.convert("1"),
    }
    for name, img in cases.items():
        out = open_rgb(_save(img, tmp_path / name))
        assert out.mode == "RGB" and out.size == (30, 20), name


def test_transparent_pixels_become_white(tmp_path):
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    out = open_rgb(_save(img, tmp_path / "clear.png"))
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_respected(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    path = _save(img, tmp_path / "rot.jpg", exif=exif.tobytes())
    assert Image.open(path).size == (40, 20)
    assert open_rgb(path).size == (20, 40)


def test_truncated_jpeg_raises_bad_image_naming_file(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buf, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(BadImage) as err:
        open_rgb(path)
    assert "cut.jpg" in str(err.value) and "truncated" in str(err.value)


def test_non_image_with_image_extension(tmp_path):
    path = tmp_path / "fake.jpg"
    path.write_text("hello")
    with pytest.raises(BadImage, match="fake.jpg: not an image"):
        open_rgb(path)


def test_scan_skips_non_images_and_reports_empty_class(tmp_path):
    (tmp_path / "Metal").mkdir()
    (tmp_path / "Paper").mkdir()
    (tmp_path / "Empty").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "Metal" / "a.jpg")
    Image.new("RGB", (8, 8)).save(tmp_path / "Paper" / "b.png")
    (tmp_path / "Paper" / "notes.txt").write_text("x")
    with pytest.warns(UserWarning, match="Empty"):
        scan = scan_image_folder(tmp_path, classes=["Empty", "Metal", "Paper"])
    assert scan.counts() == {"Empty": 0, "Metal": 1, "Paper": 1}
    assert scan.empty_classes == ["Empty"]
    assert [p.name for p, _ in scan.skipped] == ["notes.txt"]
    assert "notes.txt" in scan.report()
    free = scan_image_folder(tmp_path)  # no fixed list: the empty class is left out
    assert free.classes == ["Metal", "Paper"]


def test_unknown_class_folder_is_an_error(tmp_path):
    (tmp_path / "Glass").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "Glass" / "a.jpg")
    with pytest.raises(ValueError, match="Glass"):
        scan_image_folder(tmp_path, classes=["Metal"])


def test_corrupt_file_is_skipped_by_cache_and_rest_kept(tmp_path):
    (tmp_path / "A").mkdir()
    for i in range(3):
        Image.new("RGB", (30, 20), (i * 50, 0, 0)).save(tmp_path / "A" / f"{i}.jpg")
    (tmp_path / "A" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    scan = scan_image_folder(tmp_path)
    with pytest.warns(UserWarning, match="broken.jpg"):
        cache = build_cache(scan.samples, 16, tmp_path / "cache", progress=False)
    assert len(cache) == 3
    assert [p.endswith("broken.jpg") for p, _ in cache.skipped] == [True]


def _competition(root, layout: dict[str, int]):
    """Folders ``root/<split>/<Class>`` with the given number of small images each."""
    for folder, n in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(root / folder / f"{i}.jpg")
    return root


@pytest.mark.parametrize("glass_in_train", [None, 0])
def test_val_class_missing_from_train_is_refused(tmp_path, glass_in_train):
    layout = {"train/Metal": 3, "val/Metal": 1, "val/Glass": 2}
    if glass_in_train is not None:  # an empty train folder counts as lacking
        layout["train/Glass"] = glass_in_train
    root = _competition(tmp_path, layout)
    with pytest.raises(ValueError, match=r"\['Glass'\].*only in val/.*never see"):
        load_source(root)
    with pytest.raises(ValueError, match="Glass"):
        load_source(root, classes=["Glass", "Metal"])


def test_train_only_class_is_fine(tmp_path):
    root = _competition(tmp_path, {"train/Metal": 2, "train/Paper": 2, "val/Metal": 1})
    scan = load_source(root)
    assert scan.layout == "competition" and scan.counts() == {"Metal": 3, "Paper": 2}


def test_open_rgb_says_missing_not_corrupt(tmp_path):
    with pytest.raises(BadImage) as err:
        open_rgb(tmp_path / "gone.jpg")
    assert "missing file" in err.value.reason and "corrupt" not in err.value.reason
    os.symlink(tmp_path / "nowhere.jpg", tmp_path / "link.jpg")
    with pytest.raises(BadImage, match="dangling symbolic link"):
        open_rgb(tmp_path / "link.jpg")


def test_dangling_link_and_deleted_file_are_skipped_by_cache(tmp_path):
    root = _competition(tmp_path / "data", {"A": 3, "B": 2})
    os.symlink(tmp_path / "nowhere.jpg", root / "A" / "link.jpg")
    scan = scan_image_folder(root)
    (root / "B" / "0.jpg").unlink()  # deleted between the scan and the cache build
    for attempt in ("build", "from disk"):
        with pytest.warns(UserWarning, match="missing file"):
            cache = build_cache(scan.samples, 16, tmp_path / "cache", progress=False)
        assert cache.from_disk == (attempt == "from disk")
        assert len(cache) == 4 and sorted(cache.labels.tolist()) == [0, 0, 0, 1]
        why = {os.path.basename(p): r for p, r in cache.skipped}
        assert set(why) == {"link.jpg", "0.jpg"}
        assert "dangling symbolic link" in why["link.jpg"]
        assert why["0.jpg"].startswith("missing file")
