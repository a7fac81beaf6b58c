"""Apply every chapter-7 technique to the recommended TrashNet model and print the table.

    python benchmarks/compress_trashnet.py --checkpoint outputs/<run>-trashnet-quick/best.pt

Targets (2 CPU cores): an int8 or ONNX Runtime variant >= 2x faster at batch 1 than the eager
float model with macro-F1 within 0.01; a pruned variant at <= 60% of the original MACs within
0.02 macro-F1 after fine-tuning.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from trashkit.compress import evaluate_candidate, variants_table
from trashkit.compress import pipeline as cp
from trashkit.runs import new_run_dir

STEPS = ("onnx", "pruned", "decomposed", "distilled", "arcface")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--epochs", type=int, default=30, help="student and ArcFace training")
    ap.add_argument("--finetune-epochs", type=int, default=10)
    ap.add_argument("--student", default="mobilenetv3:width=0.5,depth=0.5")
    ap.add_argument("--latency-runs", type=int, default=200)
    ap.add_argument("--only", default=",".join(STEPS),
                    help=f"comma-separated subset of {','.join(STEPS)} (original always runs)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if only - set(STEPS):
        ap.error(f"--only: unknown step(s) {sorted(only - set(STEPS))}; choose from {STEPS}")
    out = new_run_dir("compress-trashnet")
    t0 = time.perf_counter()
    ctx = cp.Study(args.checkpoint, out)
    steps = {"onnx": lambda: cp.onnx_candidates(ctx, int8=True),
             "pruned": lambda: [cp.pruned(ctx, 0.6, args.finetune_epochs)],
             "decomposed": lambda: [cp.decomposed(ctx, 0.5, args.finetune_epochs)],
             "distilled": lambda: cp.distilled(ctx, args.student, args.epochs),
             "arcface": lambda: [cp.arcface(ctx, args.epochs)]}
    variants = [cp.original(ctx)]
    for name in STEPS:
        if name in only:
            variants += steps[name]()
    rows = [evaluate_candidate(v, ctx.eval_images, ctx.eval_labels, ctx.n_classes, ctx.size,
                             args.latency_runs) for v in variants]
    table = variants_table(rows)
    table.to_csv(out / "variants.csv")
    pd.set_option("display.width", 250)
    print(f"{args.checkpoint}: {ctx.cfg.model} @ {ctx.size}px, {len(ctx.eval_labels)} "
          f"{ctx.eval_split} images of its run; run folder {out}; total "
          f"{time.perf_counter() - t0:.0f} s")
    cols = ["macro_f1", "MACs", "params", "size_kB", "latency_ms", "latency_p90_ms",
            "speed-up vs first", "score_macs", "score_time", "note"]
    print(table[cols].round(4).to_markdown())
    by = {r["variant"]: r["predictions"] for r in rows}
    for name in ("ONNX Runtime fp32", "ONNX Runtime int8"):
        if name in by:
            print(f"{name}: same prediction as PyTorch on "
                  f"{cp.agreement(by['original'], by[name]):.1%} of the held-out images")


if __name__ == "__main__":
    main()
