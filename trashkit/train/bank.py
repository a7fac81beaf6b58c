"""A teacher's answers, computed once: distillation when the teacher is the expensive part.

Distillation that brings a small student close to its teacher shows the teacher and the
student the *same* augmented image ("consistent teaching", Beyer et al., CVPR 2022). Run
live, that costs one teacher forward pass per student image per epoch: an ImageNet-sized
teacher on two CPU cores dominates everything. A bank pays it once: ``views`` augmented views
of every training image, drawn from fixed seeds at the teacher's resolution, each scored by
the teacher and stored at the student's resolution with the teacher's class probabilities.
The student then trains on the bank (``TrainConfig.teacher_bank``) with those probabilities
as soft targets: every view is exactly the crop the teacher saw.

What it gives up: the student sees ``views`` versions of each image instead of a fresh one
every epoch, and mixup's mixed images have no teacher answer (a bank run refuses mixup).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import load_checkpoint
from ..data import BatchAugment, DataSplit, ImageCache, normalize_batch
from ..runs import RunLock, write_json
from .config import run_split

#: what a bank must agree on with the run that trains on it
SPLIT_KEYS = ("val_fraction", "test_fraction", "split_seed", "classes")


def train_digest(data: DataSplit) -> str:
    """A fingerprint of which images a split trains on (their paths, in order)."""
    paths = [data.cache.paths[i] for i in data.train_idx]
    return hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]


def _view(x: torch.Tensor, augment: BatchAugment, seed: int, size: int) -> torch.Tensor:
    """One augmented view of a uint8 batch at the teacher's size, and the same view resized
    (with anti-aliasing) to the student's ``size``."""
    big = augment(x, seed)
    small = F.interpolate(big.float(), size=(size, size), mode="bilinear", antialias=True)
    return big, small.round_().clamp_(0, 255).to(torch.uint8)


def _score_view(net, data: DataSplit, v: int, seed: int, size: int, batch: int, augment):
    """View ``v`` of every training image: ``(small uint8 images, teacher probabilities)``."""
    rows = np.asarray(data.train_idx)
    images, probs = [], []
    with torch.inference_mode():
        for b, start in enumerate(range(0, len(rows), batch)):
            x = torch.from_numpy(np.array(data.cache.images[rows[start : start + batch]]))
            big, small = _view(x, augment, seed * 1_000_003 + v * 10_007 + b, size)
            probs.append(torch.softmax(net(normalize_batch(big)).float(), dim=1))
            images.append(small)
    return torch.cat(images).numpy(), torch.cat(probs).numpy()


def build_bank(
    teacher: str | Path,
    out: str | Path,
    image_size: int,
    views: int = 8,
    seed: int = 0,
    crop_scale: float = 0.3,
    randaugment: tuple[int, int] = (2, 9),
    batch: int = 32,
) -> Path:
    """Score ``views`` augmented views of every training image of the teacher's own split.

    Resumable: each view is written as its own pair of files once complete, so an
    interrupted build continues with the next missing view. ``out/bank.json`` describes the
    bank (teacher file and its SHA-256, split, sizes, augmentation, seconds)."""
    out = Path(out)
    with RunLock(out):
        ckpt = load_checkpoint(teacher)
        data = run_split(ckpt.config)
        net = ckpt.build_model("cpu")
        augment = BatchAugment(randaugment, crop_scale, 0.0)
        t0 = time.perf_counter()
        for v in range(views):
            if (out / f"targets_{v}.npy").is_file():
                continue
            images, probs = _score_view(net, data, v, seed, image_size, batch, augment)
            _save(out / f"views_{v}.npy", images)
            _save(out / f"targets_{v}.npy", probs)  # last: marks the view complete
        info = {
            "teacher": str(Path(teacher).resolve()),
            "teacher_sha256": hashlib.sha256(Path(teacher).read_bytes()).hexdigest(),
            "data": data.source,
            "classes": data.classes,
            "train_digest": train_digest(data),
            "n_train": int(len(data.train_idx)),
            "labels": data.cache.labels[data.train_idx].tolist(),
            "teacher_image_size": ckpt.image_size,
            "image_size": image_size,
            "views": views,
            "seed": seed,
            "crop_scale": crop_scale,
            "randaugment": list(randaugment),
            "seconds_this_build": time.perf_counter() - t0,
            "split": {k: ckpt.config.get(k) for k in SPLIT_KEYS},
        }
        write_json(out / "bank.json", info)
    return out


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)


def load_bank(path: str | Path) -> tuple[ImageCache, dict]:
    """The bank as an image cache whose ``targets`` are the teacher's probabilities."""
    path = Path(path)
    info_path = path / "bank.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"teacher bank {path} has no bank.json (not built yet?)")
    info = json.loads(info_path.read_text())
    views = range(info["views"])
    images = np.concatenate([np.load(path / f"views_{v}.npy", mmap_mode="r") for v in views])
    targets = np.concatenate([np.load(path / f"targets_{v}.npy") for v in views])
    labels = np.tile(np.asarray(info["labels"], dtype=np.int64), info["views"])
    cache = ImageCache(
        images,
        labels,
        [f"view {v} of training image {i}" for v in views for i in range(info["n_train"])],
        info["image_size"],
        f"bank-{info['train_digest']}",
        targets=targets.astype(np.float32),
    )
    return cache, info


def check_bank(info: dict, cfg, data: DataSplit) -> None:
    """Refuse a bank made from another split, other classes or another image size."""
    problems = []
    if info["image_size"] != cfg.image_size:
        problems.append(f"image size {info['image_size']} != the run's {cfg.image_size}")
    if info["classes"] != data.classes:
        problems.append(f"classes {info['classes']} != the data's {data.classes}")
    if info["train_digest"] != train_digest(data):
        problems.append("its training images are not this run's (another split or data)")
    if problems:
        raise ValueError(f"teacher_bank {cfg.teacher_bank} does not fit: {'; '.join(problems)}")
