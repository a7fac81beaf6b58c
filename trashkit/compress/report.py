"""One table for every candidate: macro-F1, MACs, params, size, latency and both scores."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..complexity import measure_latency, official_macs
from ..metrics import macro_f1, predict
from ..scoring import COMPETITION_TEST_IMAGES, score_macs, score_time, timed_predictions
from .onnx_rt import OrtModel


@dataclass
class Candidate:
    """A model to compare: an ``nn.Module`` or an ONNX Runtime session, plus a note."""

    name: str
    model: nn.Module | OrtModel
    note: str = ""
    extra: dict = field(default_factory=dict)


def _size_bytes(c: Candidate) -> int:
    if isinstance(c.model, OrtModel):
        return c.model.path.stat().st_size
    buf = io.BytesIO()
    torch.save(c.model.state_dict(), buf)
    return buf.getbuffer().nbytes


def eval_f1(
    model: nn.Module | OrtModel,
    images: torch.Tensor,
    labels: np.ndarray,
    n_classes: int,
    batch: int = 64,
) -> float:
    """Macro-F1 on uint8 evaluation images, in batches (fast: no timing is wanted here)."""
    if isinstance(model, nn.Module):
        model = model.cpu().eval()
    batches = ((images[i : i + batch], None) for i in range(0, len(images), batch))
    return macro_f1(labels, predict(model, batches).pred, n_classes)


def _one_by_one(images: torch.Tensor):
    """Batch-1 batches: a robot sees one piece of trash at a time."""
    for i in range(len(images)):
        yield images[i : i + 1], None


def evaluate_candidate(
    c: Candidate,
    images: torch.Tensor,
    labels: np.ndarray,
    n_classes: int,
    image_size: int,
    latency_runs: int = 50,
) -> dict:
    """Metrics of one candidate on uint8 evaluation images (``B x 3 x S x S``).

    Predictions run one image at a time through the same :func:`trashkit.metrics.predict`
    as every chapter; their total is the candidate's "submit time" over this set (the time
    score scales it to the competition's 5,217 test images). MACs are
    reported only where the official counter can see the model; for ONNX / int8 graphs the
    row says so instead of a wrong number.
    """
    model = c.model.cpu().eval() if isinstance(c.model, nn.Module) else c.model
    preds, seconds = timed_predictions(model, _one_by_one(images))
    f1 = macro_f1(labels, preds, n_classes)
    lat = measure_latency(model, (3, image_size, image_size), runs=latency_runs)
    if isinstance(model, OrtModel):
        macs, params = None, None
        macs_note = "not countable: ptflops sees PyTorch modules, not an ONNX graph"
    else:
        macs, params = official_macs(model, image_size), sum(p.numel() for p in model.parameters())
        macs_note = ""
    return {
        "variant": c.name,
        "macro_f1": f1,
        "MACs": macs,
        "params": params,
        "size_kB": _size_bytes(c) / 1024,
        "latency_ms": lat.median_ms,
        "latency_p90_ms": lat.p90_ms,
        "eval_seconds_b1": seconds,
        "score_macs": score_macs(f1, macs) if macs is not None else None,
        "score_time": score_time(f1, seconds / len(images) * COMPETITION_TEST_IMAGES),
        "note": "; ".join(n for n in (c.note, macs_note) if n),
        "predictions": preds.tolist(),
    }


def variants_table(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "predictions"} for r in rows])
    base = df.latency_ms.iloc[0]
    df["speed-up vs first"] = base / df.latency_ms
    return df.set_index("variant")


def plot_variants(df: pd.DataFrame, path: Path | None = None):
    """Macro-F1 against batch-1 latency, one point per candidate."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.scatter(df.latency_ms, df.macro_f1, color="tab:green")
    for name, r in df.iterrows():
        ax.annotate(
            name, (r.latency_ms, r.macro_f1), fontsize=8, xytext=(3, 3), textcoords="offset points"
        )
    ax.set(xlabel="batch-1 CPU latency (ms)", ylabel="macro-F1", title="compression variants")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig


def plot_sensitivity(scan: pd.DataFrame, path: Path | None = None):
    """Macro-F1 against the fraction of MACs kept: straight after pruning and fine-tuned."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(
        scan["kept MACs"],
        scan["F1 pruned"],
        "o--",
        color="tab:gray",
        label="pruned, not fine-tuned",
    )
    if "F1 fine-tuned" in scan:
        ax.plot(
            scan["kept MACs"],
            scan["F1 fine-tuned"],
            "o-",
            color="tab:red",
            label="pruned + fine-tuned",
        )
    ax.set(
        xlabel="fraction of the original MACs kept",
        ylabel="macro-F1",
        title="pruning sensitivity",
        xlim=(0, 1.05),
    )
    ax.invert_xaxis()
    ax.legend()
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig
