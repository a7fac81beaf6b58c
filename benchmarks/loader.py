"""Training-loader throughput: trashkit's cached loader vs. a plain ImageFolder DataLoader.

Both loaders produce the same thing: shuffled batches of 64 normalised float tensors at
--size x --size with the competition recipe's augmentation (resize, horizontal flip,
RandAugment(2, 9); ours adds cutout, so it does strictly more work), with the same number of
worker processes. The plain loader decodes every JPEG with PIL in every epoch;
ours decodes once into a uint8 cache. Usage::

    python benchmarks/loader.py --data ../shared/datasets/trashnet --epochs 2
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from trashkit.data import BatchAugment, build_cache, load_source, make_train_loader, normalize_batch


def epoch_rate(loader, post=None, epoch: int = 0) -> tuple[float, int]:
    """Images per second for one full pass (including any per-batch post-processing)."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    n, t0 = 0, time.perf_counter()
    for x, _ in loader:
        if post is not None:
            x = post(x)
        n += x.shape[0]
    return n / (time.perf_counter() - t0), n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/trashnet")
    ap.add_argument("--size", type=int, default=156)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs after the first")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    torch.manual_seed(0)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, workers={args.workers}, size={args.size}, batch={args.batch}"
    )

    plain_tf = transforms.Compose(
        [
            transforms.Resize((args.size, args.size)),
            transforms.RandomHorizontalFlip(),
            transforms.RandAugment(2, 9),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    plain = DataLoader(
        datasets.ImageFolder(args.data, plain_tf),
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        persistent_workers=True,
        drop_last=True,
    )
    scan = load_source(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cache = build_cache(scan.samples, args.size, tmp, workers=args.workers)
        build = time.perf_counter() - t0
        ours = make_train_loader(
            cache,
            range(len(cache)),
            args.batch,
            seed=0,
            augment=BatchAugment((2, 9), cutout=0.25),
            workers=args.workers,
        )
        post = normalize_batch
        print(
            f"cache build: {build:.1f} s for {len(cache)} images "
            f"({len(cache) / build:.0f} img/s, {cache.images.nbytes / 2**20:.0f} MiB)"
        )
        first_plain, _ = epoch_rate(plain)
        first_ours, _ = epoch_rate(ours, post)
        print(
            f"first epoch (warm-up, workers starting): plain {first_plain:.0f} img/s, "
            f"cached {first_ours:.0f} img/s"
        )
        rp, ro = [], []
        for e in range(args.epochs):  # interleaved so machine noise hits both alike
            rp.append(epoch_rate(plain)[0])
            ro.append(epoch_rate(ours, post, e + 1)[0])
            print(
                f"epoch {e + 2}: plain {rp[-1]:.0f} img/s, cached {ro[-1]:.0f} img/s, "
                f"ratio {ro[-1] / rp[-1]:.2f}x"
            )
        p, o = sum(rp) / len(rp), sum(ro) / len(ro)
        print(
            f"after the first epoch: plain ImageFolder+PIL {p:.0f} img/s, "
            f"trashkit cached {o:.0f} img/s -> {o / p:.2f}x (target >= 3x)"
        )


if __name__ == "__main__":
    main()
