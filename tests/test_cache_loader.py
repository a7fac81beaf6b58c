"""The uint8 cache (reuse and invalidation) and the augmented loader (shape, determinism)."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from trashkit.data import (
    BatchAugment,
    EpochBatches,
    build_cache,
    cutout,
    make_eval_loader,
    make_train_loader,
    normalize_batch,
    scan_image_folder,
)


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


def _batches(cache, seed, epoch=0, **kw):
    loader = make_train_loader(cache, range(len(cache)), batch_size=8, seed=seed, **kw)
    loader.set_epoch(epoch)
    return [(x.clone(), y.clone()) for x, y in loader]


def _same(a, b):
    return len(a) == len(b) and all(
        torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b)
    )


def test_train_loader_is_deterministic_and_augments(tmp_path):
    scan = scan_image_folder(_folder(tmp_path, 20))
    cache = build_cache(scan.samples, 32, tmp_path / "cache", progress=False)
    a, b = _batches(cache, 1, workers=2), _batches(cache, 1, workers=2)
    assert len(a) == 2 and a[0][0].shape == (8, 3, 32, 32) and a[0][0].dtype == torch.uint8
    assert _same(a, b)
    assert not torch.equal(a[0][0], _batches(cache, 2, workers=2)[0][0])  # another seed
    assert not _same(a, _batches(cache, 1, epoch=1, workers=2))  # another epoch
    # augmentation really changes pixels: compare each image with its cached original
    plain = _batches(cache, 1, workers=0, augment=BatchAugment(None, flip=False))
    orig = torch.from_numpy(np.array(cache.images))
    for (x, y), (xp, yp) in zip(a, plain):
        assert torch.equal(y, yp)  # same images in the same order ...
        assert all(any(torch.equal(o, img) for o in orig) for img in xp)  # plain = cached
        assert sum(torch.equal(img, ip) for img, ip in zip(x, xp)) < len(x) // 2  # ... changed
    ev = next(iter(make_eval_loader(cache)))[0]
    assert ev.shape[0] == 20 and torch.equal(ev, orig)


def test_same_seed_same_batches_on_worker_and_device_paths(tmp_path):
    """Issue 16: the device path (cache held on the training device, augmentation on whole
    batches there) draws the same operations as the CPU worker path for the same seed."""
    cache = build_cache(
        scan_image_folder(_folder(tmp_path, 20)).samples, 32, tmp_path / "cache", progress=False
    )
    aug = BatchAugment((2, 9), crop_scale=0.3, cutout=0.25)
    for epoch in (0, 3):
        on_workers = _batches(cache, 5, epoch, augment=aug, workers=2)
        on_device = _batches(cache, 5, epoch, augment=aug, where="device", device="cpu")
        assert _same(on_workers, on_device)


def test_ranks_get_disjoint_equal_shares():
    shares = [list(EpochBatches(10, 2, seed=1, drop_last=False, rank=r, world=3)) for r in range(3)]
    rows = [sorted(p for _, batch in s for p in batch) for s in shares]
    assert [len(r) for r in rows] == [4, 4, 4]  # 10 padded to 12
    assert set(rows[0]) | set(rows[1]) | set(rows[2]) == set(range(10))
    seeds = [seed for s in shares for seed, _ in s]
    assert len(set(seeds)) == len(seeds)  # every batch of every rank its own augmentation


def test_normalize_and_cutout():
    x = torch.full((4, 3, 20, 20), 128, dtype=torch.uint8)
    n = normalize_batch(x)
    assert n.dtype == torch.float32 and n.shape == x.shape
    g = torch.Generator().manual_seed(0)
    out = cutout(n.clone(), 0.25, generator=g)
    zeros = (out == 0).all(dim=1).sum(dim=(1, 2))
    assert (zeros > 0).all() and (zeros <= 5 * 5 + 1).all()  # one <= 5x5 square per image
    assert torch.equal(cutout(n.clone(), 0.0), n)


def test_two_link_folders_to_the_same_images_each_get_their_own_paths(tmp_path):
    """A second folder of symbolic links to the same photos must not be served the first
    folder's paths (prepare_split looks its own paths up in the cache)."""
    root = _folder(tmp_path, 6)
    for name in ("links_a", "links_b"):
        for cls in ("A", "B"):
            (tmp_path / name / cls).mkdir(parents=True)
            for f in (root / cls).iterdir():
                os.symlink(f, tmp_path / name / cls / f.name)
    caches = [
        build_cache(
            scan_image_folder(tmp_path / name).samples, 16, tmp_path / "cache", progress=False
        )
        for name in ("links_a", "links_b")
    ]
    for name, cache in zip(("links_a", "links_b"), caches):
        assert all(f"/{name}/" in p for p in cache.paths)
    assert np.array_equal(caches[0].images, caches[1].images)
