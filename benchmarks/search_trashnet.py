"""Search on TrashNet, then retrain the best trial under 10M MACs at full length.

    python benchmarks/search_trashnet.py --trials 60 --epochs 6 --retrain-epochs 30

The search sees only the training and validation images of split seed 0 (benchmarks/
protocol.py: 20% of every class held back as test images); trials are ranked on validation.
Then the most accurate Pareto trial under 10M MACs and the hand-designed recommended
configuration are retrained with the same recipe and epochs, and both are scored once on the
held-back test images. Prints the Pareto set and the comparison.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from protocol import RECOMMENDED, TEST_FRACTION, TRASHNET, VAL_FRACTION, run_one

from trashkit.complexity import measure_latency
from trashkit.models import build_model
from trashkit.runs import new_run_dir
from trashkit.scoring import score_macs
from trashkit.search import SearchConfig, export_pareto, run_search, trials_table

SPLIT = {"split_seed": 0, "test_fraction": TEST_FRACTION, "val_fraction": VAL_FRACTION}


def retrain(name: str, model: str, params: dict, data: str, epochs: int, out: Path) -> dict:
    """Train one configuration on split 0 and score its test images once."""
    cfg = {**RECOMMENDED, **params, **SPLIT, "model": model, "data": data, "epochs": epochs}
    r = run_one(cfg, out / name)
    lat = measure_latency(
        build_model(model, len(r["test_per_class_f1"])),
        (3, cfg["image_size"], cfg["image_size"]),
        runs=100,
    )
    return {
        "config": name,
        "model": model,
        "image_size": cfg["image_size"],
        "test macro_f1": r["test_f1"],
        "val macro_f1": r["val_f1"],
        "MACs": r["macs"],
        "params": r["params"],
        "latency_ms": lat.median_ms,
        "train_s": r["train_seconds"],
        "score_macs": score_macs(r["test_f1"], r["macs"]),
    }  # lower is better


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=str(TRASHNET))
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--retrain-epochs", type=int, default=30)
    ap.add_argument("--budget", type=float, default=10e6, help="max MACs of a trial")
    args = ap.parse_args()
    data = str(Path(args.data).resolve())
    out = new_run_dir("search-trashnet")
    t0 = time.perf_counter()
    cfg = SearchConfig(
        data=data,
        n_trials=args.trials,
        epochs=args.epochs,
        budget=args.budget,
        image_sizes=(96, 112, 128),
        seed=0,
        **SPLIT,
    )
    study = run_search(cfg, out)
    table = trials_table(study)
    pd.set_option("display.width", 200)
    print(
        f"search: {args.trials} trials x {args.epochs} epochs, budget {args.budget:.3g} MACs, "
        f"{time.perf_counter() - t0:.0f} s; folder {out}"
    )
    print(table.round(4).to_markdown(index=False))
    exported = export_pareto(study, out / "exported", max_macs=10e6)
    if not exported:
        print("no completed trial under 10M MACs")
        return
    best = exported[0]
    trial = study.trials[int(best.stem.split("_")[1])]
    p = trial.user_attrs["train_params"]
    rows = [
        retrain(
            "searched",
            str(best),
            {k: p[k] for k in ("image_size", "batch_size", "lr", "randaugment_m")},
            data,
            args.retrain_epochs,
            out,
        ),
        retrain("recommended", RECOMMENDED["model"], {}, data, args.retrain_epochs, out),
    ]
    print(
        f"\nretrained for {args.retrain_epochs} epochs (same recipe and split; score_macs is "
        "the competition's MACs-edition score, lower is better):"
    )
    print(pd.DataFrame(rows).round(4).to_markdown(index=False))
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
