"""Train the recommended configuration on real TrashNet photos from scratch, and measure it.

    python benchmarks/trashnet.py --recipe quick     # target: macro-F1 >= 0.75 in <= 15 min
    python benchmarks/trashnet.py --recipe full      # target: macro-F1 >= 0.85 at <= 10M MACs

A fixed, seeded, stratified 80/20 split (split_seed 0) of ../shared/datasets/trashnet; no
pretrained weights. Prints macro-F1 on the 20% (of the best-by-validation checkpoint, and of
the last epoch, which involves no selection on those images), official MACs, parameters,
batch-1 CPU latency and wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trashkit.complexity import measure_latency  # noqa: E402
from trashkit.models import build_model  # noqa: E402
from trashkit.runs import new_run_dir  # noqa: E402
from trashkit.train import TrainConfig, train  # noqa: E402

RECOMMENDED = dict(model="mobilenetv3:width=0.75,depth=0.5", image_size=128, batch_size=64,
                   lr=0.1, loss="label_smoothing", randaugment_n=2, randaugment_m=9,
                   cutout=0.25, val_fraction=0.2, split_seed=0, seed=42)
RECIPES = {"quick": dict(epochs=30), "full": dict(epochs=150)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/trashnet")
    ap.add_argument("--recipe", choices=list(RECIPES), default="quick")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    ap.add_argument("--model", default=None)
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--resume", default=None, metavar="RUN_DIR",
                    help="continue an interrupted benchmark run from its last.pt")
    args = ap.parse_args()
    params = {**RECOMMENDED, **RECIPES[args.recipe], "data": str(Path(args.data).resolve())}
    for k, v in (("epochs", args.epochs), ("model", args.model), ("image_size", args.image_size)):
        if v is not None:
            params[k] = v
    if args.resume:
        out = Path(args.resume)
        cfg = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
    else:
        cfg = TrainConfig.from_dict(params)
        out = new_run_dir(f"trashnet-{args.recipe}")
    print(f"config: {json.dumps(asdict(cfg))}\nrun folder: {out}")
    t0 = time.perf_counter()
    metrics = train(cfg, out, resume=bool(args.resume), progress=False)
    total = time.perf_counter() - t0
    import pandas as pd
    hist = pd.read_csv(out / "history.csv")
    model = build_model(cfg.model, len(metrics["classes"]))
    lat = measure_latency(model, (3, cfg.image_size, cfg.image_size), runs=100)
    print(f"\nTrashNet, {metrics['n_train']} train / {metrics['n_val']} held-out images, "
          f"{cfg.epochs} epochs, {cfg.model} @ {cfg.image_size}px, from scratch")
    print(f"macro-F1 (best-by-val checkpoint, epoch {metrics['best_epoch']}): "
          f"{metrics['val_macro_f1']:.4f}")
    print(f"macro-F1 (last epoch, no selection): {hist.val_macro_f1.iloc[-1]:.4f}")
    print(f"official MACs: {metrics['macs']:,}   params: {metrics['params']:,}")
    print(f"batch-1 latency: {lat}")
    print(f"wall time: training {metrics['wall_seconds']:.0f} s (summed over all sessions of "
          f"the run), this process {total:.0f} s "
          f"(device {metrics['device']}, torch {torch.__version__})")


if __name__ == "__main__":
    main()
