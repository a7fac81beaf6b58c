"""Chapter 6: multi-objective architecture + hyper-parameter search with Optuna.

A trial samples a YAML backbone (a fixed number of module slots, each choosing its module -
or none - repeats, channels, kernel, activation, stride, squeeze-excite) plus width/depth
multiples, input size, augmentation strength, batch size and learning rate. Invalid or
over-budget architectures are pruned *before* any training; the rest train with the
chapter-4 recipe for a few epochs and report (macro-F1 up, MACs or latency down).

* :mod:`.config`    -- ``SearchConfig``: every setting, typed and checked like a training run's;
* :mod:`.space`     -- what a trial samples (the slots, their channel ranges) and the space
  printed as a table or sampled without training;
* :mod:`.objective` -- pricing a trial (MACs, latency, budget) and training it;
* :mod:`.study`     -- the storage (SQLite, PostgreSQL), creating / joining the study, workers;
* :mod:`.report`    -- the trials table, the Pareto front, exported architectures;
* :mod:`.proxy`     -- is a short trial a good proxy? architectures trained short and long;
* :mod:`.supernet`  -- weight sharing (a supernet whose sub-networks inherit their weights)
  and an accuracy predictor: how a search gets cheap.

Storage is any URL Optuna accepts: a SQLite file in the run folder by default, PostgreSQL for
workers on several machines. Workers share one study and stop at exactly ``n_trials`` finished
(complete or pruned) trials: a worker that draws a trial beyond that number marks it as a
surplus FAIL without training. Heartbeats let a restarted study re-run the trial of a worker
that was killed.
"""

from __future__ import annotations

import warnings

import optuna

from .config import FULL_SPLIT, PRESETS, SPACE_MODULES, SearchConfig, apply_preset
from .objective import Objective, PruneWeakTrial, SurplusTrial, data_classes, make_objective
from .proxy import (
    REFERENCE_PROXY,
    draw_architectures,
    proxy_correlations,
    proxy_table,
    reference_proxy_table,
)
from .report import export_pareto, plot_pareto, trials_table
from .space import sample_config, sample_space, slot_channels, space_table
from .study import FINISHED, finished, load_study, run_search, storage_for, storage_url
from .supernet import (
    Supernet,
    SupernetSpace,
    evaluate_subnet,
    evaluate_subnets,
    fit_accuracy_predictor,
    predictor_study,
    recalibrate_bn,
    sample_configs,
    subnet_features,
    subnet_macs,
    subnet_name,
    train_supernet,
)

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

__all__ = [
    "FINISHED",
    "FULL_SPLIT",
    "PRESETS",
    "REFERENCE_PROXY",
    "SPACE_MODULES",
    "Objective",
    "PruneWeakTrial",
    "SearchConfig",
    "Supernet",
    "SupernetSpace",
    "SurplusTrial",
    "apply_preset",
    "data_classes",
    "draw_architectures",
    "evaluate_subnet",
    "evaluate_subnets",
    "export_pareto",
    "finished",
    "fit_accuracy_predictor",
    "load_study",
    "make_objective",
    "plot_pareto",
    "predictor_study",
    "proxy_correlations",
    "proxy_table",
    "recalibrate_bn",
    "reference_proxy_table",
    "run_search",
    "sample_config",
    "sample_configs",
    "sample_space",
    "slot_channels",
    "space_table",
    "storage_for",
    "storage_url",
    "subnet_features",
    "subnet_macs",
    "subnet_name",
    "train_supernet",
    "trials_table",
]
