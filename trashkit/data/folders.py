"""Find labelled and unlabelled images on disk, whatever layout the user has.

Three layouts are understood (see README):

* competition: ``root/train/<Class>/*``, ``root/val/<Class>/*`` (usable together) and
  ``root/test/NoLabel/*`` (no labels);
* any image folder: ``root/<Class>/*`` (e.g. TrashNet);
* COCO: a ``.json`` annotation file (handled by :mod:`trashkit.data.coco`).

Scanning never decodes images (that is the cache's job); it only skips what is obviously not
an image and reports it, so one stray ``Thumbs.db`` never kills an epoch.

:func:`folder_without_class` makes the same layout without one class, as links (chapter 8's
class that a network never saw).
"""

from __future__ import annotations

import hashlib
import os
import warnings
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..paths import data_dir
from .images import IMAGE_EXTENSIONS

COMPETITION_SPLITS = ("train", "val")
#: the competition's unlabelled test folder, relative to the data root (the one spelling of it)
TEST_DIR = Path("test") / "NoLabel"


@dataclass(frozen=True)
class Sample:
    """One image on disk; ``label`` is -1 when unknown (test images)."""

    path: Path
    label: int
    split: str = ""


@dataclass
class ImageFolderScan:
    """What a scan found: samples, the class list, and everything it had to skip."""

    root: Path
    classes: list[str]
    samples: list[Sample]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)
    layout: str = "imagefolder"

    @property
    def labels(self) -> list[int]:
        """Class index per sample, in sample order (what a split or a metric needs)."""
        return [s.label for s in self.samples]

    def counts(self) -> dict[str, int]:
        """Images per class, in class order (empty classes show 0)."""
        out = {c: 0 for c in self.classes}
        for s in self.samples:
            out[self.classes[s.label]] += 1
        return out

    def report(self) -> str:
        """Human-readable scan result, listing every skipped file so nothing vanishes unseen."""
        lines = [
            f"{self.root} [{self.layout}]: {len(self.samples)} images in "
            f"{len(self.classes)} classes"
        ]
        if self.empty_classes:
            lines.append(f"  empty class folders: {', '.join(self.empty_classes)}")
        for path, why in self.skipped:
            lines.append(f"  skipped {path}: {why}")
        return "\n".join(lines)


def _is_image(path: Path) -> bool:
    """Judged by extension only (decoding is the cache's job); hidden files are OS clutter."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _files(folder: Path, skipped: list[tuple[Path, str]]) -> list[Path]:
    """Image files directly under ``folder`` (sorted); other files go to ``skipped``."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_dir():
            continue
        if _is_image(p):
            out.append(p)
        else:
            skipped.append((p, f"not an image file (extension {p.suffix or 'none'!r})"))
    return out


def detect_layout(root: Path | str) -> str:
    """'coco' for a .json file, 'competition' for train/ (+val/) folders, else 'imagefolder'."""
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".json":
        return "coco"
    if not root.is_dir():
        raise FileNotFoundError(f"data source {root} does not exist")
    if (root / "train").is_dir():
        return "competition"
    return "imagefolder"


def _check_train_covers(
    root: Path, splits: tuple[str, ...], per_class: dict[str, list[tuple[Path, str]]]
) -> None:
    """Refuse a class that has images in another split (val/) but none in train/.

    Why: train and val are used together, so such a class is one the model is asked about but
    never trained on, and it would score 0 without a word. A missing or empty train folder
    for the class counts as lacking.
    """
    if "train" not in splits or len(splits) < 2:
        return
    lacking = {
        c: sorted({s for _, s in items})
        for c, items in per_class.items()
        if items and all(s != "train" for _, s in items)
    }
    if lacking:
        where = "; ".join(f"{c!r} only in {'/, '.join(s)}/" for c, s in sorted(lacking.items()))
        raise ValueError(
            f"{root}: class(es) {sorted(lacking)} have no images in train/ "
            f"({where}): a model trained here would never see them. Add training "
            f"images under {root / 'train'}/<Class>/ or remove those folders"
        )


def _class_folders(base: Path) -> dict[str, Path]:
    """``{class name: folder}`` of one split's class folders, names in Unicode NFC.

    Why: macOS writes ``été`` decomposed (NFD), Linux and Windows keep what they are given,
    so a copied dataset can hold both spellings; they are one class. Two folders of one split
    that are the same name once normalised are refused by name (which one is meant?)."""
    out: dict[str, Path] = {}
    for d in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name = unicodedata.normalize("NFC", d.name)
        if name in out:
            raise ValueError(
                f"{base}: class folders {out[name].name!r} and {d.name!r} are the same name "
                f"{name!r} in different Unicode forms; merge or rename one"
            )
        out[name] = d
    return out


def scan_image_folder(
    root: Path | str, classes: list[str] | None = None, splits: tuple[str, ...] = ("",)
) -> ImageFolderScan:
    """Scan ``root/<split>/<Class>/*`` for every split in ``splits`` ('' = ``root`` itself).

    ``classes`` fixes the class list and order (e.g. the 6 competition classes); by default it
    is the sorted union of class folders. An empty class folder is reported, not fatal: with a
    fixed class list it stays (a class the model must still know), otherwise it is left out.
    A folder that is not in a fixed ``classes`` list is an error naming it, because silently
    dropping a whole class is exactly the kind of loss we promise never to cause. Likewise a
    class with images in val/ but none in train/ is an error naming it.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    skipped: list[tuple[Path, str]] = []
    per_class: dict[str, list[tuple[Path, str]]] = {}
    for split in splits:
        base = root / split if split else root
        if not base.is_dir():
            continue
        for name, d in _class_folders(base).items():
            per_class.setdefault(name, []).extend((f, split) for f in _files(d, skipped))
    found = sorted(per_class)
    if not found:
        raise ValueError(f"{root}: no class folders found (expected {root}/<Class>/*.jpg)")
    _check_train_covers(root, splits, per_class)
    if classes is not None:
        classes = [unicodedata.normalize("NFC", c) for c in classes]
    if classes is None:
        empty = [c for c in found if not per_class[c]]
        class_list = [c for c in found if per_class[c]]
    else:
        unknown = [c for c in found if c not in classes]
        if unknown:
            raise ValueError(
                f"{root}: class folder(s) {unknown} are not in the class list "
                f"{list(classes)}; add them to `classes` or remove the folders"
            )
        class_list = list(classes)
        empty = [c for c in class_list if not per_class.get(c)]
    if not class_list:
        raise ValueError(f"{root}: every class folder is empty")
    index = {c: i for i, c in enumerate(class_list)}
    samples = [
        Sample(path, index[c], split) for c in class_list for path, split in per_class.get(c, [])
    ]
    scan = ImageFolderScan(root, class_list, samples, skipped, empty)
    for c in empty:
        warnings.warn(f"{root}: class folder {c!r} has no images", stacklevel=2)
    return scan


def scan_unlabelled(folder: Path | str) -> ImageFolderScan:
    """All images directly in ``folder`` (e.g. ``test/NoLabel``), label -1."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"unlabelled image folder {folder} does not exist")
    skipped: list[tuple[Path, str]] = []
    samples = [Sample(p, -1, "test") for p in _files(folder, skipped)]
    return ImageFolderScan(folder, [], samples, skipped, layout="unlabelled")


def load_source(root: Path | str, classes: list[str] | None = None) -> ImageFolderScan:
    """Labelled images of a competition layout (train+val together) or any image folder."""
    layout = detect_layout(root)
    if layout == "coco":
        raise ValueError(
            f"{root} is a COCO annotation file: build crops first with "
            "trashkit.data.build_crop_table(...) and export_crops(...)"
        )
    splits = COMPETITION_SPLITS if layout == "competition" else ("",)
    scan = scan_image_folder(root, classes=classes, splits=splits)
    scan.layout = layout
    return scan


def folder_without_class(data: str | Path, holdout: str, dest: str | Path | None = None) -> Path:
    """An image folder (or competition layout) like ``data`` without class ``holdout``, made
    of links to ``data``'s class folders: nothing is copied, the held-out images stay unseen.

    ``dest`` None: one fixed folder per (source, class) under the data folder, reused by every
    run. Why: the image cache is keyed by the files' real paths, so two link folders to the
    same images share one cache, and it must see the same link paths each time.
    """
    data = Path(data)
    if dest is None:
        tag = hashlib.sha1(str(data.resolve()).encode()).hexdigest()[:8]
        dest = data_dir() / "without-class" / f"{data.name}-{tag}-{holdout}"
    dest = Path(dest)
    splits = [d for d in COMPETITION_SPLITS if (data / d).is_dir()] or [""]
    for split in splits:
        classes = sorted(p for p in (data / split).iterdir() if p.is_dir())
        if holdout not in [c.name for c in classes]:
            raise ValueError(
                f"{data / split} has no class folder {holdout!r}: {[c.name for c in classes]}"
            )
        (dest / split).mkdir(parents=True, exist_ok=True)
        for c in classes:
            link = dest / split / c.name
            if c.name != holdout and not link.exists():
                os.symlink(c.resolve(), link, target_is_directory=True)
    return dest
