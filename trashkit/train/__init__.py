"""Training: the recipe, split by concept.

* :mod:`.config`    -- ``TrainConfig``: every parameter of a run, typed and checked;
* :mod:`.losses`    -- cross-entropy variants for imbalance, focal loss, distillation;
* :mod:`.callbacks` -- the loop's one extension point (distillation, prebuilt networks,
  stopping early, live curves);
* :mod:`.setup`     -- folder rules, data, network, optimiser, batches, resuming;
* :mod:`.loop`      -- the loop itself: ``fit_epoch``, ``validate``, ``end_epoch``;
* :mod:`.report`    -- ``write_report``: ``metrics.json`` and the plots of a finished run;
* :mod:`.distributed` -- torchrun / DistributedDataParallel.
"""

from __future__ import annotations

import json
from pathlib import Path

from .callbacks import Callback, Distill, LiveCurves, StartFrom, StopAfter
from .config import TrainConfig, run_split
from .loop import Run, fit_epoch, train_epochs, validate
from .losses import FocalLoss, class_weights, kd_loss, make_loss
from .report import write_report
from .setup import start


def train(
    cfg: TrainConfig | dict | None,
    output_dir: str | Path | None = None,
    resume: bool = False,
    callbacks: list[Callback] = (),
    progress: bool = True,
) -> dict:
    """Train (or resume) one run; returns the metrics written to ``metrics.json``.

    ``output_dir`` None -> a fresh ``outputs/<run-id>-train``; a new run needs an empty or
    new folder. ``resume=True`` continues the run in ``output_dir`` with its saved config
    (``cfg`` None, or only the parameters you give explicitly, which must agree with it).
    ``callbacks`` extend the loop (:mod:`trashkit.train.callbacks`). A run a callback stops
    early returns ``{"stopped": reason, ...}`` and stays resumable.
    """
    run = start(cfg, output_dir, resume, list(callbacks), progress)
    try:
        train_epochs(run)
        if run.stop:
            return {"stopped": run.stop, "epoch": run.epoch, "run_dir": str(run.out)}
        return write_report(run)
    finally:
        if run.lock is not None:
            run.lock.release()


def train_once(
    cfg: TrainConfig | dict,
    output_dir: str | Path,
    callbacks: list[Callback] = (),
    progress: bool = False,
) -> dict:
    """The run ``cfg`` in ``output_dir``, trained exactly once however often this is called:
    a finished run's ``metrics.json`` is read back, a half-finished one resumes from its
    ``last.pt`` (its saved config must agree with ``cfg``), a new folder starts the run.
    Why: a long benchmark or a chapter re-run after an interruption must neither repeat
    finished work nor start over."""
    folder = Path(output_dir)
    if (folder / "metrics.json").is_file():
        return json.loads((folder / "metrics.json").read_text())
    resume = (folder / "config.json").is_file()
    return train(cfg, folder, resume=resume, callbacks=callbacks, progress=progress)


__all__ = [
    "train",
    "train_once",
    "TrainConfig",
    "run_split",
    "Callback",
    "Distill",
    "StartFrom",
    "StopAfter",
    "LiveCurves",
    "Run",
    "fit_epoch",
    "validate",
    "FocalLoss",
    "kd_loss",
    "class_weights",
    "make_loss",
    "write_report",
    "start",
]
