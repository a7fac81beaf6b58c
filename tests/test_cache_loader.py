"""The uint8 cache (reuse and invalidation) and the augmented loader (shape, determinism)."""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from PIL import Image

from trashkit.data import (build_cache, cutout, make_eval_loader, make_train_loader,
                           normalize_batch, scan_image_folder)


def _folder(tmp_path, n=12):
    for c in ("A", "B"):
        (tmp_path / "imgs" / c).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 255, (40 + i, 50, 3), np.uint8)
        Image.fromarray(arr).save(tmp_path / "imgs" / "AB"[i % 2] / f"{i}.jpg")
    return tmp_path / "imgs"


def test_cache_reused_and_invalidated(tmp_path):
    root = _folder(tmp_path)
    scan = scan_image_folder(root)
    c1 = build_cache(scan.samples, 24, tmp_path / "cache", progress=False)
    assert c1.images.shape == (12, 3, 24, 24) and c1.images.dtype == np.uint8
    assert not c1.from_disk
    c2 = build_cache(scan.samples, 24, tmp_path / "cache", progress=False)
    assert c2.from_disk and c2.key == c1.key and np.array_equal(c1.images, c2.images)
    # new size -> new cache
    c3 = build_cache(scan.samples, 32, tmp_path / "cache", progress=False)
    assert c3.key != c1.key and not c3.from_disk
    # a changed file -> new cache with the new pixels
    p = scan.samples[0].path
    Image.new("RGB", (50, 40), (255, 255, 255)).save(p)
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    c4 = build_cache(scan_image_folder(root).samples, 24, tmp_path / "cache", progress=False)
    assert c4.key != c1.key and not c4.from_disk
    assert c4.images[0].min() > 240
    # an added file -> new cache
    Image.new("RGB", (20, 20)).save(root / "A" / "new.jpg")
    c5 = build_cache(scan_image_folder(root).samples, 24, tmp_path / "cache", progress=False)
    assert len(c5) == 13 and c5.key != c4.key


def test_train_loader_is_deterministic_and_augments(tmp_path):
    scan = scan_image_folder(_folder(tmp_path, 20))
    cache = build_cache(scan.samples, 32, tmp_path / "cache", progress=False)

    def batches(seed, workers):
        loader = make_train_loader(cache, range(len(cache)), batch_size=8, seed=seed,
                                   workers=workers)
        return [(x.clone(), y.clone()) for x, y in loader]

    a, b = batches(1, 2), batches(1, 2)
    assert len(a) == 2 and a[0][0].shape == (8, 3, 32, 32) and a[0][0].dtype == torch.uint8
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    c = batches(2, 2)
    assert not torch.equal(a[0][0], c[0][0])
    # augmentation really changes pixels compared with the cached originals
    ev = next(iter(make_eval_loader(cache)))[0]
    assert ev.shape[0] == 20 and torch.equal(ev, torch.from_numpy(np.array(cache.images)))


def test_normalize_and_cutout():
    x = torch.full((4, 3, 20, 20), 128, dtype=torch.uint8)
    n = normalize_batch(x)
    assert n.dtype == torch.float32 and n.shape == x.shape
    g = torch.Generator().manual_seed(0)
    out = cutout(n.clone(), 0.25, generator=g)
    zeros = (out == 0).all(dim=1).sum(dim=(1, 2))
    assert (zeros > 0).all() and (zeros <= 5 * 5 + 1).all()  # one <= 5x5 square per image
    assert torch.equal(cutout(n.clone(), 0.0), n)
