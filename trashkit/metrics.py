"""Prediction and macro-F1: the one path every chapter uses to turn a model into a number.

Training (validation), scoring (chapter 5) and compression (chapter 7) all predict through
:func:`predict` and score through :func:`macro_f1` / :func:`f1_report`, so a number in one
chapter means the same as in another.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import classification_report, confusion_matrix, f1_score
from torch import nn

from .data import normalize_batch


@dataclass
class Predictions:
    """Predicted and true class indices (true is -1 where unknown) and the mean
    cross-entropy over the labelled images (NaN when there are none)."""

    pred: np.ndarray
    true: np.ndarray
    loss: float


@torch.no_grad()
def predict(
    model: nn.Module | Callable,
    batches: Iterable,
    device: str | torch.device = "cpu",
    channels_last: bool = False,
) -> Predictions:
    """One forward pass per batch of uint8 images ``(x, y)``; ``y`` may be None or -1.

    ``model`` is any callable from a normalised float batch to logits (an ``nn.Module`` is
    put in eval mode; an ONNX Runtime session works too).
    """
    if isinstance(model, nn.Module):
        model.eval()
    preds, trues, loss, n = [], [], 0.0, 0
    for x, y in batches:
        x = normalize_batch(x.to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = model(x).float()
        y = torch.full((len(x),), -1) if y is None else torch.as_tensor(y)
        known = y >= 0
        if known.any():
            loss += F.cross_entropy(
                logits[known.to(logits.device)], y[known].to(logits.device), reduction="sum"
            ).item()
            n += int(known.sum())
        preds.append(logits.argmax(1).cpu().numpy())
        trues.append(y.cpu().numpy())
    if not preds:
        return Predictions(np.zeros(0, np.int64), np.zeros(0, np.int64), float("nan"))
    return Predictions(
        np.concatenate(preds), np.concatenate(trues), loss / n if n else float("nan")
    )


def covered(y_true: np.ndarray, n_classes: int) -> list[int]:
    """The classes a macro-F1 over ``y_true`` averages: those with at least one true image.

    Why: a class with no evaluation image has no recall; counting it as 0 would pull the
    average down for a reason that has nothing to do with the model.
    """
    present = set(np.asarray(y_true).tolist())
    return [k for k in range(n_classes) if k in present]


def macro_f1(y_true, y_pred, n_classes: int) -> float:
    """Unweighted mean of the per-class F1 over the classes present in ``y_true``."""
    labels = covered(y_true, n_classes)
    if not labels:
        return 0.0
    return float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def f1_report(y_true, y_pred, classes: list[str]) -> dict:
    """Macro-F1, accuracy, per-class precision / recall / F1 / support, the confusion matrix
    and which classes the macro average covers."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(len(classes)))
    per_class = classification_report(
        y_true, y_pred, labels=labels, target_names=classes, zero_division=0, output_dict=True
    )
    return {
        "macro_f1": macro_f1(y_true, y_pred, len(classes)),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "covered_classes": [classes[k] for k in covered(y_true, len(classes))],
        "per_class": {c: per_class[c] for c in classes},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "n": int(len(y_true)),
    }
