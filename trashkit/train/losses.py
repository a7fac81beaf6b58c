"""The losses of the recipe: cross-entropy and its variants for imbalance, and distillation.

All of them accept hard targets (class indices) and, except ArcFace, soft targets (a
probability per class, what mixup / CutMix produce).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class FocalLoss(nn.Module):
    """Focal loss (Lin et al., 2017): ``-(1 - p_t)^gamma * log p_t``.

    Easy images (p_t near 1) contribute almost nothing, so the many easy images of a large
    class stop dominating the gradient. ``gamma = 0`` is plain cross-entropy.
    """

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma, self.weight = gamma, weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits, dim=1)
        if target.ndim == 1:  # class indices
            logp_t = logp.gather(1, target[:, None]).squeeze(1)
            loss = -((1 - logp_t.exp()) ** self.gamma) * logp_t
            if self.weight is not None:
                loss = loss * self.weight[target]
            return loss.mean()
        w = 1.0 if self.weight is None else self.weight[None]
        return -(w * target * (1 - logp.exp()) ** self.gamma * logp).sum(1).mean()


def kd_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    hard_loss: torch.Tensor,
    temperature: float = 4.0,
    alpha: float = 0.7,
) -> torch.Tensor:
    """Hinton et al. (2015): ``alpha * T^2 * KL(p_teacher^T || p_student^T) + (1-alpha) * hard``.

    The T^2 factor keeps the soft term's gradients on the scale of the hard loss's.
    """
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student.float() / t, dim=1),
        F.log_softmax(teacher.float() / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return alpha * t * t * soft + (1 - alpha) * hard_loss


def class_weights(labels: np.ndarray, n: int) -> torch.Tensor:
    """Inverse-frequency weights ``N / (C * n_c)`` (scikit-learn's 'balanced' rule): a class
    with half the average count weighs 2, and the weights average 1 over the images."""
    counts = np.bincount(labels, minlength=n).astype(np.float64)
    w = len(labels) / (n * np.maximum(counts, 1))
    return torch.tensor(w, dtype=torch.float32)


def make_loss(
    name: str,
    train_labels: np.ndarray,
    n: int,
    label_smoothing: float = 0.1,
    focal_gamma: float = 2.0,
) -> nn.Module:
    """The criterion a config names (see :data:`trashkit.train.config.LOSSES`)."""
    if name == "ce":
        return nn.CrossEntropyLoss()
    if name == "label_smoothing":
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    if name == "class_weights":
        return nn.CrossEntropyLoss(weight=class_weights(train_labels, n))
    if name == "arcface":
        from ..models.arcface import ArcFaceLoss

        return ArcFaceLoss(num_classes=n)  # the scale build_model gives an n-class head
    if name == "focal":
        return FocalLoss(focal_gamma)
    raise ValueError(f"unknown loss {name!r}")
