"""What each trick buys: the recipe's levers one at a time, on the honest protocol.

    python benchmarks/ablation.py                      # every row, 3 split seeds each
    python benchmarks/ablation.py --rows baseline ema  # some rows
    python benchmarks/ablation.py --resume outputs/<run>-ablation   # finish an interrupted one

Each row changes the quick baseline (benchmarks/trashnet.py's RECOMMENDED, 30 epochs) in one
way; every row is trained on the same three train/val/test splits (benchmarks/protocol.py)
and reported as mean +- sd of the test macro-F1 (the test images influence nothing). The
size rows trade resolution against width/depth at about the baseline's 9.5M MACs. The
distillation row's teacher is a larger network trained from scratch on the same training
images of each split (row "teacher").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from protocol import TRASHNET, RECOMMENDED, describe, run_row, summary_row
from trashkit.runs import new_run_dir, write_json

BASE = {**RECOMMENDED, "epochs": 30}  # the levers are compared at 30 epochs, 3 splits
ROWS = {  # in the order they run: the levers most likely to matter first
    "baseline": {},
    "epochs 60": {"epochs": 60},
    "random-resized crop (0.25-1)": {"crop_scale": 0.25},
    "mixup 0.2 or CutMix 1.0 (one per batch)": {"mixup": 0.2, "cutmix": 1.0},
    "EMA 0.99": {"ema": 0.99},
    "176 px, width 0.5 (8.8M MACs)": {
        "image_size": 176,
        "model": "mobilenetv3:width=0.5,depth=0.5",
    },
    "teacher: width 1, depth 1 (19.9M MACs)": {"model": "mobilenetv3:width=1.0,depth=1.0"},
    "distilled from the teacher": {
        "teacher": "{root}/teacher/split{seed}-seed" + str(RECOMMENDED["seed"]) + "/best.pt"
    },
}
TEACHER_ROW = "teacher: width 1, depth 1 (19.9M MACs)"


def folder_name(row: str) -> str:
    return (
        "teacher"
        if row == TEACHER_ROW
        else "".join(ch if ch.isalnum() else "-" for ch in row).strip("-").lower()
    )


def row_params(row: str, data: str, root: Path, seed: int) -> dict:
    """A row's training parameters for one split (the distilled row names its teacher)."""
    params = {**BASE, "data": data, **ROWS[row]}
    if "teacher" in ROWS[row]:  # one teacher per split, trained on that split's images
        params["teacher"] = ROWS[row]["teacher"].format(root=root, seed=seed)
    return params


def run(root: Path, rows: list[str], data: str, seeds: list[int]) -> pd.DataFrame:
    """Train every (row, seed) still missing, one row after the other."""
    for row in rows:
        print(f"\n== {row}: {json.dumps(ROWS[row])}", flush=True)
        for s in seeds:
            run_row(folder_name(row), row_params(row, data, root, s), root, [s])
    return report(root, rows, seeds)


def report(root: Path, rows: list[str], seeds: list[int]) -> pd.DataFrame:
    """The table of every row whose seeds have all finished (written to ablation.json)."""
    summaries = []
    for row in rows:
        folders = [root / folder_name(row) / f"split{s}-seed{BASE['seed']}" for s in seeds]
        files = [f / "test_scores.json" for f in folders]
        if all(f.is_file() for f in files):
            summaries.append(summary_row(row, [json.loads(f.read_text()) for f in files]))
    table = pd.DataFrame(summaries).set_index("row")
    write_json(root / "ablation.json", table.reset_index().to_dict("records"))
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=str(TRASHNET))
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--resume", default=None, metavar="RUN_DIR")
    ap.add_argument(
        "--report",
        action="store_true",
        help="with --resume: print the table of finished rows, train nothing",
    )
    ap.add_argument(
        "--only-seeds",
        type=int,
        nargs="+",
        default=None,
        help="with --resume: train only these split seeds (one process per seed "
        "uses both cores better on a busy machine)",
    )
    ap.add_argument(
        "--only-rows",
        nargs="+",
        default=None,
        choices=list(ROWS),
        metavar="ROW",
        help="with --resume: train only these rows (the rest wait for a later --resume)",
    )
    args = ap.parse_args()
    if args.resume:
        root = Path(args.resume)
        spec = json.loads((root / "benchmark.json").read_text())
        if args.only_seeds:
            spec["seeds"] = args.only_seeds
        if args.only_rows:
            spec["rows"] = args.only_rows
    else:
        root = new_run_dir("ablation")
        spec = {"rows": args.rows, "data": str(Path(args.data).resolve()), "seeds": args.seeds}
        write_json(root / "benchmark.json", spec)
    print(describe(root, spec["seeds"]), flush=True)
    if args.report:
        table = report(
            root, spec["rows"], json.loads((root / "benchmark.json").read_text())["seeds"]
        )
    else:
        table = run(root, spec["rows"], spec["data"], spec["seeds"])
    cols = [
        "runs",
        "test macro-F1 (last epoch)",
        "test macro-F1 (best by val)",
        "val macro-F1",
        "MACs",
        "training s",
    ]
    print("\n" + table[cols].to_markdown())
    print("\nper class (test F1):\n" + table.drop(columns=cols).to_markdown())


if __name__ == "__main__":
    main()
