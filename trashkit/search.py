"""Chapter 6: multi-objective architecture + hyper-parameter search with Optuna.

A trial samples a YAML backbone (a fixed number of module slots, each choosing its module -
or none - repeats, channels, kernel, activation, stride, squeeze-excite) plus width/depth
multiples, input size, augmentation strength, batch size and learning rate. Invalid or
over-budget architectures are pruned *before* any training; the rest train with the
chapter-4 recipe for a few epochs and report (macro-F1 up, MACs or latency down).

Storage is any URL Optuna accepts: a SQLite file in the run folder by default, PostgreSQL for
workers on several machines. Workers share one study and stop at exactly ``n_trials`` finished
(complete or pruned) trials: a worker that draws a trial beyond that number marks it as a
surplus FAIL without training. Heartbeats let a restarted study re-run the trial of a worker
that was killed.
"""

from __future__ import annotations

import json
import math
import random
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState

from .complexity import count_layers, find_escapes, measure_latency, official_macs
from .data import load_source, resolve_source
from .models import build_yaml_model, dump_config
from .runs import write_atomic
from .train import Callback, TrainConfig, train

MODULES = (
    "none",
    "Conv",
    "DWConv",
    "InvertedResidualv2",
    "InvertedResidualv3",
    "MBConv",
    "Fire",
    "Bottleneck",
)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@dataclass
class SearchConfig:
    """What to search, how long each trial trains, and where the study lives."""

    data: str = "default"
    val_fraction: float = 0.2  # the trials' validation share (image folders)
    test_fraction: float = 0.0  # held back from every trial (scored only afterwards)
    split_seed: int = 0
    n_trials: int = 20
    epochs: int = 3  # per trial (the chapter-4 recipe, shortened)
    objective: str = "macs"  # second objective: "macs" or "latency" (batch-1 CPU ms)
    budget: float | None = None  # max MACs (or ms); over-budget trials are never trained
    slots: int = 5
    max_stride2: int = 5  # stride-2 stages allowed, the stem included
    image_sizes: tuple[int, ...] = (96, 112, 128, 156)
    channels: tuple[int, int] = (16, 128)  # base width of the first / last slot
    prune_f1: float = 0.0  # prune a trial whose F1 after half its epochs is below
    sampler: str = "tpe"  # "tpe" or "nsga2"
    storage: str | None = None  # None: sqlite:///<output_dir>/study.db
    study_name: str = "trashkit"
    seed: int = 0
    workers: int | None = None  # data-loader workers per trial
    heartbeat_interval: int = 5  # seconds between a running trial's heartbeats
    grace_period: int = 20  # a trial silent this long belongs to a dead worker


class SurplusTrial(Exception):
    """Raised for a trial drawn after the study already has ``n_trials`` in flight or done."""


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
    from .models.blocks import module_spec, yaml_args

    kind = trial.suggest_categorical(f"s{i}_module", MODULES)
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
    from .models.blocks import yaml_args

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


def storage_url(cfg: SearchConfig, out: Path) -> str:
    """The study's database URL, checked before any connection is tried.

    Accepted: ``sqlite:///path/study.db`` (the default, in the run folder),
    ``postgresql://user:pw@host:port/db`` (SQLAlchemy's default PostgreSQL driver, psycopg 3:
    ``pip install -e ".[postgres]"`` installs it), ``postgresql+psycopg2://...``, and any
    other URL SQLAlchemy and Optuna accept.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = cfg.storage or f"sqlite:///{(out / 'study.db').resolve()}"
    try:
        make_url(url)
    except ArgumentError:
        raise ValueError(
            f"SearchConfig.storage {url!r} is not a database URL; examples: "
            "sqlite:///outputs/search/study.db, "
            "postgresql://user:password@127.0.0.1:5432/trashkit"
        ) from None
    return url


def storage_for(cfg: SearchConfig, out: Path) -> optuna.storages.RDBStorage:
    """RDB storage with heartbeats (a killed worker's trial is retried on resume)."""
    url = storage_url(cfg, out)
    kwargs = (
        {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    )
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs=kwargs,
        heartbeat_interval=cfg.heartbeat_interval,
        grace_period=cfg.grace_period,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=2
        ),
    )


def load_study(cfg: SearchConfig, out: Path, attempts: int = 5) -> optuna.Study:
    """Create or join the study. Workers that start together on a fresh database race to
    create its tables; the loser gets an integrity error and simply tries again. A URL that
    is not a URL, or names a driver that is not installed, fails at once."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    kind = {"nsga2": optuna.samplers.NSGAIISampler, "tpe": optuna.samplers.TPESampler}
    if cfg.sampler not in kind:
        raise ValueError(f"SearchConfig.sampler: {cfg.sampler!r} is not one of {sorted(kind)}")
    sampler = kind[cfg.sampler](seed=cfg.seed)
    for attempt in range(attempts):
        try:
            study = optuna.create_study(
                storage=storage_for(cfg, out),
                study_name=cfg.study_name,
                directions=["maximize", "minimize"],
                sampler=sampler,
                load_if_exists=True,
            )
            break
        except (IntegrityError, OperationalError):  # the creation race; nothing else retries
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 + random.random() * (attempt + 1))
    if study.trials:  # resuming: the same seed would draw the first trials' architectures again
        study.sampler = kind[cfg.sampler](seed=cfg.seed + len(study.trials))
    study.set_metric_names(["val_macro_f1", cfg.objective])
    study.set_user_attr("search_config", json.loads(json.dumps(asdict(cfg), default=list)))
    return study


def finished(study: optuna.Study) -> list:
    return study.get_trials(deepcopy=False, states=FINISHED)


def run_search(cfg: SearchConfig, output_dir: str | Path) -> optuna.Study:
    """Work on the study until it holds ``n_trials`` finished trials (resumable, shareable).

    Run it in as many processes / machines as you like with the same ``storage`` and
    ``study_name``; each trial trains in ``output_dir/trial_NNNN/``.
    """
    out = Path(output_dir)
    storage_url(cfg, out)  # a malformed URL fails before anything is created
    out.mkdir(parents=True, exist_ok=True)
    study = load_study(cfg, out)
    optuna.storages.fail_stale_trials(study)

    def stop_when_done(st: optuna.Study, _trial) -> None:
        if len(finished(st)) >= cfg.n_trials:
            st.stop()

    if len(finished(study)) < cfg.n_trials:
        study.optimize(
            make_objective(cfg, out),
            n_trials=None,
            catch=(SurplusTrial,),
            callbacks=[stop_when_done],
            gc_after_trial=True,
        )
    return study


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per finished trial: state, objectives, attributes, and whether it is Pareto."""
    pareto = {t.number for t in study.best_trials}
    rows = []
    for t in finished(study):
        a = t.user_attrs
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "val_macro_f1": t.values[0] if t.values else a.get("val_macro_f1"),
                "MACs": a.get("macs"),
                "latency_ms": a.get("latency"),
                "params": a.get("params"),
                "image_size": t.params.get("image_size"),
                "pareto": t.number in pareto,
                "pruned_why": a.get("pruned_why", ""),
            }
        )
    return pd.DataFrame(rows).sort_values("trial").reset_index(drop=True)


def export_pareto(
    study: optuna.Study, out_dir: str | Path, max_macs: float | None = None
) -> list[Path]:
    """Write each Pareto-optimal trial (under ``max_macs``) as a YAML backbone plus a header
    that gives the ``04_train.ipynb`` parameters to train it at full length."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in sorted(study.best_trials, key=lambda t: -t.values[0]):
        if max_macs is not None and t.user_attrs.get("macs", math.inf) > max_macs:
            continue
        p = t.user_attrs["train_params"]
        header = (
            f"# trial {t.number} of study '{study.study_name}': val macro-F1 "
            f"{t.values[0]:.4f}, {t.user_attrs['macs']:,} MACs at {p['image_size']}px\n"
            f"# train it: papermill notebooks/04_train.ipynb out.ipynb -p model <this file> "
            f"-p image_size {p['image_size']} -p batch_size {p['batch_size']} "
            f"-p lr {p['lr']:.4g} -p randaugment_m {p['randaugment_m']} -p epochs 200\n"
        )
        path = out_dir / f"trial_{t.number:04d}.yaml"
        write_atomic(path, header + t.user_attrs["config_yaml"])
        paths.append(path)
    return paths


def architecture_table(
    config: str | Path | dict, image_size: int, n_classes: int = 6
) -> pd.DataFrame:
    """One row per backbone line of a YAML config: the entry as written, its output shape,
    parameters, MACs (our analytic count) and share of the total.

    Why per *line* rather than per layer: a searched architecture is read and edited as YAML,
    and an entry with repeats builds several layers; this shows what each line costs.
    """
    model = build_yaml_model(config, n_classes)
    layers = count_layers(model, (3, image_size, image_size))
    layer_idx = layers.name.str.extract(r"^layers\.(\d+)")[0].astype(int)
    entry = layer_idx.map(lambda j: model.entry_of[j]).rename("entry")
    table = layers.groupby(entry).agg(
        out_shape=("out_shape", "last"), params=("params", "sum"), MACs=("macs", "sum")
    )
    backbone = model.config["backbone"]
    table.insert(0, "yaml", [str(backbone[e]) for e in table.index])
    table["MACs %"] = (100 * table.MACs / max(1, table.MACs.sum())).round(1)
    return table


def plot_pareto(study: optuna.Study, x: str = "MACs"):
    """F1 against MACs (or latency), Pareto-optimal trials highlighted."""
    import matplotlib.pyplot as plt

    df = trials_table(study)
    df = df[df.state == "COMPLETE"]
    col = {"MACs": "MACs", "latency": "latency_ms"}[x]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.scatter(df[col], df.val_macro_f1, c="lightgray", label="trials")
    front = df[df.pareto].sort_values(col)
    ax.plot(front[col], front.val_macro_f1, "o-", color="tab:red", label="Pareto front")
    for r in front.itertuples():
        ax.annotate(str(r.trial), (getattr(r, col), r.val_macro_f1), fontsize=7)
    ax.set(xscale="log", xlabel=col, ylabel="validation macro-F1", title=f"F1 vs {col}")
    ax.legend()
    fig.tight_layout()
    return fig
