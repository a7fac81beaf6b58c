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

import torch

from trashkit.checkpoint import load_checkpoint
from trashkit.runs import write_json
from trashkit.scoring import score_folder, score_run_split
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
#: chapter 4's defaults: the recommended configuration for 100 epochs (the quick recipe)
QUICK = dict(RECOMMENDED, epochs=100)


def _score(folder: Path, which: str, eval_folder: str | None) -> dict:
    """Score ``which`` (best.pt or last.pt) once: the run's test split, or ``eval_folder``."""
    ckpt = load_checkpoint(folder / which)
    if eval_folder:
        return score_folder(ckpt, eval_folder, progress=False)
    return score_run_split(ckpt, "test")


def run_one(params: dict, folder: Path, eval_folder: str | None = None) -> dict:
    """Train (or resume, or skip when done) one run, then score its test split once (or a
    separate labelled ``eval_folder``); ``test_scores.json`` keeps the answer."""
    scores_path = folder / "test_scores.json"
    if scores_path.is_file():
        return json.loads(scores_path.read_text())
    metrics = train_once(TrainConfig.from_dict(params), folder)
    best, last = _score(folder, "best.pt", eval_folder), _score(folder, "last.pt", eval_folder)
    result = {
        "test_f1": best["f1"],
        "test_f1_last": last["f1"],
        "val_f1": metrics["val_macro_f1"],
        "best_epoch": metrics["best_epoch"],
        "test_per_class_f1": {c: r["f1-score"] for c, r in last["report"]["per_class"].items()},
        "n_train": metrics["n_train"],
        "n_val": metrics["n_val"],
        "n_test": best["n_eval"],
        "macs": metrics["macs"],
        "params": metrics["params"],
        "train_seconds": metrics["wall_seconds"],
        "threads": torch.get_num_threads(),
        "f1_source": best["f1_source"],
    }
    write_json(scores_path, result)
    return result


def run_row(
    name: str,
    params: dict,
    root: Path,
    seeds=SPLIT_SEEDS,
    train_seeds=(RECOMMENDED["seed"],),
    eval_folder: str | None = None,
) -> list[dict]:
    """One configuration over every (split seed, training seed), each in
    ``root/name/split<k>-seed<t>``; ``params`` may be a function of ``(split, seed)``."""
    out = []
    for split in seeds:
        for seed in train_seeds:
            folder = root / name / f"split{split}-seed{seed}"
            folder.parent.mkdir(parents=True, exist_ok=True)
            given = params(split, seed) if callable(params) else params
            run_params = {**given, "split_seed": split, "seed": seed}
            if eval_folder is None:
                run_params |= {"test_fraction": TEST_FRACTION, "val_fraction": VAL_FRACTION}
            else:  # the data is split into train / val only; the test images are elsewhere
                run_params |= {"test_fraction": 0.0, "val_fraction": VAL_FRACTION}
            t0 = time.perf_counter()
            r = run_one(run_params, folder, eval_folder)
            print(
                f"  {name} split {split} seed {seed}: test macro-F1 {r['test_f1_last']:.4f} "
                f"(last epoch; best by val {r['test_f1']:.4f}), val {r['val_f1']:.4f}, "
                f"{r['macs']:,} MACs, training {r['train_seconds']:.0f} s on {r['threads']} "
                f"threads ({time.perf_counter() - t0:.0f} s in this process)",
                flush=True,
            )
            out.append(r)
    return out


def mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "-"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def summary_row(name: str, results: list[dict]) -> dict:
    """Mean ± sd over the runs (split seeds x training seeds) of one configuration. The
    headline is the last epoch's weights: a rule that does not chase the noise of a few
    hundred validation images (best-by-validation is shown beside it); per-class F1 too."""
    per_class = {
        c: mean_sd([r["test_per_class_f1"][c] for r in results])
        for c in results[0]["test_per_class_f1"]
    }
    return {
        "row": name,
        "runs": len(results),
        "test macro-F1 (last epoch)": mean_sd([r["test_f1_last"] for r in results]),
        "test macro-F1 (best by val)": mean_sd([r["test_f1"] for r in results]),
        "val macro-F1": mean_sd([r["val_f1"] for r in results]),
        "MACs": f"{results[0]['macs']:,}",
        "training s": f"{statistics.fmean(r['train_seconds'] for r in results):.0f}",
        "threads": ",".join(sorted({str(r.get("threads", "?")) for r in results})),
        **{f"F1 {c}": v for c, v in per_class.items()},
    }


def describe(root: Path, seeds=SPLIT_SEEDS, train_seeds=(RECOMMENDED["seed"],)) -> str:
    """The protocol, in one line for a report header (the benchmark's own seeds)."""
    return (
        f"test {TEST_FRACTION:.0%} / val {VAL_FRACTION:.0%} of each class, split seeds "
        f"{', '.join(map(str, seeds))}, training seeds {', '.join(map(str, train_seeds))}; "
        f"test scored once after training (last epoch, and best.pt chosen on val); "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; runs in {root}"
    )
