"""A stratified, seeded train/val split that also works for tiny and rare classes."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def stratified_split(labels: Sequence, val_fraction: float = 0.2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with ``round(val_fraction * n_c)`` of each class in val.

    Each class is shuffled by its own generator seeded from ``seed``, so adding images of one
    class never reshuffles another class. A class with a single image stays in train.
    (scikit-learn's ``train_test_split(stratify=...)`` refuses classes with one member and
    tiny validation sets, which the synthetic smoke data and rare TACO classes both have.)
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    labels = np.asarray(labels)
    train, val = [], []
    for k, cls in enumerate(sorted(set(labels.tolist()), key=str)):
        idx = np.flatnonzero(labels == cls)
        rng = np.random.default_rng([seed, k])
        idx = idx[rng.permutation(len(idx))]
        n_val = int(round(val_fraction * len(idx))) if len(idx) > 1 else 0
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(val, dtype=int))
