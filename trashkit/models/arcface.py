"""Metric learning as an alternative head: ArcFace (Deng et al., CVPR 2019).

The backbone's classifier is replaced by a 512-d embedding; the head scores each class by the
cosine between the normalised embedding and a learned, normalised class centre (times a scale
``s``). Training adds an additive angular margin ``m`` to the true class's angle, which pulls
each class into a tight cone. Predictions are the nearest centre by cosine - the learned
centres, or the mean training embeddings (:func:`class_centres`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _replace_last_linear(model: nn.Module) -> int:
    """Swap the last ``nn.Linear`` for Identity; return its input width (feature size)."""
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            last = name
    if last is None:
        raise ValueError("backbone has no nn.Linear classifier to replace")
    parent_name, _, child = last.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    features = getattr(parent, child).in_features
    setattr(parent, child, nn.Identity())
    return features


class ArcFaceNet(nn.Module):
    """backbone -> 512-d embedding (Linear + BN) -> s * cos(embedding, class centre)."""

    def __init__(self, backbone: nn.Module, num_classes: int, embedding: int = 512,
                 scale: float = 16.0):
        super().__init__()
        features = _replace_last_linear(backbone)
        self.backbone = backbone
        self.embed = nn.Sequential(nn.Linear(features, embedding), nn.BatchNorm1d(embedding))
        self.centres = nn.Linear(embedding, num_classes, bias=False)  # a Linear: counted MACs
        self.scale = scale

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed(self.backbone(x)), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # calling the Linear module (not F.linear) keeps its MACs visible to the counter;
        # dividing by the centre norms turns the dot products into cosines
        e = self.embedding(x)
        return self.scale * self.centres(e) / self.centres.weight.norm(dim=1).clamp(min=1e-12)


class ArcFaceLoss(nn.Module):
    """Cross-entropy on ``s * cos(theta + m)`` for the true class, ``s * cos(theta)`` others."""

    def __init__(self, margin: float = 0.1, scale: float = 16.0):
        super().__init__()
        self.m, self.s = margin, scale

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cos = (logits.float() / self.s).clamp(-1 + 1e-7, 1 - 1e-7)
        theta = torch.acos(cos.gather(1, target[:, None]))
        # keep the margin monotone when theta + m passes pi (the "easy margin" fallback)
        with_margin = torch.where(theta + self.m < math.pi, torch.cos(theta + self.m),
                                  cos.gather(1, target[:, None]) - self.m * math.sin(self.m))
        out = cos.scatter(1, target[:, None], with_margin)
        return F.cross_entropy(self.s * out, target)


@torch.no_grad()
def class_centres(model: ArcFaceNet, loader, device="cpu") -> torch.Tensor:
    """Mean normalised embedding per class over a loader of normalised batches."""
    sums, counts = None, None
    model.eval()
    for x, y in loader:
        e = model.embedding(x.to(device))
        if sums is None:
            n = model.centres.out_features
            sums, counts = torch.zeros(n, e.shape[1]), torch.zeros(n)
        sums.index_add_(0, y.cpu(), e.cpu())
        counts.index_add_(0, y.cpu(), torch.ones(len(y)))
    return F.normalize(sums / counts.clamp(min=1)[:, None], dim=1)
