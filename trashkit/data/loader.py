"""Training and evaluation batches from the uint8 cache, with augmentation.

Per-sample geometric and photometric augmentation (torchvision ``transforms.v2`` on uint8
tensors: random resized crop, flip, RandAugment) runs in DataLoader worker processes, one per
core; float conversion, normalisation and cutout run once per *batch* (vectorised, and on the
GPU when training there). No JPEG is decoded after the cache is built.
"""

from __future__ import annotations

import math
import os
import random
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import (BatchSampler, DataLoader, Dataset, RandomSampler,
                              SequentialSampler)
from torchvision.transforms import v2

from .cache import ImageCache
from .split import stratified_split

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ = ["CachedDataset", "BatchAugment", "make_train_loader", "make_eval_loader",
           "normalize_batch", "cutout", "stratified_split", "default_workers"]


def default_workers() -> int:
    """One loader worker per core, at most 4 (more only adds start-up time here)."""
    return max(0, min(4, (os.cpu_count() or 1)))


class CachedDataset(Dataset):
    """``(uint8 3xSxS tensor, label)`` pairs for a subset of a cache.

    Indexed with a *list* of positions (as a ``BatchSampler`` does) it returns a whole batch
    ``(B x 3 x S x S, B)`` and applies ``batch_transform`` to it in one go: that is how
    augmentation runs per batch inside each worker process instead of per image.
    """

    def __init__(self, cache: ImageCache, indices: Sequence[int] | None = None,
                 batch_transform=None):
        self.cache = cache
        self.indices = np.arange(len(cache)) if indices is None else np.asarray(indices)
        self.batch_transform = batch_transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k):
        if isinstance(k, (list, tuple, np.ndarray)):
            rows = self.indices[np.asarray(k, dtype=np.int64)]
            order = np.argsort(rows)  # sorted reads are kinder to the memmap
            x = np.empty((len(rows),) + self.cache.images.shape[1:], dtype=np.uint8)
            x[order] = self.cache.images[rows[order]]
            x = torch.from_numpy(x)
            if self.batch_transform is not None:
                x = self.batch_transform(x)
            return x, torch.from_numpy(self.cache.labels[rows].astype(np.int64))
        i = int(self.indices[k])
        return torch.from_numpy(np.array(self.cache.images[i])), int(self.cache.labels[i])


class BatchAugment:
    """The per-image part of the recipe, applied to a whole uint8 batch at once.

    Horizontal flip is drawn per image and done with one ``torch.where``; RandAugment(n, m)
    draws its ops per *group* of ``group`` images (torchvision's RandAugment applies one op
    draw to whatever tensor it gets), which cuts the per-call overhead ~2x versus one call per
    image while a batch still sees 16 different op draws. ``scale`` adds a per-image random
    resized crop (one ``grid_sample`` for the batch) when the recipe wants it.
    """

    def __init__(self, randaugment: tuple[int, int] | None = (2, 9),
                 scale: tuple[float, float] | None = None, group: int = 4, flip: bool = True):
        self.ra = (v2.RandAugment(num_ops=randaugment[0], magnitude=randaugment[1])
                   if randaugment and randaugment[0] > 0 else None)
        self.scale, self.group, self.flip = scale, max(1, group), flip

    def _resized_crop(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        s = torch.empty(b).uniform_(*self.scale)
        r = torch.empty(b).uniform_(math.log(3 / 4), math.log(4 / 3)).exp()
        w, h = (s * r).sqrt().clamp(max=1.0), (s / r).sqrt().clamp(max=1.0)
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1] = w, h
        theta[:, 0, 2] = (torch.rand(b) * 2 - 1) * (1 - w)
        theta[:, 1, 2] = (torch.rand(b) * 2 - 1) * (1 - h)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
        return out.round_().clamp_(0, 255).to(torch.uint8)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            x = self._resized_crop(x)
        if self.flip:
            mask = (torch.rand(x.shape[0]) < 0.5).view(-1, 1, 1, 1)
            x = torch.where(mask, x.flip(-1), x)
        if self.ra is not None:
            x = torch.cat([self.ra(chunk) for chunk in x.split(self.group)])
        return x


def normalize_batch(x: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 ``B x 3 x H x W`` -> normalised float32, in one vectorised, in-place step."""
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1) * 255
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1) * 255
    return x.to(torch.float32).sub_(m).div_(s)


def cutout(x: torch.Tensor, size_fraction: float = 0.25,
           generator: torch.Generator | None = None, p: float = 1.0) -> torch.Tensor:
    """Zero one random square per image (DeVries & Taylor, 2017), in place.

    Each image gets its own square (side ``size_fraction`` of the image, centre anywhere, so
    the border may cut it) with probability ``p``. Works on normalised floats, where 0 is the
    dataset mean. One slice assignment per image: far cheaper than a full-batch mask.
    """
    if size_fraction <= 0:
        return x
    b, _, h, w = x.shape
    half = max(1, int(round(size_fraction * min(h, w)))) // 2
    cy = torch.randint(0, h, (b,), generator=generator).tolist()
    cx = torch.randint(0, w, (b,), generator=generator).tolist()
    use = (torch.rand(b, generator=generator) < p).tolist()
    for i in range(b):
        if use[i]:
            x[i, :, max(0, cy[i] - half):cy[i] + half + 1,
              max(0, cx[i] - half):cx[i] + half + 1] = 0.0
    return x


def _seed_worker(worker_id: int) -> None:
    """numpy/random follow torch's per-worker seed; one thread per worker process."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    torch.set_num_threads(1)


def make_train_loader(cache: ImageCache, indices: Sequence[int], batch_size: int = 64,
                      seed: int = 0, randaugment: tuple[int, int] | None = (2, 9),
                      workers: int | None = None, drop_last: bool = True, sampler=None,
                      scale: tuple[float, float] | None = None,
                      persistent: bool = True) -> DataLoader:
    """Shuffled, augmented uint8 batches; same seed -> same batches, bit for bit.

    Each worker builds whole batches (a ``BatchSampler`` hands it a list of indices). Pass a
    ``sampler`` (e.g. a seeded ``WeightedRandomSampler``) to rebalance classes instead of
    shuffling.
    """
    workers = default_workers() if workers is None else workers
    g = torch.Generator().manual_seed(seed)
    ds = CachedDataset(cache, indices, BatchAugment(randaugment, scale))
    base = sampler if sampler is not None else RandomSampler(ds, generator=g)
    batches = BatchSampler(base, batch_size, drop_last=drop_last and len(ds) >= batch_size)
    return DataLoader(ds, sampler=batches, batch_size=None, num_workers=workers, generator=g,
                      worker_init_fn=_seed_worker, persistent_workers=persistent and workers > 0)


def make_eval_loader(cache: ImageCache, indices: Sequence[int] | None = None,
                     batch_size: int = 256) -> DataLoader:
    """Unaugmented batches in a fixed order (evaluation must never depend on a seed)."""
    ds = CachedDataset(cache, indices)
    batches = BatchSampler(SequentialSampler(ds), batch_size, drop_last=False)
    return DataLoader(ds, sampler=batches, batch_size=None, num_workers=0)
