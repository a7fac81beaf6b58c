"""ShuffleNet V2 guideline experiments G1-G4, printed beside the paper's tables (chapter 3).

    python benchmarks/guidelines.py --markdown                  # both settings, CPU (+ CUDA)
    python benchmarks/guidelines.py --settings ARM --repeats 7 --runs 20 --device cpu

Each table: per variant the median ms (median of the repetitions' medians) with its range, the
speed relative to the first row with its range (the ratio is taken within each repetition,
then the median and range over repetitions), whether the row is faster / slower / within the
noise of the first, the conv MACs (the paper's "FLOPs") and the paper's relative speeds. Then a
verdict that only counts a difference whose whole range lies on one side of 1. The load
average is printed before and after: on a shared machine, say so beside the numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLUMNS = [
    "median ms",
    "ms lo",
    "ms hi",
    "relative speed",
    "rel lo",
    "rel hi",
    "vs first row",
    "conv MMACs",
    "MACs vs first",
]


def load() -> str:
    """The 1/5/15-minute load averages (how busy the machine was)."""
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def show(df: pd.DataFrame, markdown: bool) -> None:
    """Print one experiment's table and verdict."""
    from trashkit.complexity import guidelines as gl

    verdict, why = gl.verdict(df)
    a = df.attrs
    print(f"\n### {a['experiment']} ({a['setting']} widths) - paper: {a['claim']}")
    print(
        f"{a['device']}, {a['threads']} threads, torch {a['torch']}, batch {a['batch']}, "
        f"56x56, 10 blocks, {a['repeats']} repetitions x median of {a['runs']} runs; ranges "
        f"are min-max over repetitions ({a['confidence']:.0%} interval for the median)"
    )
    df = df.assign(**{"conv MMACs": df["conv MACs"] / 1e6})
    table = df[COLUMNS + [c for c in df.columns if c.startswith("paper")]].round(2)
    print(table.to_markdown() if markdown else table.to_string())
    print(f"verdict: {verdict} - {why}")


def main() -> None:
    from trashkit.complexity import guidelines as gl

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--settings", nargs="*", default=list(gl.SETTINGS), choices=gl.SETTINGS)
    ap.add_argument("--only", nargs="*", default=list(gl.EXPERIMENTS))
    ap.add_argument("--markdown", action="store_true", help="print tables as Markdown")
    args = ap.parse_args()
    devices = (
        ["cpu", "cuda"]
        if args.device == "auto" and torch.cuda.is_available()
        else (["cpu"] if args.device == "auto" else [args.device])
    )
    pd.set_option("display.width", 250)
    print(gl.CITATION)
    print(f"start: {load()}")
    results = {}
    for dev in devices:
        for name in args.only:
            for setting in args.settings:
                if name == "G4" and setting != args.settings[0]:
                    continue  # G4 uses c = 32 in both of the paper's x1 columns
                df = gl.run_experiment(
                    name,
                    setting,
                    repeats=args.repeats,
                    runs=args.runs,
                    batch=args.batch,
                    device=dev,
                    threads=args.threads,
                )
                results[f"{name} {setting} {dev}"] = df
                show(df, args.markdown)
    print(f"\nend: {load()}\n")
    summary = gl.summary_table(results)
    print(summary.to_markdown() if args.markdown else summary.to_string())


if __name__ == "__main__":
    main()
