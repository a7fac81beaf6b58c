"""What a trial samples: a YAML backbone in slots, plus training parameters.

Every slot suggests every parameter (a static space that any sampler handles); the search
space can be printed (:func:`space_table`) and sampled without training (:func:`sample_space`)
to see where its MACs fall before an hour of search is spent.
"""

from __future__ import annotations

import math

import optuna
import pandas as pd

from ..complexity import official_macs
from ..models import build_yaml_model
from ..models.blocks import module_spec, yaml_args
from .config import SPACE_MODULES, SearchConfig


def slot_channels(i: int, cfg: SearchConfig) -> tuple[int, int]:
    """Channel range of slot ``i``: around a base that grows geometrically from
    ``cfg.channels[0]`` (first slot) to ``cfg.channels[1]`` (last), from half to 1.5x of it.

    Why: a network widens as it downsamples (MobileNet, ShuffleNet). One shared range for every
    slot puts wide layers at full resolution, where they cost tens of millions of MACs, so
    almost every sample would blow a 10M budget and be pruned.
    """
    lo, hi = cfg.channels
    base = lo * (hi / lo) ** (i / max(1, cfg.slots - 1))
    first = max(8, 8 * round(base / 2 / 8))
    return first, max(first, 8 * round(base * 1.5 / 8))


def _slot(trial: optuna.Trial, cfg: SearchConfig, i: int, stride2: int) -> tuple[list, int]:
    """Slot ``i``'s YAML rows (none, or a module with a max-pool in front when it has no stride
    argument and asks for stride 2) and the stride-2 count so far; TrialPruned past the cap."""

    kind = trial.suggest_categorical(f"s{i}_module", SPACE_MODULES)
    rep = trial.suggest_int(f"s{i}_repeat", 1, 3)
    c = trial.suggest_int(f"s{i}_c", *slot_channels(i, cfg), step=8)
    k = trial.suggest_categorical(f"s{i}_k", [3, 5])
    s = trial.suggest_categorical(f"s{i}_s", [1, 2])
    a = trial.suggest_categorical(f"s{i}_act", ["ReLU", "Hardswish"])
    se = trial.suggest_categorical(f"s{i}_se", [0, 1])
    t = trial.suggest_categorical(f"s{i}_t", [1, 2, 3, 4, 6])
    if kind == "none":
        return [], stride2
    stride2 += s == 2
    if stride2 > cfg.max_stride2:
        raise optuna.TrialPruned(f"more than {cfg.max_stride2} stride-2 stages")
    spec, layers = module_spec(kind), []
    if spec.stride is None and s == 2:
        layers.append([1, "MaxPool", yaml_args("MaxPool", k=3, s=2, p=1)])
    named = {
        "c": c,
        "k": k,
        "s": s,
        "act": a,
        "t": t,
        "use_se": se,
        "use_hs": int(a == "Hardswish"),
        "squeeze": max(8, c // 4),
        "expand1x1": c // 2,
        "expand3x3": c // 2,
    }
    layers.append([rep, kind, yaml_args(kind, **{n: named[n] for n in spec.names if n in named})])
    return layers, stride2


def sample_config(trial: optuna.Trial, cfg: SearchConfig, n_classes: int) -> tuple[dict, dict]:
    """``(backbone YAML dict, training params)`` for one trial; raises TrialPruned if invalid.

    Every slot suggests every parameter (a static space that any sampler handles) under the
    argument names of the YAML module table; each module takes the names it has and ignores
    the rest, and the table writes them in YAML order. A module without a stride argument
    (Fire, Bottleneck) gets a 3x3 max-pool in front when its slot asks for stride 2
    (SqueezeNet's way). ``n_classes`` sizes the Linear head.
    """

    act = trial.suggest_categorical("stem_act", ["ReLU", "Hardswish"])
    stem = trial.suggest_categorical("stem_c", [8, 16, 24])
    backbone: list = [[1, "Conv", yaml_args("Conv", c=stem, k=3, s=2, act=act)]]
    stride2 = 1
    for i in range(cfg.slots):
        layers, stride2 = _slot(trial, cfg, i, stride2)
        backbone += layers
    head = trial.suggest_int("head_c", 64, 512, step=64)
    backbone += [
        [1, "Conv", yaml_args("Conv", c=head, k=1, s=1, act=act)],
        [1, "GlobalAvgPool", []],
        [1, "Flatten", []],
        [1, "Linear", yaml_args("Linear", c=n_classes)],
    ]
    model = {
        "input_channel": 3,
        "width_multiple": trial.suggest_float("width_multiple", 0.5, 1.25, step=0.25),
        "depth_multiple": trial.suggest_float("depth_multiple", 0.5, 1.0, step=0.5),
        "backbone": backbone,
    }
    params = {
        "image_size": trial.suggest_categorical("image_size", list(cfg.image_sizes)),
        "randaugment_m": trial.suggest_int("randaugment_m", 3, 12),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64]),
        "lr": trial.suggest_float("lr", 0.02, 0.2, log=True),
    }
    return model, params


def sample_space(cfg: SearchConfig, n_classes: int, n: int = 100, seed: int = 0) -> pd.DataFrame:
    """Draw ``n`` random architectures from the space and count their official MACs, without
    training anything: one row each with ``image_size``, ``MACs`` (NaN when rejected) and
    ``rejected`` (the reason, or ""). ``n_classes`` (from the data) sizes the classifier head.

    Why: a search is only as good as its space. Before spending hours, look at where the
    space's MACs fall against the budget; if most samples are far over it, every trial is
    pruned unseen and the sampler learns nothing (chapter 6 plots this).
    """
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    rows = []
    for _ in range(n):
        trial = study.ask()
        row = {"image_size": None, "MACs": math.nan, "rejected": ""}
        try:
            model_cfg, params = sample_config(trial, cfg, n_classes)
            row["image_size"] = params["image_size"]
            row["MACs"] = official_macs(
                build_yaml_model(model_cfg, n_classes), params["image_size"]
            )
        except optuna.TrialPruned as exc:
            row["rejected"] = str(exc)
        except (ValueError, RuntimeError) as exc:
            row["rejected"] = f"does not build: {exc}"
        rows.append(row)
    return pd.DataFrame(rows)


def space_table(cfg: SearchConfig) -> pd.DataFrame:
    """Every parameter a trial suggests, with its values: the search space, printed.

    Why: "the search space" is otherwise hidden in ``sample_config``'s code. A table shows
    what the sampler can choose, and its last column (how many values) how large the space is.
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0)
    )
    while True:  # a sample rejected half-way (stride-2 cap) has not suggested everything
        trial = study.ask()
        try:
            sample_config(trial, cfg, n_classes=1)  # the head's size is not a choice
            break
        except optuna.TrialPruned:
            continue
    rows = []
    for name, d in trial.distributions.items():
        if isinstance(d, CategoricalDistribution):
            values, n = ", ".join(map(str, d.choices)), len(d.choices)
        elif isinstance(d, FloatDistribution) and d.step is None:
            values, n = f"{d.low} .. {d.high}" + (" (log scale)" if d.log else ""), "continuous"
        else:
            step = d.step or 1
            values, n = f"{d.low} .. {d.high} step {step}", int((d.high - d.low) // step) + 1
        rows.append({"parameter": name, "values": values, "how many": n})
    return pd.DataFrame(rows).set_index("parameter")
