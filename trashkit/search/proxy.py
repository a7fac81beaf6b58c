"""Is a short trial a good proxy? The same architectures trained short and long, ranked.

A search ranks every trial by its validation macro-F1 after a few epochs (the **proxy**) and
then trains the winner much longer. That only works if the proxy orders architectures the way
full training does. :func:`proxy_table` draws random architectures of the search space under a
MACs budget, trains each exactly as a trial would (the chapter-4 recipe with the trial's own
image size, batch size, learning rate and RandAugment magnitude) for a short and a long
schedule, scores each run's held-back test images once, and :func:`proxy_correlations` says
how well the short runs rank the long ones. Chapter 6's ``preset="full"`` runs it on TrashNet
with the settings of its Reference results (``benchmarks/search_proxy.py`` is the same
measurement as a command).
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd

from ..checkpoint import load_checkpoint
from ..complexity import official_macs
from ..models import build_yaml_model, dump_config
from ..runs import write_atomic
from ..scoring import score_run_split
from ..train import TrainConfig, train_once
from .config import FULL_SPLIT, SearchConfig
from .space import sample_config

#: The measurement of docs/results.md ("Is a short search trial a good proxy?"), copied row by
#: row (tests/test_chapter06.py compares the two): ``python benchmarks/search_proxy.py --archs 6
#: --short 6 --long 30``, TrashNet, split seed 0, 2-core x86_64 CPU, torch 2.14.1, no GPU.
#: Columns: input px, official MACs, parameters, val / test F1 after 6 epochs, after 30.
REFERENCE_PROXY = {
    "short": 6,
    "long": 30,
    "rows": {
        "arch0": (96, 5_099_238, 35_742, 0.407, 0.444, 0.601, 0.589),
        "arch1": (112, 9_446_374, 74_118, 0.441, 0.481, 0.710, 0.657),
        "arch2": (128, 4_283_362, 34_650, 0.474, 0.442, 0.726, 0.637),
        "arch3": (96, 6_461_798, 40_278, 0.402, 0.412, 0.618, 0.601),
        "arch4": (96, 5_480_300, 26_300, 0.444, 0.402, 0.635, 0.623),
        "arch5": (128, 9_737_814, 44_390, 0.429, 0.443, 0.701, 0.685),
    },
}


def reference_proxy_table() -> pd.DataFrame:
    """:data:`REFERENCE_PROXY` as the table :func:`proxy_table` makes."""
    s, lg = REFERENCE_PROXY["short"], REFERENCE_PROXY["long"]
    columns = ["input", "official MACs", "parameters"]
    columns += [f"val F1, {s} ep", f"test F1, {s} ep", f"val F1, {lg} ep", f"test F1, {lg} ep"]
    table = pd.DataFrame.from_dict(REFERENCE_PROXY["rows"], orient="index", columns=columns)
    return table.rename_axis("arch")


def draw_architectures(
    n: int,
    budget: float,
    n_classes: int,
    seed: int = 0,
    image_sizes: tuple[int, ...] = (96, 112, 128),
) -> list[dict]:
    """``n`` random architectures of the default space that build and fit ``budget`` MACs:
    ``{"yaml", "params", "macs", "sample"}`` each. Random sampling (not TPE) on purpose: the
    question is about the space, not about where one sampler happens to look."""
    cfg = SearchConfig(image_sizes=tuple(image_sizes), budget=budget)
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    archs: list[dict] = []
    while len(archs) < n:
        trial = study.ask()
        try:
            model_cfg, params = sample_config(trial, cfg, n_classes)
            macs = official_macs(build_yaml_model(model_cfg, n_classes), params["image_size"])
        except (optuna.TrialPruned, ValueError, RuntimeError):
            continue
        if macs <= budget:
            archs.append(
                {"yaml": dump_config(model_cfg), "params": params, "macs": int(macs)}
                | {"sample": trial.number}
            )
    return archs


def train_architecture(
    arch: dict, name: str, epochs: int, data: str, root: Path, split: dict = FULL_SPLIT
) -> dict:
    """Train (or resume, or read back) one architecture for ``epochs`` epochs in
    ``root/<name>/e<epochs>`` as a search trial would; its validation F1 (what chose
    ``best.pt``) and its test F1 (scored once, after training)."""
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    yaml = folder / "model.yaml"
    if not yaml.is_file():
        write_atomic(yaml, arch["yaml"])
    cfg = TrainConfig.from_dict(
        {"data": data, "model": str(yaml), "epochs": epochs, "seed": 0, **split}
        | arch["params"]
        | {"chapter": 6, "kind": "proxy"}
    )
    metrics = train_once(cfg, folder / f"e{epochs}")
    test = score_run_split(load_checkpoint(folder / f"e{epochs}" / "best.pt"), "test")
    return {
        "val": metrics["val_macro_f1"],
        "test": test["f1"],
        "params": metrics["params"],
        "seconds": metrics["wall_seconds"],
    }


def proxy_table(
    archs: list[dict], short: int, long: int, data: str, root: Path, split: dict = FULL_SPLIT
) -> pd.DataFrame:
    """One row per architecture: its cost and its F1 after ``short`` and ``long`` epochs.
    Every short run goes first, so an interrupted measurement already has the proxy."""
    runs = {
        (k, e): train_architecture(a, f"arch{k}", e, data, root, split)
        for e in (short, long)
        for k, a in enumerate(archs)
    }
    rows = []
    for k, a in enumerate(archs):
        s, lg = runs[k, short], runs[k, long]
        rows.append(
            {
                "arch": f"arch{k}",
                "input": a["params"]["image_size"],
                "official MACs": a["macs"],
                "parameters": s["params"],
                f"val F1, {short} ep": s["val"],
                f"test F1, {short} ep": s["test"],
                f"val F1, {long} ep": lg["val"],
                f"test F1, {long} ep": lg["test"],
            }
        )
    return pd.DataFrame(rows).set_index("arch")


def proxy_correlations(table: pd.DataFrame, short: int, long: int) -> pd.DataFrame:
    """Spearman's rho (with its p-value) and Kendall's tau between the short runs' validation
    F1 (what a search ranks by) and each long-run measure; whether the winner is the same."""
    from scipy.stats import kendalltau, spearmanr

    proxy = table[f"val F1, {short} ep"]
    rows = []
    for target in (f"val F1, {long} ep", f"test F1, {long} ep"):
        rho = spearmanr(proxy, table[target])
        rows.append(
            {
                "proxy -> target": f"{proxy.name} -> {target}",
                "Spearman rho": float(rho.statistic),
                "p": float(rho.pvalue),
                "Kendall tau": float(kendalltau(proxy, table[target]).statistic),
                "same winner": bool(proxy.idxmax() == table[target].idxmax()),
            }
        )
    return pd.DataFrame(rows)
