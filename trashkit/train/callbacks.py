"""The loop's one extension point: callbacks (as in Keras or Lightning, but four hooks only).

A callback overrides what it needs; the loop calls, in this order:

* ``network(cfg, n_classes)`` once, before anything is built: return a prebuilt network (a
  pruned or decomposed one) to train instead of ``cfg.model``, or None;
* ``on_train_start(run)`` once, when the run is ready (resumed runs included);
* ``loss(run, x, logits, target, loss)`` every batch: return the loss to minimise
  (distillation adds the teacher's term here);
* ``on_epoch_end(run, record)`` after each epoch's checkpoint: read the epoch's record; set
  ``run.stop`` to a reason to end the run early (it stays resumable).

Distillation, fine-tuning a prebuilt network, stopping early and live curves below are all
written this way; the Optuna trial pruning of chapter 6 too (``trashkit.search``).
"""

from __future__ import annotations

import torch
from torch import nn

from .loop import Run
from .losses import kd_loss


class Callback:
    """Base class: every hook does nothing."""

    def network(self, cfg, n_classes: int) -> nn.Module | None:
        return None

    def on_train_start(self, run: Run) -> None:
        pass

    def loss(
        self,
        run: Run,
        x: torch.Tensor,
        logits: torch.Tensor,
        target: torch.Tensor,
        loss: torch.Tensor,
    ) -> torch.Tensor:
        return loss

    def on_epoch_end(self, run: Run, record: dict) -> None:
        pass


class Distill(Callback):
    """Knowledge distillation (Hinton et al., 2015): the student also matches the teacher's
    softened outputs, ``alpha * T^2 * KL + (1 - alpha) * hard loss`` (:func:`kd_loss`)."""

    def __init__(self, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.7):
        self.teacher, self.temperature, self.alpha = teacher, temperature, alpha

    def on_train_start(self, run: Run) -> None:
        self.teacher = self.teacher.to(run.device).eval()

    def loss(self, run, x, logits, target, loss):
        with torch.no_grad():
            soft = self.teacher(x)
        return kd_loss(logits, soft, loss, self.temperature, self.alpha)


class StartFrom(Callback):
    """Train ``model`` (e.g. pruned or decomposed, weights included) instead of building
    ``cfg.model``; its layer shapes are stored in the checkpoints as plain data."""

    def __init__(self, model: nn.Module):
        self.model = model

    def network(self, cfg, n_classes: int) -> nn.Module:
        return self.model


class StopAfter(Callback):
    """End the run after ``epochs`` more epochs, as an interruption would: the folder holds
    ``last.pt`` and resumes exactly (used by tests and demos of resuming)."""

    def __init__(self, epochs: int):
        self.epochs, self.done = epochs, 0

    def on_epoch_end(self, run, record):
        self.done += 1
        if self.done >= self.epochs and record["epoch"] < run.cfg.epochs:
            run.stop = f"stopped after epoch {record['epoch']} (StopAfter({self.epochs}))"


class LiveCurves(Callback):
    """Redraw the loss and macro-F1 curves in the notebook after every epoch.

    In JupyterLab the figure updates in place while training runs; in a headless papermill
    run the saved notebook keeps the last drawing, so it reads as a static figure.
    """

    def __init__(self):
        self.handle = None

    def on_epoch_end(self, run, record):
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None or run.rank != 0:
            return
        import matplotlib.pyplot as plt
        import pandas as pd

        from ..plots import plot_history

        fig = plot_history(pd.DataFrame(run.history))
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)
