"""The four guideline experiments of ShuffleNet V2 (Ma et al., ECCV 2018, Tables 1-4).

Each experiment stacks 10 identical blocks on a 56 x 56 input and varies one design choice
while holding the convolution FLOPs roughly constant, with the paper's own channel settings
(:data:`G1_WIDTHS`, :data:`G2_WIDTHS`, ...): most rows are equal to within 1%; the exceptions
are G1's 1:12 row (5% fewer FLOPs than 1:1) and ARM 1:2 row (5.5% fewer), G2's ARM g = 8 row
(3.3% more, with 184 channels: see :func:`groupable`) and G3's ARM 4-fragment-series row (2.3%
fewer). The paper's "FLOPs" are multiply-adds (its footnote 1), i.e. what trashkit calls MACs.

* G1 - equal channel widths minimise memory access cost: 1x1 conv pairs, c1:c2 = 1:1 ... 1:12
* G2 - large group counts raise memory access cost: 1x1 group convs, g = 1, 2, 4, 8
* G3 - fragmentation hurts parallelism: 1 conv vs. 2/4 smaller convs in series / in parallel
* G4 - element-wise ops are not negligible: a ResNet bottleneck with/without ReLU, shortcut

Timing is repeated: every variant is timed ``repeats`` times (median of ``runs`` calls each),
variants taking turns, and speeds are compared *within* a repetition. When the R repetitions
are independent, their smallest and largest bracket the median with probability
1 - 2 * 0.5^R whatever the shape of the noise (:func:`range_confidence`); on a machine whose
load drifts, consecutive repetitions are not independent and the range is only the range of
what was seen. A verdict counts a row as slower or faster only when its whole range lies on
one side of 1. The paper's own numbers are embedded (:data:`PAPER`) and shown beside ours,
normalised to the first row so trends compare across hardware.

Chapter 3 also gets its presets (:data:`PRESETS`), the design task's baseline (four
ShuffleNet v1 units, :func:`design_baseline`) and the instruments that grade it
(:func:`receptive_field`, :func:`design_speed`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from .analytic import count_layers
from .latency import time_in_turns

HW = 56
BLOCKS = 10
SETTINGS = ("GPU", "ARM")
CITATION = (
    "N. Ma, X. Zhang, H.-T. Zheng, J. Sun. ShuffleNet V2: Practical Guidelines for "
    "Efficient CNN Architecture Design. ECCV 2018, Tables 1-4 (GPU: GTX 1080Ti, "
    "batches/s; ARM: Snapdragon 810, images/s)."
)

#: The paper's measurements, transcribed from Tables 1-4: {experiment: {column: [rows]}}.
PAPER: dict[str, dict[str, list[float]]] = {
    "G1": {
        "GPU x1": [1480, 1296, 876, 748],
        "GPU x2": [723, 586, 489, 392],
        "GPU x4": [232, 206, 189, 163],
        "ARM x1": [76.2, 72.9, 69.1, 57.6],
        "ARM x2": [21.7, 20.5, 17.9, 15.1],
        "ARM x4": [5.3, 5.1, 4.6, 4.4],
    },
    "G2": {
        "GPU x1": [2451, 1725, 1026, 634],
        "GPU x2": [1289, 873, 644, 445],
        "GPU x4": [437, 341, 338, 230],
        "ARM x1": [40.0, 35.0, 32.9, 27.8],
        "ARM x2": [10.2, 9.5, 8.7, 7.5],
        "ARM x4": [2.3, 2.2, 2.1, 1.8],
    },
    "G3": {
        "GPU c=128": [2446, 1790, 752, 1537, 691],
        "GPU c=256": [1274, 909, 745, 803, 572],
        "GPU c=512": [434, 336, 349, 320, 292],
        "ARM c=64": [40.2, 38.6, 38.4, 33.4, 35.0],
        "ARM c=128": [10.1, 10.1, 10.1, 9.1, 8.4],
        "ARM c=256": [2.3, 2.2, 2.3, 2.2, 2.1],
    },
    "G4": {
        "GPU c=32": [2427, 2647, 2672, 2842],
        "GPU c=64": [2066, 2256, 2121, 2376],
        "GPU c=128": [1436, 1735, 1458, 1782],
        "ARM c=32": [56.7, 61.9, 57.3, 66.3],
        "ARM c=64": [16.9, 18.8, 18.2, 20.2],
        "ARM c=128": [5.0, 5.2, 5.1, 5.4],
    },
}
#: The paper's channel settings for its "x1" columns (Tables 1-4), per platform.
G1_WIDTHS = {
    "GPU": [(128, 128), (90, 180), (52, 312), (36, 432)],
    "ARM": [(32, 32), (22, 44), (13, 78), (9, 108)],
}
G2_WIDTHS = {"GPU": [128, 180, 256, 360], "ARM": [64, 90, 128, 180]}
G2_GROUPS = (1, 2, 4, 8)
G3_WIDTH = {"GPU": 128, "ARM": 64}
G4_WIDTH = {"GPU": 32, "ARM": 32}
#: which of the paper's columns each of our settings reproduces
PAPER_COLUMN = {
    "G1": {"GPU": "GPU x1", "ARM": "ARM x1"},
    "G2": {"GPU": "GPU x1", "ARM": "ARM x1"},
    "G3": {"GPU": "GPU c=128", "ARM": "ARM c=64"},
    "G4": {"GPU": "GPU c=32", "ARM": "ARM c=32"},
}
#: what the paper itself concludes from each table (its wording, shortened)
CLAIMS = {
    "G1": "speed is highest at c1:c2 = 1:1 and falls as the ratio grows",
    "G2": "g = 1 is fastest; 8 groups run over 2x slower than 1 on GPU, up to 30% on ARM",
    "G3": "fragments cut speed a lot on GPU (4 fragments about 3x slower), little on ARM",
    "G4": "removing ReLU and shortcut gives around 20% speed-up on both GPU and ARM",
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1 -> 3x3 -> 1x1, c -> c/4 -> c) with switchable ReLU and shortcut."""

    def __init__(self, c: int, relu: bool = True, shortcut: bool = True):
        super().__init__()
        m = max(1, c // 4)
        act = (lambda: nn.ReLU(inplace=False)) if relu else nn.Identity
        self.body = nn.Sequential(
            nn.Conv2d(c, m, 1, bias=False),
            act(),
            nn.Conv2d(m, m, 3, padding=1, bias=False),
            act(),
            nn.Conv2d(m, c, 1, bias=False),
        )
        self.out = act()
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.shortcut:
            y = y + x
        return self.out(y)


def _conv1x1(cin: int, cout: int, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, groups=groups, bias=False)


def _stack(block: Callable[[], nn.Module]) -> nn.Module:
    return nn.Sequential(*[block() for _ in range(BLOCKS)])


def g1_variants(setting: str = "GPU") -> list[Variant]:
    """The paper's Table 1 rows: blocks of two 1x1 convs c1 -> c2 -> c1."""
    out = []
    for r, (c1, c2) in zip((1, 2, 6, 12), G1_WIDTHS[setting], strict=True):
        out.append(
            Variant(
                f"1:{r} (c1={c1}, c2={c2})",
                lambda c1=c1, c2=c2: _stack(
                    lambda: nn.Sequential(_conv1x1(c1, c2), _conv1x1(c2, c1))
                ),
                c1,
            )
        )
    return out


def groupable(c: int, g: int) -> int:
    """``c`` itself when g groups split it evenly, else the nearest multiple of g, rounding a
    tie up (the paper's ARM row g = 8 lists c = 180, which is 22.5 channels per group: PyTorch
    refuses it; 176 and 184 are equally near, and we use 184, +3.3% FLOPs)."""
    return c if c % g == 0 else max(g, int(c / g + 0.5) * g)


def g2_variants(setting: str = "GPU") -> list[Variant]:
    """The paper's Table 2 rows: one 1x1 group conv c -> c with g groups per block."""
    out = []
    for g, paper_c in zip(G2_GROUPS, G2_WIDTHS[setting], strict=True):
        c = groupable(paper_c, g)
        label = f"g={g} (c={c})" if c == paper_c else f"g={g} (c={c}; paper: {paper_c})"
        out.append(Variant(label, lambda c=c, g=g: _stack(lambda: _conv1x1(c, c, g)), c))
    return out


def _series_width(c: int, n: int) -> int:
    """Inner width m of a c -> m -> ... -> m -> c chain of n 1x1 convs with FLOPs ~ c^2."""
    if n == 1:
        return c
    # 2 c m + (n - 2) m^2 = c^2
    a, b = n - 2, 2 * c
    m = c * c / b if a == 0 else (-b + (b * b + 4 * a * c * c) ** 0.5) / (2 * a)
    return max(1, round(m))


def g3_variants(setting: str = "GPU") -> list[Variant]:
    """1-fragment, 2/4-fragment in series, 2/4-fragment in parallel (concatenated), all 1x1
    convs at the FLOPs of one c -> c conv (our reading of the paper's appendix figure)."""
    c = G3_WIDTH[setting]

    def series(n: int) -> nn.Module:
        m = _series_width(c, n)
        widths = [c] + [m] * (n - 1) + [c]
        return nn.Sequential(*[_conv1x1(widths[i], widths[i + 1]) for i in range(n)])

    def parallel(n: int) -> nn.Module:
        return Parallel(*[_conv1x1(c, c // n) for _ in range(n)])

    return [
        Variant("1-fragment", lambda: _stack(lambda: _conv1x1(c, c)), c),
        Variant("2-fragment-series", lambda: _stack(lambda: series(2)), c),
        Variant("4-fragment-series", lambda: _stack(lambda: series(4)), c),
        Variant("2-fragment-parallel", lambda: _stack(lambda: parallel(2)), c),
        Variant("4-fragment-parallel", lambda: _stack(lambda: parallel(4)), c),
    ]


def g4_variants(setting: str = "GPU") -> list[Variant]:
    """The same bottleneck with and without ReLU and shortcut (conv FLOPs identical)."""
    c = G4_WIDTH[setting]
    rows = [(True, True), (True, False), (False, True), (False, False)]
    return [
        Variant(
            f"ReLU={'yes' if r else 'no'}, shortcut={'yes' if s else 'no'}",
            lambda r=r, s=s: _stack(lambda: Bottleneck(c, r, s)),
            c,
        )
        for r, s in rows
    ]


EXPERIMENTS = {"G1": g1_variants, "G2": g2_variants, "G3": g3_variants, "G4": g4_variants}


def variant_costs(variants: list[Variant]) -> pd.DataFrame:
    """Analytic conv MACs (the paper's "FLOPs"), element-wise FLOPs and memory access of each
    variant; ``MACs vs first`` shows how far each row is from the first (G1 1:12: -5%)."""
    rows = []
    for v in variants:
        df = count_layers(v.build(), (v.in_channels, HW, HW))
        conv = df[df.category == "conv"]
        rows.append(
            {
                "variant": v.label,
                "conv MACs": int(conv.macs.sum()),
                "elementwise FLOPs": int(df[df.category != "conv"].flops.sum()),
                "mem (elements)": int(df.mem.sum()),
            }
        )
    out = pd.DataFrame(rows).set_index("variant")
    out.insert(1, "MACs vs first", out["conv MACs"] / out["conv MACs"].iloc[0] - 1)
    return out


def range_confidence(repeats: int) -> float:
    """Probability that [min, max] of ``repeats`` *independent* draws from one distribution
    contains its median: it misses only when all R fall on the same side, 2 * 0.5^R. Under
    drift (repetitions that share a slow or fast spell) the draws are not independent and
    the range covers the median less often: it is then a range of what was seen, not a
    confidence interval."""
    return 1 - 2 * 0.5**repeats


def range_coverage(repeats: int, drift: float = 0.0, trials: int = 20_000, seed: int = 0) -> float:
    """Simulated share of runs whose [min, max] over ``repeats`` log-ratios contains the true
    median (0). Each log-ratio is a shift shared by the whole run (standard deviation
    ``drift``: a slow spell every repetition of that run sees) plus independent noise
    (standard deviation 1). ``drift=0`` reproduces :func:`range_confidence`."""
    rng = np.random.default_rng(seed)
    x = drift * rng.standard_normal((trials, 1)) + rng.standard_normal((trials, repeats))
    return float(((x.min(axis=1) <= 0) & (x.max(axis=1) >= 0)).mean())


def time_variants(
    variants: list[Variant],
    repeats: int = 5,
    runs: int = 20,
    warmup: int = 5,
    batch: int = 1,
    device: str = "cpu",
    threads: int | None = None,
) -> pd.DataFrame:
    """One row per (repetition, variant): the median ms of ``runs`` timed calls.

    Variants take turns within a repetition (and the starting variant rotates), so slow drift
    of a shared machine hits every variant alike instead of favouring the one timed first.
    """
    built = {v.label: (v.build().eval(), (v.in_channels, HW, HW)) for v in variants}
    turns, lat = time_in_turns(built, repeats, runs, warmup, batch, threads, device)
    out = turns.rename(columns={"model": "variant"})
    out.attrs.update(
        device=lat.device,
        threads=lat.threads,
        torch=lat.torch,
        runs=runs,
        repeats=repeats,
        batch=batch,
    )
    return out


def summarise(times: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """Per variant: median ms, relative speed vs the first row (median over repetitions of
    the within-repetition ratio) with its range, and whether it is faster, slower or within
    the noise of the first row."""
    wide = times.pivot(index="repeat", columns="variant", values="median ms")[labels]
    rel = wide.rdiv(wide[labels[0]], axis=0)  # t_first / t_variant: >1 means faster
    out = pd.DataFrame(
        {
            "median ms": wide.median(),
            "ms lo": wide.min(),
            "ms hi": wide.max(),
            "relative speed": rel.median(),
            "rel lo": rel.min(),
            "rel hi": rel.max(),
        }
    )
    out["images/s"] = times.attrs.get("batch", 1) * 1000 / out["median ms"]
    out["vs first row"] = [
        "slower" if hi < 1 else "faster" if lo > 1 else "within noise"
        for lo, hi in zip(out["rel lo"], out["rel hi"], strict=True)
    ]
    out.iloc[0, out.columns.get_loc("vs first row")] = "(reference)"
    out.index.name = "variant"
    return out


def run_experiment(
    name: str,
    setting: str = "GPU",
    repeats: int = 5,
    runs: int = 20,
    warmup: int = 5,
    batch: int = 1,
    device: str = "cpu",
    threads: int | None = None,
) -> pd.DataFrame:
    """Measure one experiment with the paper's ``setting`` widths, beside the paper's columns.

    The paper averaged 100 runs; by default we take 5 repetitions of the median of 20 (100
    timed calls too), which gives an interval as well as a number.
    """
    variants = EXPERIMENTS[name](setting)
    times = time_variants(variants, repeats, runs, warmup, batch, device, threads)
    df = summarise(times, [v.label for v in variants]).join(variant_costs(variants))
    for col in PAPER_COLUMN[name].values():
        vals = PAPER[name][col]
        df[f"paper {col}"] = [round(v / vals[0], 2) for v in vals]
    df.attrs.update(
        times.attrs,
        experiment=name,
        setting=setting,
        claim=CLAIMS[name],
        paper_column=PAPER_COLUMN[name][setting],
        confidence=range_confidence(repeats),
    )
    return df


def _fmt(df: pd.DataFrame, i: int) -> str:
    r = df.iloc[i]
    return f"{r['relative speed']:.2f}x [{r['rel lo']:.2f}, {r['rel hi']:.2f}]"


def verdict(df: pd.DataFrame) -> tuple[str, str]:
    """'holds' / 'partly' / 'does not hold' with the measured reason, from the intervals.

    A row counts as slower (faster) than the first only when its whole range of relative
    speeds lies below (above) 1; otherwise the difference is within the noise.
    """
    name, n = df.attrs["experiment"], len(df)
    lo, hi = df["rel lo"].tolist(), df["rel hi"].tolist()
    slower = [i for i in range(1, n) if hi[i] < 1]
    noise = [df.index[i] for i in range(1, n) if lo[i] <= 1 <= hi[i]]
    tail = f"; within the noise: {', '.join(noise)}" if noise else ""
    if name in ("G1", "G2"):
        steady = all(lo[i + 1] <= hi[i] for i in range(1, n - 1))
        why = f"last row {_fmt(df, n - 1)} of the first{tail}"
        if len(slower) == n - 1 and steady:
            return "holds", (
                f"every row slower than the first, no row clearly faster than the one before; {why}"
            )
        return ("partly" if slower else "does not hold"), why
    if name == "G3":
        parts = ", ".join(f"{df.index[i]} {_fmt(df, i)}" for i in range(1, n))
        verdict_ = "holds" if len(slower) == n - 1 else "partly" if slower else "does not hold"
        return verdict_, parts
    gain = f"without ReLU and shortcut {_fmt(df, n - 1)}"
    if lo[-1] > 1:
        return "holds", gain + tail
    if any(lo[i] > 1 for i in range(1, n)):
        return "partly", gain + tail
    return "does not hold", gain + tail


def plot_relative(results: dict[str, pd.DataFrame]):
    """Our relative speeds (with their ranges) beside the paper's GPU and ARM columns, one
    panel per experiment; ``results`` maps a label such as 'G1 GPU' to a run_experiment frame."""
    import matplotlib.pyplot as plt

    names = sorted({df.attrs["experiment"] for df in results.values()})
    fig, axes = plt.subplots(1, len(names), figsize=(4.4 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        shown_paper = False
        for df in results.values():
            if df.attrs["experiment"] != name:
                continue
            x = range(len(df))
            err = [df["relative speed"] - df["rel lo"], df["rel hi"] - df["relative speed"]]
            ax.errorbar(
                x,
                df["relative speed"],
                yerr=err,
                marker="o",
                capsize=3,
                label=f"ours, {df.attrs['setting']} widths",
            )
            if not shown_paper:
                for col in (c for c in df.columns if c.startswith("paper")):
                    ax.plot(x, df[col], ls="--", marker="s", alpha=0.7, label=col)
                shown_paper = True
            ax.set_xticks(list(x), [str(i) for i in df.index], rotation=30, ha="right", fontsize=7)
        ax.axhline(1, color="grey", lw=0.8)
        ax.set(title=f"{name}: speed relative to the first row", ylabel="relative speed")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def summary_table(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One line per measured experiment: verdict, reason and the paper's claim."""
    rows = []
    for label, df in results.items():
        v, why = verdict(df)
        rows.append(
            {
                "experiment": label,
                "verdict": v,
                "measured": why,
                "paper": df.attrs["claim"],
                "confidence of ranges": f"{df.attrs['confidence']:.0%}",
            }
        )
    return pd.DataFrame(rows).set_index("experiment")


# --- chapter 3's presets ---------------------------------------------------------------------

#: what ``preset`` changes in chapter 3 (``"class"``: the parameters cell as written); a value
#: set explicitly with papermill's ``-p`` wins over the preset
PRESETS: dict[str, dict] = {
    "class": {},
    "full": {"settings": ["GPU", "ARM"], "repeats": 5, "runs": 20, "threads": 1, "rounds": 200},
    "quick": {
        "settings": ["ARM"],
        "repeats": 3,
        "runs": 5,
        "threads": 1,
        "warmup": 2,
        "rounds": 30,
    },
}


def preset_values(preset: str, given: set[str], **values) -> dict:
    """``values`` with ``preset``'s entries applied, except the names papermill set (``given``)."""
    if preset not in PRESETS:
        raise ValueError(f"preset {preset!r} is not one of {sorted(PRESETS)}")
    return {k: v if k in given else PRESETS[preset].get(k, v) for k, v in values.items()}


# --- the design task: a stage that ignores the guidelines, and the instruments that grade it --

#: the design task's feature map: ShuffleNet v1's stage-2 width for g = 8, at 28 x 28
DESIGN_INPUT = (384, 28, 28)


class ShuffleV1Unit(nn.Module):
    """ShuffleNet v1's stride-1 unit (Zhang et al., CVPR 2018): a 1x1 group conv down to a
    c/4 bottleneck (BN, ReLU), channel shuffle, a 3x3 depthwise conv (BN), a 1x1 group conv
    back to c (BN), the residual add and a ReLU."""

    def __init__(self, c: int = 384, groups: int = 8):
        super().__init__()
        m = c // 4
        self.reduce = nn.Sequential(
            nn.Conv2d(c, m, 1, groups=groups, bias=False), nn.BatchNorm2d(m), nn.ReLU()
        )
        self.shuffle = nn.ChannelShuffle(groups)
        self.spatial = nn.Sequential(
            nn.Conv2d(m, m, 3, padding=1, groups=m, bias=False),
            nn.BatchNorm2d(m),
            nn.Conv2d(m, c, 1, groups=groups, bias=False),
            nn.BatchNorm2d(c),
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.spatial(self.shuffle(self.reduce(x))))


def design_baseline(units: int = 4, c: int = DESIGN_INPUT[0], groups: int = 8) -> nn.Module:
    """The design task's baseline: ``units`` ShuffleNet v1 units (8 groups: G2; a c/4
    bottleneck: G1; the residual add and ReLUs: G4), in eval mode."""
    return nn.Sequential(*[ShuffleV1Unit(c, groups) for _ in range(units)]).eval()


def receptive_field(model: nn.Module, input_size: tuple[int, ...] = DESIGN_INPUT) -> int:
    """Side of the input square that can change the output at the centre pixel (any channel):
    where the gradient of the centre outputs with respect to a random input is non-zero, the
    larger of its height and width (a stack of n 3x3 convolutions: 2n + 1)."""
    x = torch.randn(1, *input_size, generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)
    was_training = model.training
    y = model.eval()(x)
    model.train(was_training)
    y[..., y.shape[-2] // 2, y.shape[-1] // 2].sum().backward()
    hit = x.grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = hit.any(dim=1).nonzero().flatten(), hit.any(dim=0).nonzero().flatten()
    if len(rows) == 0:
        return 0
    return int(max(rows.max() - rows.min(), cols.max() - cols.min())) + 1


def design_speed(
    candidate: nn.Module,
    baseline: nn.Module,
    input_size: tuple[int, ...] = DESIGN_INPUT,
    repeats: int = 7,
    runs: int = 20,
    warmup: int = 5,
    threads: int | None = 1,
) -> list[float]:
    """Speed of ``candidate`` relative to ``baseline`` (>1: faster), one ratio per repetition,
    the two timed in turns (:func:`time_in_turns`)."""
    models = {
        "baseline": (baseline.eval(), input_size),
        "candidate": (candidate.eval(), input_size),
    }
    turns, _ = time_in_turns(models, repeats, runs, warmup, 1, threads)
    wide = turns.pivot(index="repeat", columns="model", values="median ms")
    return (wide["baseline"] / wide["candidate"]).tolist()
