"""The modules of the competition's YAML backbone description, built from torchvision parts.

Each builder takes ``(cin, *args)`` with channels already scaled by ``width_multiple`` and
returns ``(module, cout)``. Argument lists follow the competition's template; the names in
``SIGNATURES`` are what validation errors refer to.
"""

from __future__ import annotations

import math
from functools import partial

from torch import nn
from torchvision.models.efficientnet import MBConv, MBConvConfig
from torchvision.models.mobilenetv2 import InvertedResidual as IRv2
from torchvision.models.mobilenetv3 import InvertedResidual as IRv3, InvertedResidualConfig
from torchvision.models.shufflenetv2 import InvertedResidual as ShuffleUnit
from torchvision.models.squeezenet import Fire
from torchvision.ops import Conv2dNormActivation

ACTIVATIONS = {None: nn.ReLU, "ReLU": nn.ReLU, "ReLU6": nn.ReLU6, "Hardswish": nn.Hardswish,
               "HardSwish": nn.Hardswish, "SiLU": nn.SiLU, "Swish": nn.SiLU,
               "Identity": None, "Hardsigmoid": nn.Hardsigmoid}

#: module -> (argument names, number of required arguments, index of the channel args)
SIGNATURES: dict[str, tuple[tuple[str, ...], int, tuple[int, ...]]] = {
    "Conv": (("c", "k", "s", "p", "g", "act"), 1, (0,)),
    "DWConv": (("c", "k", "s", "act"), 1, (0,)),
    "Bottleneck": (("c", "shortcut", "g", "e"), 1, (0,)),
    "InvertedResidualv2": (("c", "t", "s"), 3, (0,)),
    "InvertedResidualv3": (("k", "t", "c", "use_se", "use_hs", "s"), 6, (2,)),
    "MBConv": (("t", "c", "s", "k"), 4, (1,)),
    "Fire": (("squeeze", "expand1x1", "expand3x3"), 3, (0, 1, 2)),
    "ShuffleUnit": (("c", "s"), 2, (0,)),
    "MaxPool": (("k", "s", "p"), 1, ()),
    "AvgPool": (("k", "s", "p"), 1, ()),
    "GlobalAvgPool": ((), 0, ()),
    "Flatten": ((), 0, ()),
    "Linear": (("c", "act"), 1, ()),
}
_BN = partial(nn.BatchNorm2d, eps=0.001, momentum=0.1)


def _act(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {[k for k in ACTIVATIONS if k]}")
    return ACTIVATIONS[name]


class YoloBottleneck(nn.Module):
    """1x1 conv to ``c*e`` then 3x3 (grouped) conv back to ``c``, plus a shortcut when shapes
    allow (the competition template's ``Bottleneck``, from YOLOv5)."""

    def __init__(self, cin: int, c: int, shortcut: bool = True, g: int = 1, e: float = 0.5):
        super().__init__()
        hidden = max(1, int(c * e))
        self.cv1 = Conv2dNormActivation(cin, hidden, 1, activation_layer=nn.SiLU)
        self.cv2 = Conv2dNormActivation(hidden, c, 3, groups=math.gcd(g, math.gcd(hidden, c)),
                                        activation_layer=nn.SiLU)
        self.add = shortcut and cin == c

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class Flatten(nn.Flatten):
    """``nn.Flatten`` from dim 1 (an explicit class so configs read like the template)."""


def build_block(name: str, cin: int, args: list, stride_override: int | None = None):
    """Build one module instance; ``stride_override=1`` for repeats after the first."""
    a = list(args)
    s_of = lambda i, default=1: (stride_override if stride_override is not None else  # noqa
                                 (a[i] if len(a) > i and a[i] is not None else default))
    if name == "Conv":
        c, k = a[0], a[1] if len(a) > 1 else 1
        p = a[3] if len(a) > 3 and a[3] is not None else None
        g = a[4] if len(a) > 4 and a[4] is not None else 1
        act = _act(a[5] if len(a) > 5 else None)
        return Conv2dNormActivation(cin, c, k, s_of(2), p, groups=g, norm_layer=_BN,
                                    activation_layer=act), c
    if name == "DWConv":
        c, k = a[0], a[1] if len(a) > 1 else 3
        act = _act(a[3] if len(a) > 3 else None)
        return Conv2dNormActivation(cin, c, k, s_of(2), groups=math.gcd(cin, c),
                                    norm_layer=_BN, activation_layer=act), c
    if name == "Bottleneck":
        c = a[0]
        return YoloBottleneck(cin, c, *(a[1:4] if len(a) > 1 else [])), c
    if name == "InvertedResidualv2":
        c, t = a[0], a[1]
        return IRv2(cin, c, s_of(2), t, norm_layer=_BN), c
    if name == "InvertedResidualv3":
        k, t, c, se, hs = a[:5]
        exp = InvertedResidualConfig.adjust_channels(cin * t, 1.0)
        cfg = InvertedResidualConfig(cin, k, exp, c, bool(se), "HS" if hs else "RE", s_of(5),
                                     1, 1.0)
        return IRv3(cfg, _BN), cfg.out_channels
    if name == "MBConv":
        t, c, _, k = a[:4]
        cfg = MBConvConfig(t, k, s_of(2), cin, c, 1)
        return MBConv(cfg, 0.0, _BN), c
    if name == "Fire":
        sq, e1, e3 = a[:3]
        return Fire(cin, sq, e1, e3), e1 + e3
    if name == "ShuffleUnit":
        c = a[0]
        return ShuffleUnit(cin, c, s_of(1)), c
    if name in ("MaxPool", "AvgPool"):
        k = a[0]
        s = a[1] if len(a) > 1 and a[1] is not None else k
        p = a[2] if len(a) > 2 and a[2] is not None else 0
        cls = nn.MaxPool2d if name == "MaxPool" else nn.AvgPool2d
        return cls(k, s if stride_override is None else stride_override, p), cin
    if name == "GlobalAvgPool":
        return nn.AdaptiveAvgPool2d(1), cin
    if name == "Flatten":
        return Flatten(), cin
    if name == "Linear":
        c = a[0]
        act = _act(a[1]) if len(a) > 1 and a[1] is not None else None
        lin = nn.Linear(cin, c)
        return (nn.Sequential(lin, act()) if act else lin), c
    raise KeyError(name)
