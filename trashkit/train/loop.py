"""The training loop, readable in one sitting (after nanoGPT's train.py and d2l's ``fit``).

::

    run = start(cfg, output_dir, resume, callbacks)     # folder, data, model, optimiser
    for epoch in range(run.epoch, cfg.epochs):
        record = fit_epoch(run, epoch)                  # one pass over the training images
        record |= validate(run)                         # macro-F1 on the validation images
        end_epoch(run, epoch, record)                   # checkpoints, history, callbacks
    return write_report(run)                            # best.pt -> metrics.json, plots

Exact resumption comes for free from one rule: epoch ``e`` draws its batches, augmentation,
mixup and dropout from seeds made of ``(seed, e)`` only, so a run resumed from ``last.pt``
replays the same epochs as one that never stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..checkpoint import Checkpoint, save_checkpoint
from ..data import DataSplit, MixBatch, normalize_batch
from ..metrics import macro_f1, predict
from ..models.pretrained import freeze_blocks
from ..runs import write_csv
from .distributed import Dist
from .config import TrainConfig


@dataclass
class Run:
    """A run in progress: everything the loop and the callbacks read and change."""

    cfg: TrainConfig
    out: Path
    data: DataSplit
    device: torch.device
    net: nn.Module  # the network being trained (unwrapped)
    model: nn.Module  # what the loop calls: ``net``, or ``net`` inside DDP
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.OneCycleLR
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    batches: object  # training batches (``set_epoch`` each epoch)
    val_batches: object
    mix: MixBatch
    dist: Dist = field(default_factory=Dist)
    amp_dtype: torch.dtype | None = None
    ema: torch.optim.swa_utils.AveragedModel | None = None
    callbacks: list = field(default_factory=list)  # trashkit.train.callbacks.Callback
    architecture: list | None = None  # layer shapes when ``net`` is not ``cfg.model``'s
    history: list[dict] = field(default_factory=list)
    epoch: int = 0  # the next epoch to train (0-based)
    best_f1: float = -1.0
    wall: float = 0.0  # training seconds, summed over interruptions
    stop: str | None = None  # set by a callback to end the run early
    progress: bool = True
    notes: list[str] = field(default_factory=list)
    lock: object = None  # the folder's RunLock (rank 0), released when the run ends

    @property
    def rank(self) -> int:
        return self.dist.rank

    @property
    def eval_net(self) -> nn.Module:
        """The weights that are validated and saved: the moving average when EMA is on."""
        return self.ema.module if self.ema is not None else self.net


def fit_epoch(run: Run, epoch: int) -> dict:
    """One pass over the training images; returns the epoch's mean training loss."""
    cfg = run.cfg
    torch.manual_seed(cfg.seed * 1000 + epoch)  # mixup & dropout draws depend on the epoch only
    run.batches.set_epoch(epoch)
    run.model.train()
    freeze_blocks(run.net, cfg.freeze)  # fixed blocks keep their batch-norm statistics
    total, seen = torch.zeros((), device=run.device), 0
    for x, y in tqdm(
        run.batches,
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        leave=False,
        disable=not (run.progress and run.rank == 0),
    ):
        x, y = to_device(run, x, y)
        x, target = run.mix(x, y)  # mixup / CutMix: soft targets (or unchanged)
        with torch.autocast(
            run.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None
        ):
            logits = run.model(x)
            loss = run.criterion(logits, target)
            for cb in run.callbacks:  # e.g. distillation adds the teacher's term
                loss = cb.loss(run, x, logits, target, loss)
        step(run, loss)
        total += loss.detach().float() * len(y)
        seen += len(y)
    return {
        "epoch": epoch + 1,
        "train_loss": float(total) / max(1, seen),
        "lr": run.optimizer.param_groups[0]["lr"],
    }


def to_device(run: Run, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 batch -> normalised float on the training device (channels-last if asked)."""
    x = normalize_batch(x.to(run.device, non_blocking=True))
    if run.cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(run.device, non_blocking=True)


def step(run: Run, loss: torch.Tensor) -> None:
    """Backward pass, optimiser and scheduler step, moving average."""
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()  # the scaler is a no-op unless fp16
    run.scaler.step(run.optimizer)
    run.scaler.update()
    if run.scheduler.last_epoch < run.scheduler.total_steps - 1:  # OneCycle ends exactly here
        run.scheduler.step()
    if run.ema is not None:
        run.ema.update_parameters(run.net)


def validate(run: Run) -> dict:
    """Macro-F1, accuracy and loss of the current (or averaged) weights on validation."""
    p = predict(run.eval_net, run.val_batches, run.device, run.cfg.channels_last)
    return {
        "val_loss": p.loss,
        "val_macro_f1": macro_f1(p.true, p.pred, len(run.data.classes)),
        "val_acc": float((p.pred == p.true).mean()) if len(p.true) else 0.0,
    }


def checkpoint_of(run: Run, epoch: int, f1: float, with_state: bool = False) -> Checkpoint:
    """The checkpoint record of the current weights; ``with_state`` adds what resumes."""
    ckpt = Checkpoint(
        weights=run.eval_net.state_dict(),
        classes=run.data.classes,
        config=run.cfg.to_dict(),
        image_size=run.cfg.image_size,
        epoch=epoch,
        val_macro_f1=f1,
        architecture=run.architecture,
    )
    if with_state:
        ckpt.state = {
            "net": run.net.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(),
            "ema": run.ema.state_dict() if run.ema is not None else None,
            "best_f1": run.best_f1,
            "history": run.history,
            "wall": run.wall,
        }
    return ckpt


def end_epoch(run: Run, epoch: int, record: dict) -> None:
    """Keep the epoch: history, ``best.pt`` (by validation macro-F1), ``last.pt``, callbacks."""
    record = {
        k: record[k] for k in ("epoch", "train_loss", "val_loss", "val_macro_f1", "val_acc", "lr")
    } | {"seconds": run.wall}
    run.history.append(record)
    f1 = record["val_macro_f1"]
    improved = f1 > run.best_f1
    run.best_f1 = max(run.best_f1, f1)
    if run.dist.main:
        if improved:
            save_checkpoint(run.out / "best.pt", checkpoint_of(run, epoch, f1))
        save_checkpoint(run.out / "last.pt", checkpoint_of(run, epoch, f1, with_state=True))
        write_csv(run.out / "history.csv", pd.DataFrame(run.history), index=False)
        if run.progress:
            print(
                f"epoch {epoch + 1:3d}/{run.cfg.epochs}  train loss {record['train_loss']:.4f}"
                f"  val loss {record['val_loss']:.4f}  val macro-F1 {f1:.4f}  "
                f"({run.wall:.0f}s)",
                flush=True,
            )
    run.epoch = epoch + 1
    for cb in run.callbacks:
        cb.on_epoch_end(run, record)


def train_epochs(run: Run) -> None:
    """The loop itself."""
    for cb in run.callbacks:
        cb.on_train_start(run)
    for epoch in range(run.epoch, run.cfg.epochs):
        t0 = time.perf_counter()
        record = fit_epoch(run, epoch)
        record |= validate(run)
        run.wall += time.perf_counter() - t0
        end_epoch(run, epoch, record)
        if run.stop:
            break
