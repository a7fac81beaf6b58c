"""The recipe's augmentation, applied to whole uint8 batches, every draw from one batch seed.

Per-image augmentation (random resized crop, flip, RandAugment, cutout) runs on a whole
``B x 3 x S x S`` uint8 batch at once. Every random draw of a batch comes from the CPU
generator seeded with that batch's own seed, so a batch looks the same whether it was built
in a DataLoader worker, in the main process, or on a GPU from a cache held in GPU memory
(the pixels move; the dice do not). Mixup / CutMix mix whole normalised batches in the
training step, because they need the labels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: the uint8 colour that normalises to (almost) 0: what cutout paints
MEAN_PIXEL = tuple(round(255 * m) for m in IMAGENET_MEAN)


def normalize_batch(x: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 ``B x 3 x H x W`` -> normalised float32, in one vectorised, in-place step."""
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1) * 255
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1) * 255
    return x.to(torch.float32).sub_(m).div_(s)


def cutout(
    x: torch.Tensor,
    size_fraction: float = 0.25,
    fill: float | tuple = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Paint one random square per image with ``fill`` (DeVries & Taylor, 2017), in place.

    The square's side is ``size_fraction`` of the image and its centre may lie anywhere, so
    the border may cut it. The centres are drawn on the CPU (``generator``), whatever device
    holds the pixels. One slice assignment per image: far cheaper than a full-batch mask.
    """
    if size_fraction <= 0:
        return x
    b, c, h, w = x.shape
    half = max(1, int(round(size_fraction * min(h, w)))) // 2
    cy = torch.randint(0, h, (b,), generator=generator).tolist()
    cx = torch.randint(0, w, (b,), generator=generator).tolist()
    value = torch.as_tensor(fill, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
    for i in range(b):
        rows = slice(max(0, cy[i] - half), cy[i] + half + 1)
        cols = slice(max(0, cx[i] - half), cx[i] + half + 1)
        x[i, :, rows, cols] = value
    return x


def resized_crop(x: torch.Tensor, min_scale: float) -> torch.Tensor:
    """Per-image random resized crop (area in ``[min_scale, 1]``, aspect 3/4..4/3) of a uint8
    batch, resampled back to its size by one ``grid_sample`` call for the whole batch."""
    b = x.shape[0]
    s = torch.empty(b).uniform_(min_scale, 1.0)
    r = torch.empty(b).uniform_(math.log(3 / 4), math.log(4 / 3)).exp()
    w, h = (s * r).sqrt().clamp(max=1.0), (s / r).sqrt().clamp(max=1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = w, h
    theta[:, 0, 2] = (torch.rand(b) * 2 - 1) * (1 - w)
    theta[:, 1, 2] = (torch.rand(b) * 2 - 1) * (1 - h)
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    out = F.grid_sample(
        x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return out.round_().clamp_(0, 255).to(torch.uint8)


class BatchAugment:
    """Crop, flip, RandAugment(n, m) and cutout for a whole uint8 batch, from one seed.

    RandAugment draws its ops per *group* of ``group`` images (torchvision's RandAugment
    applies one op draw to whatever tensor it gets): about 2x less overhead than one call per
    image, while a batch of 64 still sees 16 different draws. ``crop_scale`` > 0 adds a random
    resized crop (area from ``crop_scale`` to 1); ``cutout`` > 0 paints one square per image.
    """

    def __init__(
        self,
        randaugment: tuple[int, int] | None = (2, 9),
        crop_scale: float = 0.0,
        cutout: float = 0.0,
        flip: bool = True,
        group: int = 4,
    ):
        self.ra = (
            v2.RandAugment(num_ops=randaugment[0], magnitude=randaugment[1])
            if randaugment and randaugment[0] > 0
            else None
        )
        self.crop_scale, self.cutout, self.flip = crop_scale, cutout, flip
        self.group = max(1, group)

    def __call__(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        """Augment ``x`` (uint8, any device); the same ``seed`` gives the same draws."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if self.crop_scale > 0:
                x = resized_crop(x, self.crop_scale)
            if self.flip:
                mask = (torch.rand(x.shape[0]) < 0.5).view(-1, 1, 1, 1).to(x.device)
                x = torch.where(mask, x.flip(-1), x)
            if self.ra is not None:
                x = torch.cat([self.ra(chunk) for chunk in x.split(self.group)])
            if self.cutout > 0:
                x = cutout(x.contiguous(), self.cutout, MEAN_PIXEL)
        return x


class MixBatch:
    """Mixup (Zhang et al., 2018) and/or CutMix (Yun et al., 2019) on a normalised batch.

    Returns the mixed images and *soft* targets (``B x n_classes`` probabilities), which
    ``nn.CrossEntropyLoss`` accepts directly. With both alphas set, each batch uses one of
    the two at random (torchvision's ``RandomChoice``), as timm does.
    """

    def __init__(self, n_classes: int, mixup: float = 0.0, cutmix: float = 0.0):
        ops = []
        if mixup > 0:
            ops.append(v2.MixUp(alpha=mixup, num_classes=n_classes))
        if cutmix > 0:
            ops.append(v2.CutMix(alpha=cutmix, num_classes=n_classes))
        self.op = None if not ops else ops[0] if len(ops) == 1 else v2.RandomChoice(ops)

    @property
    def active(self) -> bool:
        return self.op is not None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (x, y) if self.op is None else self.op(x, y)
