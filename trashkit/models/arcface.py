"""Metric learning as an alternative head: ArcFace (Deng et al., CVPR 2019).

The backbone's classifier is replaced by a 512-d embedding; the head scores each class by the
cosine between the normalised embedding and a learned, normalised class centre, times a scale
``s``. Training adds an additive angular margin ``m`` to the true class's angle,
``s * cos(theta_y + m)``, which pulls each class into a tighter cone than plain softmax.

What the network returns is the same in training and in evaluation: ``s * cos(theta_j)`` for
every class ``j``, no margin. The margin lives in :class:`ArcFaceLoss` only, because it needs
the label; so ``model(x).argmax(1)`` is the nearest learned centre in both modes, and the
validation loss of :func:`trashkit.metrics.predict` is the cross-entropy of these cosines.

The scale matters most when there are few classes. Face recognition uses ``s = 30..64`` for
thousands of identities; with 6 classes such a scale makes the softmax saturate and the
learning signal of every image very uneven. The default is AdaCos' fixed scale
(Zhang et al., CVPR 2019) ``sqrt(2) * ln(C - 1)`` (:func:`default_scale`), 2.28 for C = 6.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: additive angular margin (radians) of the default loss
DEFAULT_MARGIN = 0.1


def default_scale(num_classes: int) -> float:
    """AdaCos' fixed scale ``sqrt(2) * ln(C - 1)``; for C <= 2 (where it is 0 or undefined)
    the C = 3 value ``sqrt(2) * ln 2``, so a toy with two classes still trains."""
    return math.sqrt(2.0) * math.log(max(num_classes, 3) - 1)


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
    """backbone -> 512-d embedding (Linear + BN) -> s * cos(embedding, class centre).

    ``scale`` None: :func:`default_scale` of ``num_classes``. The class centres are an
    ``nn.Linear`` without bias (so the MACs counter sees the head); its rows are divided by
    their norms in :meth:`forward`, which makes the outputs cosines.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        embedding: int = 512,
        scale: float | None = None,
    ):
        super().__init__()
        features = _replace_last_linear(backbone)
        self.backbone = backbone
        self.embed = nn.Sequential(nn.Linear(features, embedding), nn.BatchNorm1d(embedding))
        self.centres = nn.Linear(embedding, num_classes, bias=False)
        self.scale = default_scale(num_classes) if scale is None else float(scale)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """The unit-length embedding of each image (what nearest-neighbour search compares)."""
        return F.normalize(self.embed(self.backbone(x)).float(), dim=1)

    def cosines(self, e: torch.Tensor) -> torch.Tensor:
        """cos(theta_j) between unit embeddings ``e`` and every class centre, in float32.

        Why float32: under bf16 autocast a cosine keeps ~3 significant digits, too coarse
        for a margin of 0.1 rad taken through ``acos``.
        """
        with torch.autocast(e.device.type, enabled=False):
            # calling the Linear module (not F.linear) keeps its MACs visible to the counter
            dots = self.centres(e.float())
        return dots / self.centres.weight.float().norm(dim=1).clamp(min=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``s * cos(theta_j)`` for every class: the same in train and eval mode."""
        return self.scale * self.cosines(self.embedding(x))


def margin_logits(
    cos: torch.Tensor, target: torch.Tensor, margin: float, scale: float
) -> torch.Tensor:
    """``s * cos(theta_y + m)`` for the true class ``y``, ``s * cos(theta_j)`` for the others.

    Past ``theta + m = pi`` the cosine would rise again (a *smaller* penalty for a worse
    angle); there the usual fallback ``cos(theta) - m * sin(m)`` keeps it monotone.
    """
    cos = cos.float().clamp(-1.0, 1.0)
    true = cos.gather(1, target[:, None])
    sin = (1.0 - true * true).clamp(min=1e-7).sqrt()
    # cos(theta + m) = cos(theta) cos(m) - sin(theta) sin(m): no acos, so no infinite
    # gradient at cos = +-1
    shifted = true * math.cos(margin) - sin * math.sin(margin)
    shifted = torch.where(
        true > math.cos(math.pi - margin), shifted, true - margin * math.sin(margin)
    )
    return scale * cos.scatter(1, target[:, None], shifted)


class ArcFaceLoss(nn.Module):
    """Cross-entropy on :func:`margin_logits` of the network's ``s * cos`` outputs.

    ``scale`` must be the network's (the loss divides it out to recover the cosines): an
    output above the scale means they differ, and is an error rather than a silent clamp.
    ``margin`` is an attribute so a schedule can change it during training
    (:class:`trashkit.train.callbacks.MarginWarmup`).
    """

    def __init__(
        self, margin: float = DEFAULT_MARGIN, scale: float | None = None, num_classes: int = 6
    ):
        super().__init__()
        self.margin = float(margin)
        self.s = default_scale(num_classes) if scale is None else float(scale)

    @property
    def m(self) -> float:
        """The paper's name for the margin."""
        return self.margin

    @m.setter
    def m(self, value: float) -> None:
        self.margin = float(value)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim != 1:
            raise ValueError(
                "ArcFaceLoss needs one class index per image (no mixup/CutMix "
                "soft targets): the margin applies to the true class only"
            )
        cos = logits.float() / self.s
        worst = cos.detach().abs().max().item() if cos.numel() else 0.0
        if worst > 1.0 + 1e-3:
            raise ValueError(
                f"ArcFaceLoss(scale={self.s:.4g}) got a logit of "
                f"{worst * self.s:.4g}: the network's scale is larger than the "
                "loss's; build both with the same scale"
            )
        return F.cross_entropy(margin_logits(cos, target, self.margin, self.s), target)
