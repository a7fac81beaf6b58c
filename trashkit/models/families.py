"""Two lightweight families with width, depth and resolution knobs, on torchvision's classes.

Like torchvision's ``mobilenetv3.py`` and ``shufflenetv2.py``: a config list plus a builder.
Width scales channels (rounded to a multiple of 8, or even numbers for ShuffleNet's split),
depth scales the number of blocks in each stage, and resolution is simply the input size the
model is trained and scored at (MACs grow with its square).
"""

from __future__ import annotations

import math
from functools import partial

from torch import nn
from torchvision.models.mobilenetv3 import InvertedResidualConfig, MobileNetV3
from torchvision.models.shufflenetv2 import ShuffleNetV2

# MobileNetV3-small (Howard et al. 2019, Table 2): kernel, expanded, out, SE, activation,
# stride; consecutive rows with the same out channels form one stage.
MBV3_SMALL = [
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2),
    (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2),
    (5, 240, 40, True, "HS", 1),
    (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1),
    (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1),
    (5, 576, 96, True, "HS", 1),
]
MBV3_SMALL_LAST = 1024


def _stages(rows: list[tuple]) -> list[list[tuple]]:
    stages: list[list[tuple]] = []
    for r in rows:
        if stages and stages[-1][-1][2] == r[2]:
            stages[-1].append(r)
        else:
            stages.append([r])
    return stages


def _depth(n: int, depth: float) -> int:
    return max(1, int(math.ceil(n * depth)))


def _even(c: float) -> int:
    """An even channel count of at least 8: a ShuffleNet unit splits its channels in half."""
    return max(8, int(round(c / 2)) * 2)


def mobilenetv3(
    width: float = 1.0,
    depth: float = 1.0,
    num_classes: int = 6,
    dropout: float = 0.2,
    last_channel: int = MBV3_SMALL_LAST,
) -> MobileNetV3:
    """A MobileNetV3-small-style network; ``depth`` < 1 drops blocks from each stage's end."""
    if width <= 0 or depth <= 0:
        raise ValueError(f"width and depth must be > 0, got width={width}, depth={depth}")
    rows: list[tuple] = []
    for stage in _stages(MBV3_SMALL):
        n = _depth(len(stage), depth)
        # extra blocks (depth > 1) repeat the stage's last row at stride 1
        rows += [stage[i] if i < len(stage) else (*stage[-1][:5], 1) for i in range(n)]
    cfg, cin = [], 16
    for k, exp, out, se, act, s in rows:
        cfg.append(InvertedResidualConfig(cin, k, exp, out, se, act, s, 1, width))
        cin = out
    last = InvertedResidualConfig.adjust_channels(last_channel, width)
    return MobileNetV3(
        cfg,
        last,
        num_classes=num_classes,
        dropout=dropout,
        norm_layer=partial(nn.BatchNorm2d, eps=0.001, momentum=0.1),
    )


def shufflenetv2(width: float = 0.5, depth: float = 1.0, num_classes: int = 6) -> ShuffleNetV2:
    """ShuffleNetV2 with stage channels (48, 96, 192) x (width / 0.5), repeats (4, 8, 4) x depth.

    ``width=0.5`` with ``depth=1`` is torchvision's ``shufflenet_v2_x0_5``.
    """
    if width <= 0 or depth <= 0:
        raise ValueError(f"width and depth must be > 0, got width={width}, depth={depth}")
    channels = [24, *(_even(c * width / 0.5) for c in (48, 96, 192)), 1024 if width < 2 else 2048]
    repeats = [_depth(n, depth) for n in (4, 8, 4)]
    return ShuffleNetV2(repeats, channels, num_classes=num_classes)


FAMILIES = {"mobilenetv3": mobilenetv3, "shufflenetv2": shufflenetv2}
