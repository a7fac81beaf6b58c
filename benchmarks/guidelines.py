"""ShuffleNet V2 guideline experiments G1-G4, full size, printed beside the paper's tables.

    python benchmarks/guidelines.py                 # CPU (and CUDA too when present)
    python benchmarks/guidelines.py --runs 100 --device cpu --threads 2

Each table: our median / p90 latency and images/s per variant, our speed relative to the first
row, and the paper's relative speeds (Ma et al., ECCV 2018, Tables 1-4), then a verdict.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trashkit.complexity import guidelines as gl  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", nargs="*", default=list(gl.EXPERIMENTS))
    ap.add_argument("--markdown", action="store_true", help="print tables as Markdown")
    args = ap.parse_args()
    devices = ["cpu", "cuda"] if args.device == "auto" and torch.cuda.is_available() else \
        (["cpu"] if args.device == "auto" else [args.device])
    pd.set_option("display.width", 220)
    print(gl.CITATION)
    for dev in devices:
        for name in args.only:
            df = gl.run_experiment(name, batch=args.batch, runs=args.runs, device=dev,
                                   threads=args.threads)
            verdict, why = gl.verdict(df)
            print(f"\n### {name} - {df.attrs['claim']}")
            print(f"{df.attrs['device']}, {df.attrs['threads']} threads, torch "
                  f"{df.attrs['torch']}, batch {args.batch}, width {df.attrs['width']}, "
                  f"median of {args.runs} runs, 56x56, 10 blocks")
            df["conv MMACs"] = df["conv MACs"] / 1e6
            cols = ["conv MMACs", "median ms", "p90 ms", "images/s", "relative speed"] + \
                [c for c in df.columns if c.startswith("paper")]
            table = df[cols].round(2)
            print(table.to_markdown() if args.markdown else table.to_string())
            print(f"verdict: {verdict} - {why}")


if __name__ == "__main__":
    main()
