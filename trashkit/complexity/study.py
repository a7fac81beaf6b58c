"""MACs versus measured latency over many models: where the two disagree is the lesson.

It also measures the machine's two roofs (:func:`machine_roofline`) and places every layer
of a model under them (:func:`roofline_table`): the roofline model says which layers the
arithmetic units limit and which the memory traffic limits.

Two traps this module is built to avoid, both explained in chapter 2:

* **Pooling input sizes inflates the correlation.** Every model gets slower *and* costs more
  MACs as the input grows, so a scatter over several sizes at once shows a strong trend even
  when MACs rank the models badly at any one size. The honest question ("at the size I will
  deploy, does the model with fewer MACs run faster?") is answered by the rank correlation
  **per input size**: :func:`correlation_by_size`.
* **One timing is one sample of a noisy machine.** The study times every model ``repeats``
  times, in turn (drift on a shared machine then hits every model alike), and reports the
  median of the repetitions' medians with their range.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import pandas as pd
import torch
from torch import nn

from .latency import measure_latency, time_in_turns
from .official import official_macs


def zoo() -> dict[str, Callable[[], nn.Module]]:
    """torchvision's small models plus width variants (6 classes, random weights)."""
    from torchvision import models as tvm

    return {
        "mobilenet_v3_small": lambda: tvm.mobilenet_v3_small(num_classes=6),
        "mobilenet_v3_small w0.5": lambda: tvm.mobilenet_v3_small(num_classes=6, width_mult=0.5),
        "mobilenet_v3_large": lambda: tvm.mobilenet_v3_large(num_classes=6),
        "mobilenet_v2": lambda: tvm.mobilenet_v2(num_classes=6),
        "mobilenet_v2 w0.5": lambda: tvm.mobilenet_v2(num_classes=6, width_mult=0.5),
        "shufflenet_v2_x0_5": lambda: tvm.shufflenet_v2_x0_5(num_classes=6),
        "shufflenet_v2_x1_0": lambda: tvm.shufflenet_v2_x1_0(num_classes=6),
        "mnasnet0_5": lambda: tvm.mnasnet0_5(num_classes=6),
        "squeezenet1_1": lambda: tvm.squeezenet1_1(num_classes=6),
        "efficientnet_b0": lambda: tvm.efficientnet_b0(num_classes=6),
        "resnet18": lambda: tvm.resnet18(num_classes=6),
    }


def _time_size(
    models: dict[str, nn.Module],
    size: int,
    repeats: int,
    runs: int,
    warmup: int,
    threads: int | None,
    device: str,
) -> tuple[dict[str, list[float]], object]:
    """Median ms of ``runs`` timed calls, ``repeats`` times per model, models taking turns."""
    turns, lat = time_in_turns(
        {name: (m, (3, size, size)) for name, m in models.items()},
        repeats,
        runs,
        warmup,
        threads=threads,
        device=device,
    )
    return {name: list(turns[turns.model == name]["median ms"]) for name in models}, lat


def latency_study(
    names: list[str] | None = None,
    sizes: tuple[int, ...] = (112, 156, 224),
    runs: int = 30,
    warmup: int = 5,
    repeats: int = 3,
    threads: int | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> pd.DataFrame:
    """Official MACs, parameters and batch-1 latency of every (model, input size) pair.

    ``latency ms`` is the median over ``repeats`` repetitions of the median of ``runs`` timed
    calls; ``lo ms`` / ``hi ms`` are the smallest and largest repetition. ``ms per 100M
    MACs`` is the price of a MAC for that model, and ``vs size median`` divides it by the
    median price at the same size: 2.0 means the model runs twice as slowly as its MACs
    suggest, compared with the typical model of the zoo at that size.
    """
    from tqdm.auto import tqdm

    builders = zoo()
    names = names or list(builders)
    rows = []
    lat = None
    for size in tqdm(sizes, desc="latency study", disable=not progress):
        models = {n: builders[n]().eval() for n in names}
        medians, lat = _time_size(models, size, repeats, runs, warmup, threads, device)
        for name, model in models.items():
            rows.append(
                {
                    "model": name,
                    "size": size,
                    "MACs (M)": official_macs(model, size) / 1e6,
                    "params (M)": sum(p.numel() for p in model.parameters()) / 1e6,
                    "latency ms": statistics.median(medians[name]),
                    "lo ms": min(medians[name]),
                    "hi ms": max(medians[name]),
                }
            )
    df = pd.DataFrame(rows)
    df["ms per 100M MACs"] = 100 * df["latency ms"] / df["MACs (M)"]
    df["vs size median"] = df["ms per 100M MACs"] / df.groupby("size")[
        "ms per 100M MACs"
    ].transform("median")
    df.attrs.update(
        device=lat.device, threads=lat.threads, torch=lat.torch, runs=runs, repeats=repeats
    )
    return df


def correlation_by_size(df: pd.DataFrame) -> pd.DataFrame:
    """Spearman's rank correlation of MACs and latency at each input size, then pooled.

    The pooled row mixes sizes, so it measures mostly "bigger inputs are slower" and comes out
    higher than any single size: report the per-size rows, quote the pooled one only as the
    trap it is (there is no pooled row for a single size).
    """
    from scipy.stats import spearmanr

    rows = []
    for size, g in df.groupby("size"):
        rho, p = spearmanr(g["MACs (M)"], g["latency ms"])
        rows.append(
            {"sizes": str(size), "models": len(g), "spearman rho": float(rho), "p value": float(p)}
        )
    if df["size"].nunique() > 1:
        rho, p = spearmanr(df["MACs (M)"], df["latency ms"])
        rows.append(
            {
                "sizes": "pooled " + "+".join(map(str, sorted(df["size"].unique()))),
                "models": len(df),
                "spearman rho": float(rho),
                "p value": float(p),
            }
        )
    return pd.DataFrame(rows).set_index("sizes")


def slower_than_macs_suggest(df: pd.DataFrame, size: int, top: int = 3) -> pd.DataFrame:
    """The ``top`` models whose MACs are the most expensive at ``size``, with their numbers."""
    g = df[df["size"] == size].sort_values("vs size median", ascending=False)
    return g.head(top)[
        ["model", "MACs (M)", "latency ms", "lo ms", "hi ms", "ms per 100M MACs", "vs size median"]
    ]


def plot_study(df: pd.DataFrame):
    """Log-log scatter of MACs against latency, one panel per input size (rho in the title)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    corr = correlation_by_size(df)
    sizes = sorted(df["size"].unique())
    fig, axes = plt.subplots(
        1, len(sizes), figsize=(4.2 * len(sizes) + 2.5, 4.2), squeeze=False, sharey=True
    )
    for ax, size in zip(axes[0], sizes, strict=True):
        g = df[df["size"] == size]
        sns.scatterplot(
            g, x="MACs (M)", y="latency ms", hue="model", s=60, ax=ax, legend=ax is axes[0][-1]
        )
        ax.vlines(g["MACs (M)"], g["lo ms"], g["hi ms"], color="grey", lw=1)
        ax.set(
            xscale="log",
            yscale="log",
            title=f"{size}px: Spearman rho = {corr.loc[str(size), 'spearman rho']:.2f}",
        )
    axes[0][-1].legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.suptitle(
        f"MACs vs. batch-1 latency ({df.attrs['device']}, {df.attrs['threads']} "
        f"threads, median of {df.attrs['repeats']} x {df.attrs['runs']} runs)"
    )
    fig.tight_layout()
    return fig


# --- the roofline: this machine's two limits, and where each layer sits ------------------------


def _copy_bandwidth(megabytes: float, runs: int, threads: int | None) -> float:
    """Bytes per second of copying a ``megabytes`` buffer (each byte read once, written once)."""
    n = max(1, int(megabytes * 2**20) // 4)
    src, dst = torch.randn(n), torch.empty(n)
    lat = measure_latency(dst.copy_, src, warmup=2, runs=runs, threads=threads)
    return 2 * 4 * n / (lat.median_ms / 1e3)


def machine_roofline(
    threads: int | None = 1,
    size: int = 512,
    megabytes: float = 64,
    cache_megabytes: float = 1,
    runs: int = 10,
) -> dict:
    """Measure the roofs of this CPU with trashkit's timer (median of ``runs`` calls): the
    peak MAC rate of a ``size`` x ``size`` matrix product (size^3 MACs, the best case for the
    arithmetic units), the memory bandwidth of copying a ``megabytes`` buffer (too large for
    the private caches) and the bandwidth of a ``cache_megabytes`` buffer (one that stays in a
    core's cache, as a small model's activations do). The ridge point is peak / bandwidth: a
    layer doing fewer MACs per byte moved is memory-bound."""
    a = torch.randn(size, size)
    mm = measure_latency(lambda x: torch.mm(x, x), a, warmup=2, runs=runs, threads=threads)
    peak = size**3 / (mm.median_ms / 1e3)
    bandwidth = _copy_bandwidth(megabytes, runs, threads)
    return {
        "peak MACs/s": peak,
        "bandwidth bytes/s": bandwidth,
        "cache bandwidth bytes/s": _copy_bandwidth(cache_megabytes, runs, threads),
        "ridge MACs/byte": peak / bandwidth,
        "threads": mm.threads,
        "torch": mm.torch,
    }


def roofline_table(
    layers: pd.DataFrame, peak: float, bandwidth: float, bytes_per_element: int = 4
) -> pd.DataFrame:
    """Every layer of :func:`~trashkit.complexity.count_layers`'s table under the roofline:
    its arithmetic intensity (MACs per byte moved), which roof limits it, and the shortest
    time the roofline allows, max(MACs / peak, bytes / bandwidth). ``attrs`` holds the sums:
    the time if only MACs counted, and the roofline's time."""
    t = layers[(layers.macs > 0) | (layers.mem > 0)][["name", "category", "macs", "mem"]].copy()
    t["bytes"] = t.mem * bytes_per_element
    t["MACs/byte"] = t.macs / t.bytes.clip(lower=1)
    t["compute us"] = 1e6 * t.macs / peak
    t["memory us"] = 1e6 * t.bytes / bandwidth
    t["roofline us"] = t[["compute us", "memory us"]].max(axis=1)
    t["bound"] = (t["MACs/byte"] < peak / bandwidth).map({True: "memory", False: "compute"})
    t.attrs.update(
        {
            "MACs-only us": float(t["compute us"].sum()),
            "roofline us": float(t["roofline us"].sum()),
            "memory-bound share of roofline time": float(
                t.loc[t.bound == "memory", "roofline us"].sum() / t["roofline us"].sum()
            ),
        }
    )
    return t.drop(columns="mem")


def plot_roofline(table: pd.DataFrame, peak: float, bandwidth: float, title: str = ""):
    """The two roofs (log-log) and every layer of ``table`` at its intensity and the MAC rate
    the roofline allows it, coloured by category."""
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns

    x = np.logspace(-2, 3, 200)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.plot(x, np.minimum(peak, x * bandwidth) / 1e9, color="black", lw=2, label="roofline")
    ax.axvline(peak / bandwidth, color="grey", ls=":", label="ridge point")
    pts = table[table.macs > 0].assign(
        **{"GMAC/s allowed": lambda d: np.minimum(peak, d["MACs/byte"] * bandwidth) / 1e9}
    )
    sns.scatterplot(pts, x="MACs/byte", y="GMAC/s allowed", hue="category", s=30, ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (MACs per byte moved)")
    ax.set(ylabel="attainable GMAC/s", title=title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
