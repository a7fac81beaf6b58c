"""Pricing and training one trial: what Optuna calls for each trial."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState

from ..complexity import find_escapes, measure_latency, official_macs
from ..data import load_source, resolve_source
from ..models import build_yaml_model, dump_config
from ..runs import write_atomic
from ..train import Callback, TrainConfig, train
from .config import SearchConfig
from .space import sample_config


class SurplusTrial(Exception):
    """Raised for a trial drawn after the study already has ``n_trials`` in flight or done."""


def _cost(model_cfg: dict, size: int, n_classes: int) -> tuple[int, float]:
    """(official MACs, batch-1 CPU latency in ms) of an architecture checked by the guard."""
    model = build_yaml_model(model_cfg, n_classes)
    escapes = find_escapes(model)
    if escapes:
        raise optuna.TrialPruned(f"escapes the MACs counter: {escapes}")
    macs = official_macs(model, size)
    return macs, measure_latency(model, (3, size, size), runs=15, warmup=3).median_ms


class PruneWeakTrial(Callback):
    """Optuna's *trial* pruning (not chapter 7's weight pruning): stop a trial whose
    validation macro-F1 after half its epochs is below ``threshold``; the saved time goes
    to more promising trials."""

    def __init__(self, epochs: int, threshold: float):
        self.check_at, self.epochs, self.threshold = max(1, epochs // 2), epochs, threshold

    def on_epoch_end(self, run, record: dict) -> None:
        f1, epoch = record["val_macro_f1"], record["epoch"]
        if epoch == self.check_at and epoch < self.epochs and f1 < self.threshold:
            run.stop = f"F1 {f1:.3f} < {self.threshold} after epoch {epoch}"


@dataclass
class Objective:
    """What Optuna calls for each trial: sample, price, check the budget, train, report
    ``(validation macro-F1, cost)``. Invalid and over-budget trials are pruned untrained."""

    cfg: SearchConfig
    out: Path
    n_classes: int

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        _check_surplus(trial, self.cfg.n_trials)
        try:
            model_cfg, params, cost = self.price(trial)
            return self.fit(trial, model_cfg, params), cost
        except optuna.TrialPruned as exc:
            trial.set_user_attr("pruned_why", str(exc))
            raise

    def price(self, trial: optuna.Trial) -> tuple[dict, dict, float]:
        """Sample an architecture and its cost; prune it when invalid or over budget."""
        cfg = self.cfg
        try:
            model_cfg, params = sample_config(trial, cfg, self.n_classes)
            macs, latency = _cost(model_cfg, params["image_size"], self.n_classes)
        except optuna.TrialPruned:
            trial.set_constraint("budget", 1.0)  # rejected: as bad as twice the budget
            raise
        except (ValueError, RuntimeError) as exc:  # e.g. a feature map shrunk to nothing
            trial.set_constraint("budget", 1.0)
            raise optuna.TrialPruned(f"does not build: {exc}") from None
        cost = float(macs) if cfg.objective == "macs" else latency
        for key, value in (
            ("macs", macs),
            ("latency", latency),
            ("train_params", params),
            ("config_yaml", dump_config(model_cfg)),
        ):
            trial.set_user_attr(key, value)
        # Optuna's constraint (> 0 is infeasible): the sampler ranks over-budget trials by how
        # far over they were, learning where the budget lies; the Pareto set skips them
        trial.set_constraint("budget", cost / cfg.budget - 1 if cfg.budget else 0.0)
        if cfg.budget is not None and cost > cfg.budget:
            raise optuna.TrialPruned(
                f"over budget: {cost:.4g} > {cfg.budget:.4g} ({cfg.objective}), not trained"
            )
        return model_cfg, params, cost

    def fit(self, trial: optuna.Trial, model_cfg: dict, params: dict) -> float:
        """Train the trial with the chapter-4 recipe (shortened); its validation F1."""
        cfg = self.cfg
        folder = self.out / f"trial_{trial.number:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "model.yaml", trial.user_attrs["config_yaml"])
        tcfg = TrainConfig(
            data=cfg.data,
            model=str(folder / "model.yaml"),
            epochs=cfg.epochs,
            seed=cfg.seed,
            workers=cfg.workers,
            val_fraction=cfg.val_fraction,
            test_fraction=cfg.test_fraction,
            split_seed=cfg.split_seed,
            chapter=6,
            kind="trial",
            **params,
        )
        metrics = train(
            tcfg,
            folder / "run",
            progress=False,
            callbacks=[PruneWeakTrial(cfg.epochs, cfg.prune_f1)],
        )
        if "stopped" in metrics:
            trial.set_user_attr("val_macro_f1", trial_f1(folder / "run"))
            raise optuna.TrialPruned(metrics["stopped"])
        for key in ("val_macro_f1", "val_acc", "params", "wall_seconds"):
            trial.set_user_attr(key, metrics[key])
        return metrics["val_macro_f1"]


def trial_f1(run_dir: Path) -> float:
    """The last validation macro-F1 a (stopped) trial's run recorded."""
    return float(pd.read_csv(run_dir / "history.csv").val_macro_f1.iloc[-1])


def make_objective(cfg: SearchConfig, out: Path, n_classes: int | None = None) -> Objective:
    """The objective for ``cfg``; the class count comes from the data (the head's size)."""
    return Objective(cfg, out, data_classes(cfg.data) if n_classes is None else n_classes)


def data_classes(data: str) -> int:
    """How many classes ``data`` has (a folder scan, no image decoded)."""
    return len(load_source(resolve_source(data).folder).classes)


def _check_surplus(trial: optuna.Trial, n_trials: int) -> None:
    """Fail (without work) a trial numbered beyond the first ``n_trials`` live ones."""
    live = sorted(
        t.number
        for t in trial.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        )
    )
    if trial.number not in live[:n_trials]:
        trial.set_user_attr("surplus", True)
        trial.study.stop()
        raise SurplusTrial(f"trial {trial.number}: the study already has {n_trials} trials")
