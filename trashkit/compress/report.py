"""One table for every variant: macro-F1, MACs, params, size, latency and both scores."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..complexity import measure_latency, official_macs
from ..data import normalize_batch
from ..scoring import score_macs, score_time
from ..train import macro_f1
from .onnx_rt import OrtModel


@dataclass
class Variant:
    """A model to compare: an ``nn.Module`` or an ONNX Runtime session, plus a note."""

    name: str
    model: nn.Module | OrtModel
    note: str = ""
    extra: dict = field(default_factory=dict)


def _size_bytes(v: Variant) -> int:
    if isinstance(v.model, OrtModel):
        return v.model.path.stat().st_size
    buf = io.BytesIO()
    torch.save(v.model.state_dict(), buf)
    return buf.getbuffer().nbytes


@torch.no_grad()
def evaluate_variant(v: Variant, images: torch.Tensor, labels: np.ndarray, n_classes: int,
                     image_size: int, latency_runs: int = 50) -> dict:
    """Metrics of one variant on uint8 evaluation images (``B x 3 x S x S``).

    Predictions run one image at a time (batch 1, as a robot sees them): their total is the
    variant's "submit time" over this set. MACs are reported only where the official counter
    can see the model; for ONNX / int8 graphs the row says so instead of a wrong number.
    """
    model = v.model
    if isinstance(model, nn.Module):
        model = model.cpu().eval()
    preds = []
    t0 = time.perf_counter()
    for i in range(len(images)):
        preds.append(int(model(normalize_batch(images[i:i + 1])).argmax(1)))
    seconds = time.perf_counter() - t0
    f1 = macro_f1(labels, np.array(preds), n_classes)
    if isinstance(model, OrtModel):
        lat = model.latency(image_size, runs=latency_runs)
        macs, params = None, None
        macs_note = "not countable: ptflops sees PyTorch modules, not an ONNX graph"
    else:
        l = measure_latency(model, (3, image_size, image_size), runs=latency_runs)
        lat = {"median_ms": l.median_ms, "p90_ms": l.p90_ms}
        macs, params = official_macs(model, image_size), sum(p.numel() for p in model.parameters())
        macs_note = ""
    return {"variant": v.name, "macro_f1": f1, "MACs": macs, "params": params,
            "size_kB": _size_bytes(v) / 1024, "latency_ms": lat["median_ms"],
            "latency_p90_ms": lat["p90_ms"], "eval_seconds_b1": seconds,
            "score_macs": score_macs(f1, macs) if macs is not None else None,
            "score_time": score_time(f1, seconds),
            "note": "; ".join(n for n in (v.note, macs_note) if n),
            "predictions": preds}


def variants_table(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "predictions"} for r in rows])
    base = df.latency_ms.iloc[0]
    df["speed-up vs first"] = base / df.latency_ms
    return df.set_index("variant")


def plot_variants(df: pd.DataFrame, path: Path | None = None):
    """Macro-F1 against batch-1 latency, one point per variant."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.scatter(df.latency_ms, df.macro_f1, color="tab:green")
    for name, r in df.iterrows():
        ax.annotate(name, (r.latency_ms, r.macro_f1), fontsize=8, xytext=(3, 3),
                    textcoords="offset points")
    ax.set(xlabel="batch-1 CPU latency (ms)", ylabel="macro-F1", title="compression variants")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig
