"""Quantization-aware training (QAT) beside post-training quantization (PTQ), weights only.

Post-training quantization rounds a trained network's weights onto a grid once; the network
never learns that its weights will be rounded. QAT rounds them in every forward pass while it
fine-tunes ("fake quantization": the values lie on the grid, the dtype stays float), so the
loss sees the rounding and the weights move to where rounding hurts least. Rounding has a zero
gradient almost everywhere; the **straight-through estimator** (Bengio et al., 2013) passes the
gradient of the rounded weight through to the float weight unchanged.

Symmetric, per output channel, ``bits`` bits (int8 is ``bits=8``; the chapter uses fewer bits,
where the difference between PTQ and QAT is large enough to measure on a small network).
Activations stay float here: the point is the training trick, not a deployable kernel (ONNX
Runtime's int8 path is :func:`trashkit.compress.quantize_int8`).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ..data import normalize_batch


def weight_grid(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per output channel, symmetric: ``scale = max|w| / (2**(bits-1) - 1)``, each weight
    rounded to the nearest multiple of ``scale`` (float values on the integer grid)."""
    qmax = 2 ** (bits - 1) - 1
    amax = w.detach().abs().flatten(1).amax(1).clamp_min(1e-12)
    scale = (amax / qmax).view(-1, *([1] * (w.dim() - 1)))
    return torch.clamp(torch.round(w / scale), -qmax, qmax) * scale


class FakeQuant(nn.Module):
    """A weight parametrization: the forward pass sees the rounded weight, the backward pass
    treats the rounding as the identity (straight-through estimator)."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = bits

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w + (weight_grid(w, self.bits) - w).detach()


def _layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def ptq_weights(model: nn.Module, bits: int) -> nn.Module:
    """A copy of ``model`` whose conv / linear weights are rounded once (PTQ, weights only)."""
    model = copy.deepcopy(model).cpu().eval()
    with torch.no_grad():
        for m in _layers(model):
            m.weight.copy_(weight_grid(m.weight, bits))
    return model


def with_fake_quant(model: nn.Module, bits: int) -> nn.Module:
    """A copy of ``model`` whose conv / linear weights are fake-quantized in every forward."""
    model = copy.deepcopy(model).cpu()
    for m in _layers(model):
        parametrize.register_parametrization(m, "weight", FakeQuant(bits))
    return model


def bake(model: nn.Module) -> nn.Module:
    """Remove the parametrizations, keeping the rounded weights (what would be deployed)."""
    for m in _layers(model):
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return model.eval()


def finetune(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    steps: int,
    batch: int = 32,
    lr: float = 0.005,
    seed: int = 0,
) -> nn.Module:
    """``steps`` SGD steps on random batches of uint8 training ``images`` (random flips),
    batch norm frozen (its statistics and affine weights stay those of the trained network:
    a short fine-tune must not re-estimate them from a few batches)."""
    g = torch.Generator().manual_seed(seed)
    params = [p for m in _layers(model) for p in m.parameters()]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    model.eval()  # batch norm uses its running statistics throughout
    for _ in range(steps):
        i = np.sort(torch.randint(len(images), (batch,), generator=g).numpy())
        x = torch.from_numpy(np.array(images[i]))
        flip = torch.rand(len(x), generator=g) < 0.5
        x[flip] = x[flip].flip(-1)
        loss = F.cross_entropy(model(normalize_batch(x)), torch.as_tensor(labels[i]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def ptq_vs_qat(ctx, bits: int, steps: int, lr: float = 0.005, seed: int = 0) -> pd.DataFrame:
    """Macro-F1 on ``ctx``'s evaluation images of the original, its PTQ copy, the fair
    baseline (the same ``steps`` of float fine-tuning, then PTQ) and QAT for ``steps``.

    ``ctx`` is a :class:`trashkit.compress.pipeline.Baseline`; training images only.
    """
    from .report import eval_f1

    rows_idx = np.sort(ctx.data.train_idx)
    images, labels = ctx.data.cache.images[rows_idx], ctx.data.cache.labels[rows_idx]
    tuned = finetune(copy.deepcopy(ctx.model).cpu(), images, labels, steps, lr=lr, seed=seed)
    qat = bake(finetune(with_fake_quant(ctx.model, bits), images, labels, steps, lr=lr, seed=seed))
    variants = {
        "original (float weights)": ctx.model,
        f"PTQ: weights rounded to {bits} bits": ptq_weights(ctx.model, bits),
        f"float fine-tune {steps} steps, then PTQ (fair baseline)": ptq_weights(tuned, bits),
        f"QAT: {steps} steps with {bits}-bit fake quantization": qat,
    }
    return pd.DataFrame(
        [
            {
                "variant": name,
                "macro_f1": eval_f1(m, ctx.eval_images, ctx.eval_labels, ctx.n_classes),
                "distinct weights per channel (max)": max_levels(m),
            }
            for name, m in variants.items()
        ]
    ).set_index("variant")


def max_levels(model: nn.Module) -> int:
    """The largest number of distinct values in one output channel of any conv / linear
    weight (at most ``2**bits - 1`` once quantized)."""
    return max(
        int(max(len(torch.unique(row)) for row in m.weight.detach().flatten(1)))
        for m in _layers(model)
    )
