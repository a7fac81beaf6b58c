"""From a ``data`` parameter to the cached images and the train / val / test split of a run.

The split is part of the data layer, not of training, because scoring needs it too: chapter 5
and the benchmarks evaluate a run on its *test* images, which must be the same images the run
held back, rebuilt from its saved config (data, image size, fractions, split seed).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..paths import cache_dir
from .cache import ImageCache, build_cache
from .folders import load_source
from .sources import resolve_source
from .split import holdout_split, stratified_split, uncovered_classes


@dataclass
class DataSplit:
    """The cached images a run uses and which rows train, validate and test."""

    cache: ImageCache
    classes: list[str]
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    source: str
    skipped: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def val_classes(self) -> list[str]:
        """The classes that have validation images: the ones a validation macro-F1 covers."""
        missing = set(uncovered_classes(self.cache.labels, self.val_idx, self.classes))
        return [c for c in self.classes if c not in missing]

    def summary(self) -> dict:
        return {
            "n_train": int(len(self.train_idx)),
            "n_val": int(len(self.val_idx)),
            "n_test": int(len(self.test_idx)),
            "val_classes": self.val_classes,
        }


def _competition_split(
    splits: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The competition layout keeps its own val/ folder; a test share comes out of train/."""
    tr, va = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "val")
    if test_fraction <= 0:
        return tr, va, np.array([], dtype=int)
    keep, test = stratified_split(labels[tr], test_fraction, seed, stream=1)
    return tr[keep], va, tr[test]


def _coverage_notes(split: DataSplit) -> list[str]:
    """Say, before training, which classes have no validation or test images."""
    notes = []
    for name, idx in (("validation", split.val_idx), ("test", split.test_idx)):
        if name == "test" and len(idx) == 0:
            continue
        missing = uncovered_classes(split.cache.labels, idx, split.classes)
        if missing:
            counts = np.bincount(split.cache.labels, minlength=len(split.classes))
            sizes = ", ".join(f"{c} ({counts[split.classes.index(c)]} images)" for c in missing)
            notes.append(
                f"no {name} images for class(es) {sizes}: too few for the split; "
                f"{name} macro-F1 covers the other {len(split.classes) - len(missing)} "
                "classes only"
            )
    return notes


def prepare_split(
    data: str | Path,
    image_size: int,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    split_seed: int = 0,
    classes: list[str] | None = None,
    progress: bool = True,
) -> DataSplit:
    """Scan ``data``, cache it at ``image_size`` (decode once) and split it.

    Image folders get a stratified train / val / test split by ``split_seed``; the competition
    layout keeps its val/ folder. Classes without validation (or test) images are reported in
    ``notes`` and as a warning, before any training starts.
    """
    src = resolve_source(data)
    if src.folder is None:
        raise ValueError(
            f"data {str(data)!r} is a COCO file: build crops first (chapter 1) "
            "and pass the crops folder"
        )
    scan = load_source(src.folder, classes=classes)
    cache = build_cache(scan.samples, image_size, cache_dir(), progress=progress)
    if scan.layout == "competition" and any(s.split == "val" for s in scan.samples):
        split_of = {str(s.path): s.split for s in scan.samples}
        splits = np.array([split_of[p] for p in cache.paths])
        tr, va, te = _competition_split(splits, cache.labels, test_fraction, split_seed)
    else:
        tr, va, te = holdout_split(cache.labels, val_fraction, test_fraction, split_seed)
    split = DataSplit(
        cache,
        scan.classes,
        tr,
        va,
        te,
        str(src.folder),
        cache.skipped + [(str(p), why) for p, why in scan.skipped],
    )
    split.notes = _coverage_notes(split)
    for note in split.notes:
        warnings.warn(note, stacklevel=2)
    return split
