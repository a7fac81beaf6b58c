"""Official MACs vs. measured batch-1 latency over torchvision's small models (chapter 2).

    python benchmarks/macs_vs_latency.py --sizes 112 156 224 --runs 30 --repeats 3

Prints every (model, size) with its latency range over the repetitions, the Spearman rank
correlation of MACs and latency PER INPUT SIZE (and pooled, which mixes sizes and is inflated
by "bigger inputs are slower"), and at each size the models that pay the most per MAC.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load() -> str:
    """The 1/5/15-minute load averages (how busy the machine was)."""
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    from trashkit.complexity.study import (
        correlation_by_size,
        latency_study,
        slower_than_macs_suggest,
    )

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[112, 156, 224])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    print(f"start: {load()}")
    df = latency_study(
        sizes=tuple(args.sizes),
        runs=args.runs,
        repeats=args.repeats,
        threads=args.threads,
        progress=False,
    )
    print(f"end: {load()}")
    print(
        f"{df.attrs['device']}, {df.attrs['threads']} threads, torch {df.attrs['torch']}, "
        f"batch 1, median of {args.repeats} repetitions x median of {args.runs} runs\n"
    )
    print(df.sort_values(["size", "MACs (M)"]).round(2).to_markdown(index=False))
    print("\nSpearman rank correlation of MACs and latency, per input size and pooled:\n")
    print(correlation_by_size(df).round(3).to_markdown())
    for size in args.sizes:
        print(f"\nMost expensive MACs at {size}px (vs size median = price per MAC / median):\n")
        print(slower_than_macs_suggest(df, size).round(2).to_markdown(index=False))


if __name__ == "__main__":
    main()
