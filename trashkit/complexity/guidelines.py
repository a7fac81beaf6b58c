"""The four guideline experiments of ShuffleNet V2 (Ma et al., ECCV 2018, Tables 1-4).

Each experiment stacks 10 identical blocks on a 56 x 56 input and varies one design choice
while holding the convolution FLOPs (to within ~1%, as the paper does) constant:

* G1 - equal channel widths minimise memory access cost: 1x1 conv pairs, c1:c2 = 1:1 ... 1:12
* G2 - large group counts raise memory access cost: 1x1 group convs, g = 1, 2, 4, 8
* G3 - fragmentation hurts parallelism: 1 conv vs. 2/4 smaller convs in series / in parallel
* G4 - element-wise ops are not negligible: a ResNet bottleneck with/without ReLU, shortcut

The paper's own numbers are embedded (:data:`PAPER`) so each measured table is shown beside
them, normalised to the first row so trends compare across hardware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
from torch import nn

from .analytic import count_layers
from .latency import measure_latency

HW = 56
BLOCKS = 10
CITATION = ("N. Ma, X. Zhang, H.-T. Zheng, J. Sun. ShuffleNet V2: Practical Guidelines for "
            "Efficient CNN Architecture Design. ECCV 2018, Tables 1-4 (GPU: GTX 1080Ti, "
            "batches/s; ARM: Snapdragon 810, images/s).")

#: The paper's measurements, transcribed from Tables 1-4: {experiment: {column: [rows]}}.
PAPER: dict[str, dict[str, list[float]]] = {
    "G1": {"GPU x1": [1480, 1296, 876, 748], "GPU x2": [723, 586, 489, 392],
           "GPU x4": [232, 206, 189, 162], "ARM x1": [76.2, 72.9, 69.1, 57.6],
           "ARM x2": [21.7, 20.5, 17.9, 15.1], "ARM x4": [5.3, 5.1, 4.6, 4.4]},
    "G2": {"GPU x1": [2451, 1725, 1026, 634], "GPU x2": [1289, 873, 644, 445],
           "GPU x4": [437, 341, 338, 230], "ARM x1": [40.0, 35.0, 32.9, 27.8],
           "ARM x2": [10.2, 9.5, 8.7, 7.5], "ARM x4": [2.3, 2.2, 2.1, 1.8]},
    "G3": {"GPU c=128": [2446, 1790, 752, 1537, 691], "GPU c=256": [1274, 909, 745, 803, 572],
           "GPU c=512": [434, 336, 349, 320, 292], "ARM c=64": [40.2, 38.6, 38.4, 33.4, 35.0],
           "ARM c=128": [10.1, 10.1, 10.1, 9.1, 8.4], "ARM c=256": [2.3, 2.2, 2.3, 2.2, 2.1]},
    "G4": {"GPU c=32": [2427, 2647, 2672, 2842], "GPU c=64": [2066, 2256, 2121, 2376],
           "GPU c=128": [1436, 1735, 1458, 1782], "ARM c=32": [56.7, 61.9, 57.3, 66.3],
           "ARM c=64": [16.9, 18.8, 18.2, 20.2], "ARM c=128": [5.0, 5.2, 5.1, 5.4]},
}
CLAIMS = {
    "G1": "equal channel width (1:1) is fastest; speed falls as c1:c2 grows",
    "G2": "g = 1 is fastest; speed falls as the group count grows",
    "G3": "1-fragment is fastest; more fragments are slower, parallel worst on GPU",
    "G4": "removing ReLU and shortcut speeds the block up (~20% on GPU, ~15% on ARM)",
}


@dataclass
class Variant:
    """One row of an experiment: a label, a builder and its input channels."""

    label: str
    build: Callable[[], nn.Module]
    in_channels: int


class Parallel(nn.Module):
    """Branches on the same input, concatenated along channels (a fragmented layer)."""

    def __init__(self, *branches: nn.Module):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], dim=1)


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1 -> 3x3 -> 1x1, c -> c/4 -> c) with switchable ReLU and shortcut."""

    def __init__(self, c: int, relu: bool = True, shortcut: bool = True):
        super().__init__()
        m = max(1, c // 4)
        act = (lambda: nn.ReLU(inplace=False)) if relu else nn.Identity
        self.body = nn.Sequential(nn.Conv2d(c, m, 1, bias=False), act(),
                                  nn.Conv2d(m, m, 3, padding=1, bias=False), act(),
                                  nn.Conv2d(m, c, 1, bias=False))
        self.out = act()
        self.shortcut = shortcut

    def forward(self, x):
        y = self.body(x)
        if self.shortcut:
            y = y + x
        return self.out(y)


def _conv1x1(cin: int, cout: int, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, groups=groups, bias=False)


def _stack(block: Callable[[], nn.Module]) -> nn.Module:
    return nn.Sequential(*[block() for _ in range(BLOCKS)])


def g1_variants(c: int = 128) -> list[Variant]:
    """c1 * c2 = c^2 held (nearest integers): pairs c1 -> c2 -> c1 of 1x1 convs."""
    out = []
    for r in (1, 2, 6, 12):
        c1 = max(1, round(math.sqrt(c * c / r)))
        c2 = r * c1
        out.append(Variant(f"1:{r} (c1={c1}, c2={c2})",
                           lambda c1=c1, c2=c2: _stack(lambda: nn.Sequential(
                               _conv1x1(c1, c2), _conv1x1(c2, c1))), c1))
    return out


def g2_variants(c: int = 128) -> list[Variant]:
    """c^2 / g held: c grows ~ sqrt(g), rounded to a multiple of g."""
    out = []
    for g in (1, 2, 4, 8):
        cg = max(g, round(c * math.sqrt(g) / g) * g)
        out.append(Variant(f"g={g} (c={cg})",
                           lambda cg=cg, g=g: _stack(lambda: _conv1x1(cg, cg, g)), cg))
    return out


def _series_width(c: int, n: int) -> int:
    """Inner width m of a c -> m -> ... -> m -> c chain of n 1x1 convs with FLOPs ~ c^2."""
    if n == 1:
        return c
    # 2 c m + (n - 2) m^2 = c^2
    a, b = n - 2, 2 * c
    m = c * c / b if a == 0 else (-b + math.sqrt(b * b + 4 * a * c * c)) / (2 * a)
    return max(1, round(m))


def g3_variants(c: int = 128) -> list[Variant]:
    """1-fragment, 2/4-fragment in series, 2/4-fragment in parallel (concatenated)."""
    def series(n: int) -> nn.Module:
        m = _series_width(c, n)
        widths = [c] + [m] * (n - 1) + [c]
        return nn.Sequential(*[_conv1x1(widths[i], widths[i + 1]) for i in range(n)])

    def parallel(n: int) -> nn.Module:
        return Parallel(*[_conv1x1(c, c // n) for _ in range(n)])

    return [Variant("1-fragment", lambda: _stack(lambda: _conv1x1(c, c)), c),
            Variant("2-fragment-series", lambda: _stack(lambda: series(2)), c),
            Variant("4-fragment-series", lambda: _stack(lambda: series(4)), c),
            Variant("2-fragment-parallel", lambda: _stack(lambda: parallel(2)), c),
            Variant("4-fragment-parallel", lambda: _stack(lambda: parallel(4)), c)]


def g4_variants(c: int = 32) -> list[Variant]:
    """The same bottleneck with and without ReLU and shortcut (conv FLOPs identical)."""
    rows = [(True, True), (True, False), (False, True), (False, False)]
    return [Variant(f"ReLU={'yes' if r else 'no'}, shortcut={'yes' if s else 'no'}",
                    lambda r=r, s=s: _stack(lambda: Bottleneck(c, r, s)), c) for r, s in rows]


EXPERIMENTS = {"G1": g1_variants, "G2": g2_variants, "G3": g3_variants, "G4": g4_variants}
DEFAULT_WIDTH = {"G1": 128, "G2": 128, "G3": 128, "G4": 32}


def variant_costs(variants: list[Variant]) -> pd.DataFrame:
    """Analytic conv MACs and element-wise FLOPs and memory access of each variant."""
    rows = []
    for v in variants:
        df = count_layers(v.build(), (v.in_channels, HW, HW))
        conv = df[df.category == "conv"]
        rows.append({"variant": v.label, "conv MACs": int(conv.macs.sum()),
                     "elementwise FLOPs": int(df[df.category != "conv"].flops.sum()),
                     "mem (elements)": int(df.mem.sum())})
    return pd.DataFrame(rows).set_index("variant")


def run_experiment(name: str, width: int | None = None, batch: int = 1, runs: int = 100,
                   warmup: int = 10, device: str = "cpu",
                   threads: int | None = None) -> pd.DataFrame:
    """Measure one experiment: speed (images/s), normalised to the first row, beside the paper.

    The paper averaged 100 runs; we report the median of ``runs`` (robust to the noise of a
    shared machine) and the p90.
    """
    width = width or DEFAULT_WIDTH[name]
    variants = EXPERIMENTS[name](width)
    costs = variant_costs(variants)
    rows = []
    for v in variants:
        lat = measure_latency(v.build(), (v.in_channels, HW, HW), batch=batch, warmup=warmup,
                              runs=runs, device=device, threads=threads)
        rows.append({"variant": v.label, "median ms": lat.median_ms, "p90 ms": lat.p90_ms,
                     "images/s": lat.throughput})
    df = pd.DataFrame(rows).set_index("variant").join(costs)
    df["relative speed"] = df["images/s"] / df["images/s"].iloc[0]
    for col, vals in PAPER[name].items():
        df[f"paper {col} (rel.)"] = [round(v / vals[0], 2) for v in vals]
    df.attrs.update(experiment=name, width=width, batch=batch, runs=runs, device=lat.device,
                    threads=lat.threads, torch=lat.torch, claim=CLAIMS[name])
    return df


def verdict(df: pd.DataFrame, tolerance: float = 0.03) -> tuple[str, str]:
    """'holds' / 'partly' / 'does not hold' with the measured reason, from relative speeds.

    ``tolerance`` treats speed differences below 3% as ties (machine noise).
    """
    name = df.attrs["experiment"]
    rel = df["relative speed"].tolist()
    labels = df.index.tolist()
    best = labels[max(range(len(rel)), key=rel.__getitem__)]
    if name in ("G1", "G2"):
        first_best = all(r <= 1 + tolerance for r in rel[1:])
        monotone = all(b <= a * (1 + tolerance) for a, b in zip(rel, rel[1:]))
        spread = f"last row runs at {rel[-1]:.2f}x the first"
        if first_best and monotone and rel[-1] < 1 - tolerance:
            return "holds", f"speed falls steadily down the table; {spread}"
        if first_best or rel[-1] < 1 - tolerance:
            return "partly", f"fastest: {best}; {spread}; not a steady fall"
        return "does not hold", f"fastest: {best}; {spread}"
    if name == "G3":
        frag = rel[1:]
        if all(r < 1 - tolerance for r in frag):
            return "holds", (f"every fragmented variant is slower (worst "
                             f"{min(frag):.2f}x, {labels[1 + frag.index(min(frag))]})")
        if any(r < 1 - tolerance for r in frag):
            return "partly", f"fastest: {best}; relative speeds {[round(r, 2) for r in rel]}"
        return "does not hold", f"fragments cost nothing measurable here: {[round(r, 2) for r in rel]}"
    gain = rel[-1] - 1
    if gain > tolerance and rel[-1] >= max(rel) - tolerance:
        return "holds", f"without ReLU and shortcut the block runs {gain:+.0%} faster"
    if gain > tolerance or max(rel[1:]) > 1 + tolerance:
        return "partly", f"removing element-wise ops changes speed by {gain:+.0%}"
    return "does not hold", f"element-wise ops cost nothing measurable ({gain:+.0%})"
