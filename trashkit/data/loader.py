"""Training and evaluation batches from the uint8 cache.

No JPEG is decoded after the cache is built. A training epoch is a list of batches, each a
list of cache rows plus the seed its augmentation draws from (:class:`EpochBatches`); the
same batches can be assembled in two places:

* ``where="workers"``: in DataLoader worker processes (one per core), created once per run
  and kept alive across epochs; the main process only normalises and trains (CPU training).
* ``where="device"``: the whole cache is copied to the training device once and batches are
  gathered and augmented there (GPU training, where a few CPU cores cannot keep up).

Both paths give identical batches for the same seed: the dice are thrown on the CPU from the
batch seed, only the pixels live elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .augment import BatchAugment
from .cache import ImageCache


def default_workers() -> int:
    """One loader worker per core, at most 4 (more only adds start-up time here)."""
    return max(0, min(4, (os.cpu_count() or 1)))


def batch_seed(seed: int, epoch: int, batch: int, rank: int = 0) -> int:
    """The seed of one batch's augmentation: a function of the run's seed and the batch's
    place only, so a resumed or re-run epoch draws exactly the same augmentation."""
    return int(np.random.SeedSequence([seed, epoch, batch, rank]).generate_state(1)[0])


class EpochBatches(Sampler):
    """Shuffled batches of positions, reshuffled by :meth:`set_epoch` (like
    ``DistributedSampler``): epoch ``e`` is a function of ``(seed, e)`` only.

    With ``world > 1`` the epoch's permutation is padded to a multiple of ``world`` and rank
    ``r`` takes every ``world``-th position, so the ranks see disjoint shares of equal size.
    Each item is ``(seed, positions)``; the seed feeds :class:`BatchAugment`.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int = 0,
        drop_last: bool = True,
        rank: int = 0,
        world: int = 1,
    ):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world, self.epoch = rank, world, 0
        self.per_rank = -(-n // world)
        self.drop_last = drop_last and self.per_rank >= batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self.per_rank // self.batch_size
        return -(-self.per_rank // self.batch_size)

    def __iter__(self) -> Iterator[tuple[int, list[int]]]:
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        order += order[: self.per_rank * self.world - self.n]  # pad so every rank gets as many
        mine = order[self.rank :: self.world]
        for b in range(len(self)):
            pos = mine[b * self.batch_size : (b + 1) * self.batch_size]
            yield batch_seed(self.seed, self.epoch, b, self.rank), pos


class CachedDataset(Dataset):
    """``(uint8 3xSxS tensor, label)`` pairs for a subset of a cache.

    Indexed with ``(seed, [positions])`` (what :class:`EpochBatches` yields) it returns a whole
    batch ``(B x 3 x S x S, B)`` with ``augment(batch, seed)`` applied: that is how
    augmentation runs per batch inside each worker process instead of per image.
    """

    def __init__(
        self,
        cache: ImageCache,
        indices: Sequence[int] | None = None,
        augment: BatchAugment | None = None,
    ):
        self.cache = cache
        self.indices = np.arange(len(cache)) if indices is None else np.asarray(indices)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.indices)

    def rows(self, positions) -> np.ndarray:
        return self.indices[np.asarray(positions, dtype=np.int64)]

    def targets(self, rows: np.ndarray) -> torch.Tensor:
        """What the loss compares with: the labels, or the cache's soft targets if it has
        them (a teacher's probabilities)."""
        if self.cache.targets is not None:
            return torch.from_numpy(np.asarray(self.cache.targets[rows], dtype=np.float32))
        return torch.from_numpy(self.cache.labels[rows].astype(np.int64))

    def __getitem__(self, k):
        if isinstance(k, tuple):
            seed, positions = k
            rows = self.rows(positions)
            order = np.argsort(rows)  # sorted reads are kinder to the memmap
            x = np.empty((len(rows),) + self.cache.images.shape[1:], dtype=np.uint8)
            x[order] = self.cache.images[rows[order]]
            x = torch.from_numpy(x)
            if self.augment is not None:
                x = self.augment(x, seed)
            return x, self.targets(rows)
        i = int(self.indices[k])
        return torch.from_numpy(np.array(self.cache.images[i])), int(self.cache.labels[i])


def _worker_init(worker_id: int) -> None:
    """One thread per worker process: the workers already use every core between them."""
    torch.set_num_threads(1)


class DeviceBatches:
    """The same batches as the worker loader, assembled on ``device`` from a copy of the
    cache held there (made once): no CPU worker, no host-to-device copy per batch."""

    def __init__(self, ds: CachedDataset, sampler: EpochBatches, device: torch.device):
        self.ds, self.sampler, self.device = ds, sampler, torch.device(device)
        self.images = torch.from_numpy(np.array(ds.cache.images)).to(self.device)  # copied once
        self.labels = ds.targets(np.arange(len(ds.cache))).to(self.device)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        for seed, positions in self.sampler:
            rows = torch.from_numpy(self.ds.rows(positions)).to(self.device)
            x = self.images.index_select(0, rows)
            if self.ds.augment is not None:
                x = self.ds.augment(x, seed)
            yield x, self.labels.index_select(0, rows)


class WorkerBatches:
    """Batches built by persistent DataLoader worker processes (created once per run).

    Why persistent: re-creating workers every epoch forks the kernel process again and again;
    inside Jupyter the previous epoch's half-dead iterator then gets copied into the new
    workers, which is what printed walls of "can only test a child process" errors.
    """

    def __init__(self, ds: CachedDataset, sampler: EpochBatches, workers: int):
        self.sampler = sampler
        self.loader = DataLoader(
            ds,
            sampler=sampler,
            batch_size=None,
            num_workers=workers,
            worker_init_fn=_worker_init,
            persistent_workers=workers > 0,
        )

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        return iter(self.loader)


def make_train_loader(
    cache: ImageCache,
    indices: Sequence[int],
    batch_size: int = 64,
    seed: int = 0,
    augment: BatchAugment | None = None,
    workers: int | None = None,
    where: str = "workers",
    device: str | torch.device = "cpu",
    rank: int = 0,
    world: int = 1,
    drop_last: bool = True,
) -> WorkerBatches | DeviceBatches:
    """Shuffled, augmented uint8 batches; call ``set_epoch(e)`` before each epoch.

    Same seed and epoch -> the same batches, bit for bit, on either path (``where``).
    """
    if augment is None:
        augment = BatchAugment()
    ds = CachedDataset(cache, indices, augment)
    sampler = EpochBatches(len(ds), batch_size, seed, drop_last, rank, world)
    if where == "device":
        return DeviceBatches(ds, sampler, torch.device(device))
    if where != "workers":
        raise ValueError(f"where={where!r}: use 'workers' or 'device'")
    return WorkerBatches(ds, sampler, default_workers() if workers is None else workers)


def eval_batches(
    cache: ImageCache, indices: Sequence[int] | None = None, batch_size: int = 256
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Unaugmented uint8 batches in a fixed order (evaluation never depends on a seed)."""
    idx = np.arange(len(cache)) if indices is None else np.asarray(indices, dtype=np.int64)
    for start in range(0, len(idx), batch_size):
        rows = idx[start : start + batch_size]
        yield (
            torch.from_numpy(np.array(cache.images[rows])),
            torch.from_numpy(cache.labels[rows].astype(np.int64)),
        )


class EvalBatches:
    """:func:`eval_batches` as an object that can be iterated again every epoch."""

    def __init__(
        self, cache: ImageCache, indices: Sequence[int] | None = None, batch_size: int = 256
    ):
        self.cache, self.indices, self.batch_size = cache, indices, batch_size

    def __iter__(self):
        return eval_batches(self.cache, self.indices, self.batch_size)


def make_eval_loader(
    cache: ImageCache, indices: Sequence[int] | None = None, batch_size: int = 256
) -> EvalBatches:
    """Unaugmented batches of ``indices`` in a fixed order, re-iterable."""
    return EvalBatches(cache, indices, batch_size)
