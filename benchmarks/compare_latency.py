"""Batch-1 CPU latency of trained checkpoints side by side, interleaved, each at its own size.

    python benchmarks/compare_latency.py outputs/<run-a>/best.pt outputs/<run-b>/best.pt

Every round runs each model once in turn, so drifting load on a shared machine hits them all
alike; the speed-up column is relative to the first checkpoint. Prints MACs and F1 from each
run's metrics.json beside the times.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trashkit.complexity import interleaved_latency  # noqa: E402
from trashkit.scoring import load_checkpoint  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    models, info = {}, {}
    for path in map(Path, args.checkpoints):
        loaded = load_checkpoint(path)
        name = f"{path.parent.name}/{path.name}"
        size = loaded.image_size
        models[name] = (loaded.model.eval(), torch.zeros(1, 3, size, size))
        metrics = path.parent / "metrics.json"
        m = json.loads(metrics.read_text()) if metrics.is_file() else {}
        info[name] = (size, m.get("macs"), m.get("val_macro_f1"))
    df = interleaved_latency(models, rounds=args.rounds)
    print(f"batch 1, {args.rounds} interleaved rounds, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("| checkpoint | size | MACs | val macro-F1 | median ms | p90 ms | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in df.itertuples():
        size, macs, f1 = info[r.model]
        print(f"| {r.model} | {size} | {macs or float('nan'):,.0f} | {f1 or float('nan'):.4f} "
              f"| {r.median_ms:.2f} | {r.p90_ms:.2f} | {r.speedup:.2f}x |")


if __name__ == "__main__":
    main()
