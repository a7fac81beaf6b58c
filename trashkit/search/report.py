"""Reading a study: the trials table, the Pareto front as a plot, and its architectures as
YAML files ready for chapter 4."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pandas as pd

from ..runs import write_atomic
from .study import finished


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
