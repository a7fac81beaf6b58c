"""Search on TrashNet, then retrain the best trial under 10M MACs at full length.

    python benchmarks/search_trashnet.py --trials 60 --epochs 6 --retrain-epochs 30  # ~35 min

Same split as benchmarks/trashnet.py (stratified 80/20, split_seed 0). Prints the Pareto set,
then the retrained trial beside the hand-designed recommended configuration (same epochs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trashkit.complexity import measure_latency  # noqa: E402
from trashkit.models import build_model  # noqa: E402
from trashkit.runs import new_run_dir  # noqa: E402
from trashkit.scoring import score_macs  # noqa: E402
from trashkit.search import SearchConfig, export_pareto, run_search, trials_table  # noqa: E402
from trashkit.train import TrainConfig, train  # noqa: E402

from trashnet import RECOMMENDED  # noqa: E402  (benchmarks/trashnet.py)


def retrain(name: str, model: str, params: dict, data: str, epochs: int, out: Path) -> dict:
    cfg = TrainConfig.from_dict({**RECOMMENDED, **params, "model": model, "data": data,
                                 "epochs": epochs})
    m = train(cfg, out / name, progress=False)
    lat = measure_latency(build_model(model, len(m["classes"])),
                          (3, cfg.image_size, cfg.image_size), runs=100)
    return {"config": name, "model": model, "image_size": cfg.image_size,
            "macro_f1": m["val_macro_f1"], "MACs": m["macs"], "params": m["params"],
            "latency_ms": lat.median_ms, "train_s": m["wall_seconds"],
            "score_macs": score_macs(m["val_macro_f1"], m["macs"])}  # lower is better


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/trashnet")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--retrain-epochs", type=int, default=30)
    ap.add_argument("--budget", type=float, default=10e6, help="max MACs of a trial")
    args = ap.parse_args()
    data = str(Path(args.data).resolve())
    out = new_run_dir("search-trashnet")
    t0 = time.perf_counter()
    cfg = SearchConfig(data=data, n_trials=args.trials, epochs=args.epochs, budget=args.budget,
                       image_sizes=(96, 112, 128), seed=0)
    study = run_search(cfg, out)
    table = trials_table(study)
    pd.set_option("display.width", 200)
    print(f"search: {args.trials} trials x {args.epochs} epochs, budget {args.budget:.3g} MACs, "
          f"{time.perf_counter() - t0:.0f} s; folder {out}")
    print(table.round(4).to_markdown(index=False))
    exported = export_pareto(study, out / "exported", max_macs=10e6)
    if not exported:
        print("no completed trial under 10M MACs")
        return
    best = exported[0]
    trial = study.trials[int(best.stem.split("_")[1])]
    p = trial.user_attrs["train_params"]
    rows = [retrain("searched", str(best), {k: p[k] for k in ("image_size", "batch_size", "lr",
                                                              "randaugment_m")},
                    data, args.retrain_epochs, out),
            retrain("recommended", RECOMMENDED["model"], {}, data, args.retrain_epochs, out)]
    print(f"\nretrained for {args.retrain_epochs} epochs (same recipe and split; score_macs is "
          "the competition's MACs-edition score, lower is better):")
    print(pd.DataFrame(rows).round(4).to_markdown(index=False))
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
