"""Stratified, seeded splits (train/val, and train/val/test) that work for tiny and rare classes,
and a grouped split that keeps the crops of one photo on one side."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratified_split(
    labels: Sequence, val_fraction: float = 0.2, seed: int = 0, stream: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with ``round(val_fraction * n_c)`` of each class in val.

    Each class is shuffled by its own generator seeded from ``seed`` (and ``stream``, so two
    splits drawn with one seed are independent), so adding images of one class never
    reshuffles another class. A class with a single image stays in train. (scikit-learn's
    ``train_test_split(stratify=...)`` refuses classes with one member and tiny validation
    sets, which the synthetic smoke data and rare TACO classes both have.)
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    labels = np.asarray(labels)
    train, val = [], []
    for k, cls in enumerate(sorted(set(labels.tolist()), key=str)):
        idx = np.flatnonzero(labels == cls)
        rng = np.random.default_rng([seed, k] if stream == 0 else [seed, k, stream])
        idx = idx[rng.permutation(len(idx))]
        n_val = int(round(val_fraction * len(idx))) if len(idx) > 1 else 0
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(val, dtype=int))


def holdout_split(
    labels: Sequence, val_fraction: float, test_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, val, test); both fractions are of the whole set, stratified by class.

    The test images are drawn first, from their own random stream, so they depend on the seed
    and ``test_fraction`` only: changing the validation fraction (a choice a user tunes)
    never moves an image into or out of the test set. With ``test_fraction == 0`` this is
    exactly :func:`stratified_split`.
    """
    if not 0.0 <= test_fraction < 1.0 or val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must stay below 1 (got {val_fraction} + {test_fraction})"
        )
    labels = np.asarray(labels)
    if test_fraction == 0:
        tr, va = stratified_split(labels, val_fraction, seed)
        return tr, va, np.array([], dtype=int)
    rest, test = stratified_split(labels, test_fraction, seed, stream=1)
    tr, va = stratified_split(labels[rest], val_fraction / (1.0 - test_fraction), seed)
    return rest[tr], rest[va], test


def uncovered_classes(labels: np.ndarray, indices: np.ndarray, classes: Sequence[str]) -> list[str]:
    """Classes with no image among ``indices`` (e.g. a class too small for a validation share)."""
    present = set(np.asarray(labels)[np.asarray(indices, dtype=int)].tolist())
    return [c for k, c in enumerate(classes) if k not in present]


def grouped_split(
    labels: Sequence, groups: Sequence, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) where every group (the crops of one photo) lies on ONE side, and
    each class's validation share is as close to ``val_fraction`` as whole groups allow.

    Why: crops of one photo share its background, light and camera; split crop by crop, a
    photo lands on both sides and the validation set is easier than new photos would be.
    This is scikit-learn's ``StratifiedGroupKFold`` with ``k = round(1 / val_fraction)``
    shuffled folds, seeded by ``seed``; the first fold is the validation set, so the share
    it aims at is ``1 / k`` (0.2 -> 5 folds -> 0.2; 0.3 -> 3 folds -> 0.33). ``val_fraction``
    0 puts everything in train.
    """
    if not 0.0 <= val_fraction <= 0.5:
        raise ValueError(f"a grouped split needs val_fraction in [0, 0.5], got {val_fraction}")
    labels, groups = np.asarray(labels), np.asarray(groups)
    if len(labels) != len(groups):
        raise ValueError(f"{len(labels)} labels but {len(groups)} groups: one group per item")
    if val_fraction == 0 or len(labels) == 0:
        return np.arange(len(labels)), np.array([], dtype=int)
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    k = max(2, round(1 / val_fraction))
    n_groups = len(np.unique(groups))
    if n_groups < k:
        raise ValueError(
            f"a grouped split into {k} folds needs at least {k} groups (photos), got {n_groups}"
        )
    largest = int(np.unique(labels, return_counts=True)[1].max())
    if largest < k:
        raise ValueError(
            f"a stratified grouped split into {k} folds needs a class with at least {k} items, "
            f"the largest has {largest}"
        )
    folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a class rarer than k items: still split, by groups
        warnings.filterwarnings("ignore", message="The least populated class")
        train, val = next(folds.split(np.zeros(len(labels)), labels, groups))
    return np.sort(train), np.sort(val)
