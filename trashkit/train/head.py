"""Re-training only the last layer of a softmax network: the softmax way to add a class.

Chapter 8 compares adding a class to an embedding (store the mean of a few of its vectors)
with this: a head with one more output, trained on the frozen features of the old training
images plus the new class's few images, each class weighted by its inverse frequency
(:func:`trashkit.train.losses.class_weights`, so ``k`` images of the new class weigh as much
as a whole old class).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .losses import class_weights


def finetune_head(
    head: nn.Linear,
    features: torch.Tensor,
    labels: np.ndarray,
    n_classes: int,
    steps: int = 300,
    lr: float = 0.01,
    seed: int = 0,
) -> nn.Linear:
    """A copy of ``head`` with ``n_classes`` outputs, started from the old rows (the new rows
    at zero) and trained on ``features`` (frozen) and ``labels`` by full-batch Adam for
    ``steps`` steps with class-weighted cross-entropy. ``head`` itself is not changed."""
    torch.manual_seed(seed)
    new = nn.Linear(head.in_features, n_classes)
    with torch.no_grad():
        new.weight.zero_()
        new.bias.zero_()
        new.weight[: head.out_features] = head.weight
        if head.bias is not None:
            new.bias[: head.out_features] = head.bias
    y = torch.as_tensor(labels)
    weight = class_weights(np.asarray(labels), n_classes)
    opt = torch.optim.Adam(new.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(new(features), y, weight=weight).backward()
        opt.step()
    return new.eval()
