"""Figures several chapters share: training curves and the confusion matrix (a leaf module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def plot_history(history: pd.DataFrame, path: Path | str | None = None):
    """Loss (train and validation) and validation macro-F1 per epoch, side by side."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    a.plot(history.epoch, history.train_loss, label="train")
    a.plot(history.epoch, history.val_loss, label="val")
    a.set(xlabel="epoch", ylabel="loss", title="loss")
    a.legend()
    b.plot(history.epoch, history.val_macro_f1, color="tab:green")
    b.set(xlabel="epoch", ylabel="macro-F1", title="validation macro-F1", ylim=(0, 1))
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig


def plot_confusion(
    cm: np.ndarray,
    classes: list[str],
    path: Path | str | None = None,
    title: str = "confusion matrix (validation)",
):
    """Counts of (true, predicted) pairs; the diagonal is what the model gets right."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sns.heatmap(
        np.asarray(cm),
        annot=True,
        fmt="d",
        cmap="Greens",
        xticklabels=classes,
        yticklabels=classes,
        ax=ax,
        cbar=False,
    )
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig
