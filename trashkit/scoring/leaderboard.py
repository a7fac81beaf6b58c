"""Every run in one table: the leaderboard, and the runs it is made of.

A row comes from a training run (its ``metrics.json``, beside its ``config.json`` and
``best.pt``) or from chapter 5's evaluation of a checkpoint (``scores.json``). Nothing is
taken on trust: every file is checked against a schema with ranges, an evaluation counts
only for the checkpoint it scored (same file, same SHA-256), and files that fail are listed
by name with the reason in ``board.attrs["rejected"]`` instead of being silently used or
silently dropped.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .formulas import score_macs, score_time

#: what each field of a file must hold: (check, what the reason says it must be)
_UNIT = (lambda v: _num(v) and 0 <= v <= 1, "a number in [0, 1]")
_POS = (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "a positive integer")
_SIZE = (
    lambda v: isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= 4096,
    "an integer in 8..4096",
)
_TEXT = (lambda v: isinstance(v, str), "a string")
_OPT_POS = (lambda v: v is None or (_num(v) and v > 0), "a positive number or null")
METRICS_FIELDS = {
    "val_macro_f1": _UNIT,
    "macs": _POS,
    "params": _POS,
    "input_size": _SIZE,
    "model": _TEXT,
}
SCORES_FIELDS = {
    "checkpoint": _TEXT,
    "checkpoint_sha256": (lambda v: isinstance(v, str) and len(v) == 64, "a SHA-256 hex digest"),
    "model": _TEXT,
    "f1": _UNIT,
    "macs": _POS,
    "params": _POS,
    "input_size": _SIZE,
    "latency_ms": _OPT_POS,
    "submit_time_scaled_s": _OPT_POS,
}


def _num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _schema_error(record: object, fields: dict) -> str | None:
    """Why ``record`` does not fit ``fields`` (None when it does)."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for name, (ok, wants) in fields.items():
        if name not in record and wants.endswith("or null"):
            continue
        if name not in record:
            return f"field {name!r} is missing"
        if not ok(record[name]):
            return f"field {name!r} must be {wants}, got {str(record[name])[:40]}"
    return None


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return exc


def run_config(folder: Path) -> dict | None:
    """A run folder's ``config.json`` (None when it has none or it does not parse)."""
    cfg = _read_json(folder / "config.json") if (folder / "config.json").is_file() else None
    return cfg if isinstance(cfg, dict) else None


def _training_row(path: Path, root: Path) -> tuple[dict | None, str | None]:
    """``(row, None)`` for a valid training run's ``metrics.json``, else ``(None, reason)``."""
    m = _read_json(path)
    why = _schema_error(m, METRICS_FIELDS) if not isinstance(m, Exception) else str(m)
    cfg = run_config(path.parent)
    if why is None and cfg is None:
        why = "no config.json beside it: not a training run's folder"
    elif why is None and cfg.get("model") != m["model"]:
        why = f"its model {m['model']!r} is not the run's config.json model {cfg.get('model')!r}"
    if why:
        return None, why
    return {
        "run": str(path.parent.relative_to(root)),
        "folder": str(path.parent),
        "chapter": cfg.get("chapter", 0),
        "kind": cfg.get("kind", "train"),
        "model": m["model"],
        "data": m.get("data"),
        "f1": m["val_macro_f1"],
        "f1 on": "validation (chose best.pt)",
        "macs": m["macs"],
        "params": m["params"],
        "input_size": m["input_size"],
        "epochs": m.get("epochs"),
    }, None


def _scored_row(path: Path, root: Path) -> tuple[dict | None, str | None]:
    """``(fields, None)`` of a valid evaluation's ``scores.json``, else ``(None, reason)``.

    It must name a checkpoint under ``root`` that still has the SHA-256 it was scored with:
    a file elsewhere cannot replace another run's row."""
    from .evaluate import checkpoint_sha256

    s = _read_json(path)
    why = _schema_error(s, SCORES_FIELDS) if not isinstance(s, Exception) else str(s)
    if why:
        return None, why
    ckpt = Path(s["checkpoint"]).resolve()
    if not ckpt.is_relative_to(root.resolve()):
        return None, f"it scores {ckpt}, which is not under {root}"
    if not ckpt.is_file() or checkpoint_sha256(ckpt) != s["checkpoint_sha256"]:
        return None, f"{ckpt} is missing or is not the file that was scored (SHA-256 differs)"
    return {
        "model": s["model"],
        "f1": s["f1"],
        "f1 on": s.get("f1_source", "?"),
        "macs": s["macs"],
        "params": s["params"],
        "input_size": s["input_size"],
        "latency_ms": s.get("latency_ms"),
        "submit_time_scaled_s": s.get("submit_time_scaled_s"),
        "data_scored": s.get("data"),
    }, None


def leaderboard(root: str | Path, score: str = "score_macs") -> pd.DataFrame:
    """Every run under ``root`` in one table, best first; each F1 says what it was measured on.

    Training runs give their validation F1; a run chapter 5 scored shows that F1 and its
    source instead (the newest evaluation of the same checkpoint wins). Scores are recomputed
    from F1, MACs and time with the default baselines so every row is comparable. Files that
    fail their checks are in ``board.attrs["rejected"]`` as ``(path, reason)`` (and warned).
    """
    root = Path(root)
    rows: dict[str, dict] = {}
    rejected: list[tuple[str, str]] = []
    for path in sorted(root.rglob("metrics.json")):
        row, why = _training_row(path, root)
        if why:
            rejected.append((str(path), why))
        else:
            rows[str((path.parent / "best.pt").resolve())] = row
    for path in sorted(root.rglob("scores.json"), key=lambda p: p.stat().st_mtime):
        scored, why = _scored_row(path, root)
        if why:
            rejected.append((str(path), why))
            continue
        key = str(Path(_read_json(path)["checkpoint"]).resolve())
        row = rows.setdefault(
            key,
            {
                "run": str(path.parent.relative_to(root)),
                "folder": str(path.parent),
                "chapter": 0,
                "kind": "score",
            },
        )
        data = row.get("data") or scored.pop("data_scored")
        row.update({k: v for k, v in scored.items() if k != "data_scored"}, data=data)
    for path, why in rejected:
        warnings.warn(f"leaderboard: {path} rejected: {why}", stacklevel=2)
    return _ranked(pd.DataFrame(list(rows.values())), score, rejected)


def _ranked(df: pd.DataFrame, score: str, rejected: list) -> pd.DataFrame:
    if not df.empty:
        df["score_macs"] = [score_macs(f, m) for f, m in zip(df.f1, df.macs)]
        if "submit_time_scaled_s" in df:
            df["score_time"] = [
                score_time(f, t) if pd.notna(t) else np.nan
                for f, t in zip(df.f1, df.submit_time_scaled_s)
            ]
        df = df.sort_values(score).reset_index(drop=True)
    df.attrs["rejected"] = rejected
    return df


def find_runs(root: str | Path, chapter: int | None = None, kind: str | None = None) -> list[Path]:
    """Finished training runs under ``root`` (folders with ``config.json`` and ``best.pt``)
    whose config records the given ``chapter`` and ``kind``, oldest first."""
    found = []
    for cfg_path in Path(root).rglob("config.json"):
        cfg = run_config(cfg_path.parent)
        if cfg is None or not (cfg_path.parent / "best.pt").is_file():
            continue
        if chapter is not None and cfg.get("chapter") != chapter:
            continue
        if kind is not None and cfg.get("kind", "train") != kind:
            continue
        found.append(cfg_path.parent)
    return sorted(found, key=lambda p: (p / "best.pt").stat().st_mtime)


def find_checkpoint(root: str | Path, chapter: int = 4, kind: str = "train") -> Path:
    """The newest ``best.pt`` of a run made by ``chapter`` as ``kind`` (chapter 4's training
    runs by default) - never some other chapter's student or pruned variant by accident."""
    found = find_runs(root, chapter, kind)
    if not found:
        raise FileNotFoundError(
            f"no finished run of chapter {chapter} ({kind}) under {root}: run chapter "
            f"{chapter} first or pass a checkpoint"
        )
    return found[-1] / "best.pt"


def _label(chapter: int, kind: str) -> str:
    return f"chapter {chapter} ({kind})" if chapter else f"no chapter ({kind})"


def cross_chapter_runs(roots: list[Path], data: str, latency_runs: int = 20) -> pd.DataFrame:
    """The leaderboard of every run under ``roots`` trained on ``data``, labelled with the
    chapter and kind its config records, with a batch-1 latency measured here.

    Why: chapters 4, 6 and 7 each report their own table; only one chart over all of them
    shows which route reached which F1 at which cost. Latency is re-measured on this machine
    (the leaderboard stores it only for runs chapter 5 scored).
    """
    from ..checkpoint import load_checkpoint
    from ..complexity import measure_latency

    frames = []
    for root in dict.fromkeys(Path(r).resolve() for r in roots):
        board = leaderboard(root) if root.is_dir() else pd.DataFrame()
        if not board.empty:
            frames.append(board)
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames).drop_duplicates("folder")
    df = df[df["data"] == data].copy()
    df["chapter"] = [_label(c, k) for c, k in zip(df.chapter, df.kind)]
    lat = []
    for r in df.itertuples():
        ckpt, size = Path(r.folder) / "best.pt", int(r.input_size)
        lat.append(
            measure_latency(
                load_checkpoint(ckpt).build_model("cpu"), (3, size, size), runs=latency_runs
            ).median_ms
            if ckpt.is_file()
            else np.nan
        )
    df["latency_ms"] = lat
    return df.reset_index(drop=True)


def plot_cross_chapter(df: pd.DataFrame, path: Path | None = None):
    """Macro-F1 against official MACs and against batch-1 latency, one colour per chapter."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for chapter, part in df.groupby("chapter"):
        for ax, col in zip(axes, ("macs", "latency_ms")):
            ax.scatter(part[col], part.f1, label=chapter, alpha=0.8)
    axes[0].set(
        xscale="log", xlabel="official MACs", ylabel="macro-F1 (each run's own validation split)"
    )
    axes[1].set(xlabel="batch-1 CPU latency (ms, measured now)")
    axes[0].legend(fontsize=8)
    fig.suptitle("every run on this data: chapters 4, 6 and 7")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig
