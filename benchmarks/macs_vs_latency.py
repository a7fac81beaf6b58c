"""Official MACs vs. measured batch-1 latency over torchvision's small models (chapter 2).

    python benchmarks/macs_vs_latency.py --sizes 112 156 224 --runs 30
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trashkit.complexity.study import latency_study  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[112, 156, 224])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    df = latency_study(sizes=tuple(args.sizes), runs=args.runs, threads=args.threads,
                       progress=False)
    print(f"{df.attrs['device']}, {df.attrs['threads']} threads, torch {df.attrs['torch']}, "
          f"median of {args.runs} runs, batch 1")
    print(df.sort_values(["size", "MACs (M)"]).round(2).to_markdown(index=False))
    print(f"\nSpearman rank correlation (MACs vs latency): {df.attrs['spearman']:.2f} "
          f"(p = {df.attrs['p_value']:.1g}, n = {len(df)})")


if __name__ == "__main__":
    main()
