"""The benchmark protocol for real-data numbers: train / validation / test, several splits.

* The test images (``TEST_FRACTION`` of every class, drawn by the split seed) influence
  nothing: training never sees them, ``best.pt`` is chosen on the validation images, no
  hyper-parameter is tuned on them. They are scored once, after training, by chapter 5's
  evaluation (:func:`trashkit.scoring.score_run_split`).
* Every configuration runs once per split seed; tables report mean +- standard deviation.
* A benchmark folder holds one training run per (row, seed); running the same command with
  ``--resume <folder>`` finishes whatever is missing (a half-trained run resumes from its
  ``last.pt``), so a long benchmark survives interruptions.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from trashkit.checkpoint import load_checkpoint
from trashkit.runs import write_json
from trashkit.scoring import score_run_split
from trashkit.train import TrainConfig, train_once

#: ../shared/datasets/trashnet beside the repository, wherever the command runs from
TRASHNET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "trashnet"
TEST_FRACTION = 0.2  # of each class: 505 of TrashNet's 2,527 photos
VAL_FRACTION = 0.1  # of each class, for choosing best.pt (the team's val ratio)
SPLIT_SEEDS = (0, 1, 2)

#: chapter 4's parameters for TrashNet: one line to copy
RECOMMENDED = dict(
    model="mobilenetv3:width=0.75,depth=0.5",
    image_size=128,
    batch_size=64,
    lr=0.1,
    loss="label_smoothing",
    randaugment_n=2,
    randaugment_m=9,
    cutout=0.25,
    seed=42,
)
RECIPES = {"quick": dict(epochs=100), "full": dict(epochs=300)}


def run_one(params: dict, folder: Path) -> dict:
    """Train (or resume, or skip when done) one run, then score its test split once."""
    scores_path = folder / "test_scores.json"
    if scores_path.is_file():
        return json.loads(scores_path.read_text())
    metrics = train_once(TrainConfig.from_dict(params), folder)
    best = score_run_split(load_checkpoint(folder / "best.pt"), "test")
    last = score_run_split(load_checkpoint(folder / "last.pt"), "test")
    result = {
        "test_f1": best["f1"],
        "test_f1_last": last["f1"],
        "val_f1": metrics["val_macro_f1"],
        "best_epoch": metrics["best_epoch"],
        "test_per_class_f1": {c: r["f1-score"] for c, r in best["report"]["per_class"].items()},
        "n_train": metrics["n_train"],
        "n_val": metrics["n_val"],
        "n_test": metrics["n_test"],
        "macs": metrics["macs"],
        "params": metrics["params"],
        "train_seconds": metrics["wall_seconds"],
        "f1_source": best["f1_source"],
    }
    write_json(scores_path, result)
    return result


def run_row(name: str, params: dict, root: Path, seeds=SPLIT_SEEDS) -> list[dict]:
    """One configuration over every split seed, each in ``root/name/seed<k>``."""
    out = []
    for seed in seeds:
        folder = root / name / f"seed{seed}"
        folder.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        r = run_one(
            {
                **params,
                "split_seed": seed,
                "test_fraction": TEST_FRACTION,
                "val_fraction": VAL_FRACTION,
            },
            folder,
        )
        print(
            f"  {name} seed {seed}: test macro-F1 {r['test_f1']:.4f} (last epoch "
            f"{r['test_f1_last']:.4f}), val {r['val_f1']:.4f}, training {r['train_seconds']:.0f}"
            f" s ({time.perf_counter() - t0:.0f} s in this process)",
            flush=True,
        )
        out.append(r)
    return out


def mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "-"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def summary_row(name: str, results: list[dict]) -> dict:
    """Mean ± sd over the split seeds of one configuration."""
    per_class = {
        c: mean_sd([r["test_per_class_f1"][c] for r in results])
        for c in results[0]["test_per_class_f1"]
    }
    return {
        "row": name,
        "seeds": len(results),
        "test macro-F1 (best by val)": mean_sd([r["test_f1"] for r in results]),
        "test macro-F1 (last epoch)": mean_sd([r["test_f1_last"] for r in results]),
        "val macro-F1": mean_sd([r["val_f1"] for r in results]),
        "MACs": f"{results[0]['macs']:,}",
        "training s": f"{statistics.fmean(r['train_seconds'] for r in results):.0f}",
        **{f"F1 {c}": v for c, v in per_class.items()},
    }


def describe(root: Path, seeds=SPLIT_SEEDS) -> str:
    """The protocol, in one line for a report header (``seeds``: the benchmark's own)."""
    return (
        f"test {TEST_FRACTION:.0%} / val {VAL_FRACTION:.0%} of each class, split seeds "
        f"{', '.join(map(str, seeds))}; best.pt chosen on val; test scored once "
        f"after training; runs in {root}"
    )
