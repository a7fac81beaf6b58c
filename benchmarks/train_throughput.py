"""Training throughput (images/s): a plain PyTorch loop against trashkit's, side by side.

    python benchmarks/train_throughput.py                    # 128 and 156 px, TrashNet
    python benchmarks/train_throughput.py --sizes 156 --steps 60

For each size, the recommended model (benchmarks/protocol.py) trains the same number of
steps with the same recipe in three set-ups, interleaved so machine noise hits all alike:

* plain: torchvision ImageFolder + PIL transforms (resize, flip, RandAugment) in DataLoader
  workers, decoding every JPEG every epoch (what a first PyTorch script does);
* trashkit: the uint8 cache and whole-batch augmentation (``augment_on``: workers on a CPU,
  the device on a GPU);
* model alone (GPU only): the same steps on random tensors already on the GPU, the ceiling
  the pipeline can reach. The loader's share is 1 - pipeline / model-alone.

Targets on a GPU (issue 16): trashkit >= 80% of model-alone; 200 epochs of 20,000 crops at
156 px in <= 10 minutes on one H100-class GPU (the script prints the extrapolation).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
from protocol import RECOMMENDED, TRASHNET
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from trashkit.data import BatchAugment, load_source, make_train_loader, normalize_batch
from trashkit.data.cache import build_cache
from trashkit.models import build_model
from trashkit.train.setup import amp_dtype
from trashkit.train.config import TrainConfig


def train_steps(model, batches, steps: int, device, dtype, normalize: bool) -> float:
    """Images per second over ``steps`` SGD steps (after 3 warm-up steps)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    model.train()
    seen, t0, it = 0, None, iter(batches)
    for k in range(steps + 3):
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(batches)
            x, y = next(it)
        if k == 3:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, seen = time.perf_counter(), 0
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if normalize:
            x = normalize_batch(x)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - t0)


def plain_loader(root: Path, size: int, batch: int, workers: int) -> DataLoader:
    tf = transforms.Compose(
        [
            transforms.Resize((size, size)),
            transforms.RandomHorizontalFlip(),
            transforms.RandAugment(2, 9),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    return DataLoader(
        datasets.ImageFolder(root, tf),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        drop_last=True,
        pin_memory=torch.cuda.is_available(),
    )


class RandomBatches:
    """The model-alone ceiling: random uint8 batches already on the device."""

    def __init__(self, size: int, batch: int, device, n_classes: int):
        self.x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
        self.y = torch.randint(0, n_classes, (batch,), device=device)

    def __iter__(self):
        while True:
            yield self.x, self.y


def measure(size: int, args, device, cache_dir: Path) -> dict:
    scan = load_source(args.data)
    n_cls = len(scan.classes)
    dtype = amp_dtype(TrainConfig(amp=args.amp), device)
    cache = build_cache(scan.samples, size, cache_dir, progress=False)
    where = "device" if device.type == "cuda" else "workers"
    ours = make_train_loader(
        cache,
        range(len(cache)),
        args.batch,
        seed=0,
        workers=args.workers,
        augment=BatchAugment((2, 9), cutout=0.25),
        where=where,
        device=device,
    )
    setups = {
        "plain ImageFolder + PIL": (
            plain_loader(Path(args.data), size, args.batch, args.workers),
            False,
        ),
        f"trashkit (augment on {where})": (ours, True),
    }
    if device.type == "cuda":
        setups["model alone (random tensors on GPU)"] = (
            RandomBatches(size, args.batch, device, n_cls),
            True,
        )
    rates = {name: [] for name in setups}
    for _ in range(args.rounds):  # interleaved rounds
        for name, (batches, norm) in setups.items():
            torch.manual_seed(0)
            model = build_model(RECOMMENDED["model"], n_cls).to(device)
            if args.channels_last:
                model = model.to(memory_format=torch.channels_last)
            rates[name].append(train_steps(model, batches, args.steps, device, dtype, norm))
    return {name: max(r) for name, r in rates.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=str(TRASHNET))
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 156])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per set-up and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--amp", default="auto", help="auto | fp16 | bf16 | off (CUDA only)")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--cache-dir", default="/tmp/trashkit-throughput-cache")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.machine()
    print(
        f"device {name}, {os.cpu_count()} CPU cores, torch {torch.__version__}, model "
        f"{RECOMMENDED['model']}, batch {args.batch}, {args.workers} workers, amp {args.amp}, "
        f"channels_last {args.channels_last}; best of {args.rounds} interleaved rounds"
    )
    for size in args.sizes:
        rates = measure(size, args, device, Path(args.cache_dir))
        base = rates["plain ImageFolder + PIL"]
        print(f"\n{size} px:")
        for k, v in rates.items():
            print(f"  {k:40s} {v:8.0f} img/s  ({v / base:.2f}x plain)")
        alone = rates.get("model alone (random tensors on GPU)")
        ours = next(v for k, v in rates.items() if k.startswith("trashkit"))
        if alone:
            print(f"  pipeline share of model-alone: {ours / alone:.0%} (target >= 80%)")
        print(f"  200 epochs x 20,000 crops at this rate: {200 * 20000 / ours / 60:.1f} min")


if __name__ == "__main__":
    main()
