"""MACs versus measured latency over many models: where the two disagree is the lesson."""

from __future__ import annotations

from typing import Callable

import pandas as pd
from torch import nn

from .latency import measure_latency
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


def latency_study(names: list[str] | None = None, sizes: tuple[int, ...] = (112, 156, 224),
                  runs: int = 30, warmup: int = 5, threads: int | None = None,
                  device: str = "cpu", progress: bool = True) -> pd.DataFrame:
    """Official MACs, parameters and batch-1 latency of every (model, input size) pair."""
    from scipy.stats import spearmanr
    from tqdm.auto import tqdm

    builders = zoo()
    names = names or list(builders)
    rows = []
    jobs = [(n, s) for n in names for s in sizes]
    for name, size in tqdm(jobs, desc="latency study", disable=not progress):
        model = builders[name]().eval()
        lat = measure_latency(model, (3, size, size), runs=runs, warmup=warmup,
                              threads=threads, device=device)
        rows.append({"model": name, "size": size, "MACs (M)": official_macs(model, size) / 1e6,
                     "params (M)": sum(p.numel() for p in model.parameters()) / 1e6,
                     "latency ms": lat.median_ms, "p90 ms": lat.p90_ms})
    df = pd.DataFrame(rows)
    rho, p = spearmanr(df["MACs (M)"], df["latency ms"])
    df["ms per 100M MACs"] = 100 * df["latency ms"] / df["MACs (M)"]
    df.attrs.update(spearman=float(rho), p_value=float(p), device=lat.device,
                    threads=lat.threads, torch=lat.torch, runs=runs)
    return df


def plot_study(df: pd.DataFrame):
    """Log-log scatter of MACs against latency, one colour per model family."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, ax = plt.subplots(figsize=(8, 5))
    sns.scatterplot(df, x="MACs (M)", y="latency ms", hue="model", style="size", s=70, ax=ax)
    ax.set(xscale="log", yscale="log",
           title=f"MACs vs. batch-1 latency ({df.attrs['device']}, {df.attrs['threads']} "
                 f"threads): Spearman rho = {df.attrs['spearman']:.2f}")
    ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig
