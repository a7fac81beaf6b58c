"""Train the recommended configuration on real TrashNet photos from scratch, honestly measured.

    python benchmarks/trashnet.py --recipe quick        # target: test macro-F1 >= 0.75, <= 15 min
    python benchmarks/trashnet.py --recipe full         # target: test macro-F1 >= 0.85, <= 10M MACs
    python benchmarks/trashnet.py --resume outputs/<run>   # finish an interrupted benchmark
    python benchmarks/trashnet.py --resume outputs/<run> --seeds 1 2   # add split seeds to it

Protocol (benchmarks/protocol.py): each split seed holds back 20% of every class as test
images that influence nothing; best.pt is chosen on 10% validation images; the test images
are scored once at the end. Prints mean +- sd over the split seeds (per class too), official
MACs, parameters, and training time. No pretrained weights.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from protocol import TRASHNET, RECIPES, RECOMMENDED, SPLIT_SEEDS, describe, run_row, summary_row
from trashkit.runs import new_run_dir, write_json


def parse_sets(items: list[str]) -> dict:
    """``key=value`` pairs, values read as JSON where they parse (numbers, true, null)."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=str(TRASHNET))
    ap.add_argument("--recipe", choices=list(RECIPES), default="quick")
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help=f"split seeds (default {list(SPLIT_SEEDS)}); with --resume: add these seeds",
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override training parameters, e.g. epochs=60 ema=0.99",
    )
    ap.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="finish an interrupted benchmark (same recipe, seeds and overrides)",
    )
    args = ap.parse_args()
    if args.resume:
        root = Path(args.resume)
        spec = json.loads((root / "benchmark.json").read_text())
        if args.seeds:  # train more split seeds of the same recipe into the same folder
            spec["seeds"] = sorted(set(spec["seeds"]) | set(args.seeds))
            write_json(root / "benchmark.json", spec)
    else:
        params = {
            **RECOMMENDED,
            **RECIPES[args.recipe],
            "data": str(Path(args.data).resolve()),
            **parse_sets(args.set),
        }
        spec = {"recipe": args.recipe, "params": params, "seeds": args.seeds or list(SPLIT_SEEDS)}
        root = new_run_dir(f"trashnet-{args.recipe}")
        write_json(root / "benchmark.json", spec)
    header = f"{spec['recipe']} recipe: {json.dumps(spec['params'])}"
    print(f"{header}\n{describe(root, spec['seeds'])}", flush=True)
    results = run_row(spec["recipe"], spec["params"], root, spec["seeds"])
    table = pd.DataFrame([summary_row(spec["recipe"], results)]).set_index("row").T
    print(table.to_markdown())


if __name__ == "__main__":
    main()
