"""Apply every chapter-7 technique to a TrashNet checkpoint and print the table.

    python benchmarks/compress_trashnet.py --checkpoint <quick run>/seed0/best.pt
    python benchmarks/compress_trashnet.py --resume outputs/<run>-compress-trashnet

Use a checkpoint trained on the honest protocol (benchmarks/protocol.py, ``test_fraction``
> 0): every variant is then scored on the run's held-back test images, which chose nothing.
Each step's rows are evaluated and written to ``variants.csv`` as soon as the step is done,
and every training run resumes, so an interrupted benchmark keeps what it finished.

Steps, cheapest first: ``onnx`` (ONNX Runtime fp32 + static int8), ``continued`` (the
original trained ``--finetune-epochs`` more: the fair baseline for the fine-tuned variants),
``pruned`` (to 60% of the MACs + fine-tuning), ``decomposed`` (Tucker-2/SVD rank x0.5 +
fine-tuning), ``scan`` (pruning sensitivity: F1 against kept MACs, ``--scan-epochs`` of
fine-tuning per ratio, written to ``sensitivity.csv``), ``distilled`` (student alone and
distilled, ``--epochs`` each), ``arcface`` (not in the default list:
benchmarks/metric_learning.py studies it).

Targets (2 CPU cores): an int8 or ONNX Runtime variant >= 2x faster at batch 1 than the eager
float model with macro-F1 within 0.01; a pruned variant at <= 60% of the original MACs within
0.02 macro-F1 after fine-tuning.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from trashkit.compress import evaluate_candidate, variants_table
from trashkit.compress import pipeline as cp
from trashkit.runs import new_run_dir, write_atomic, write_json

STEPS = ("onnx", "continued", "pruned", "decomposed", "scan", "distilled", "arcface")
DEFAULT = "onnx,continued,pruned,decomposed,scan,distilled"
COLS = [
    "macro_f1",
    "MACs",
    "params",
    "size_kB",
    "latency_ms",
    "latency_p90_ms",
    "speed-up vs first",
    "score_macs",
    "score_time",
    "note",
]


def parse() -> argparse.Namespace:
    """The command line; with ``--resume`` the saved arguments of that run (so it finishes
    exactly the benchmark it started)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint")
    ap.add_argument("--resume", default=None, metavar="RUN_DIR")
    ap.add_argument("--epochs", type=int, default=30, help="student (and ArcFace) training")
    ap.add_argument("--finetune-epochs", type=int, default=10)
    ap.add_argument("--student", default="mobilenetv3:width=0.5,depth=0.5")
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.7)
    ap.add_argument("--scan", default="0.8,0.6,0.4,0.25", help="MACs ratios of the scan")
    ap.add_argument("--scan-epochs", type=int, default=5)
    ap.add_argument("--latency-runs", type=int, default=200)
    ap.add_argument(
        "--only",
        default=DEFAULT,
        help=f"comma-separated subset of {','.join(STEPS)} (original always runs)",
    )
    args = ap.parse_args()
    if args.resume:
        saved = json.loads((Path(args.resume) / "benchmark.json").read_text())
        args = argparse.Namespace(**{**saved, "resume": args.resume})
    elif not args.checkpoint:
        ap.error("--checkpoint (or --resume) is required")
    if set(args.only.split(",")) - set(STEPS):
        ap.error(f"--only: unknown step(s) {sorted(set(args.only.split(',')) - set(STEPS))}")
    return args


def build_steps(ctx: cp.Baseline, a: argparse.Namespace) -> dict:
    """Each step's candidates, built lazily (training happens when a step is called)."""
    ft = a.finetune_epochs
    return {
        "onnx": lambda: cp.onnx_candidates(ctx, int8=True),
        "continued": lambda: [cp.continued(ctx, ft)],
        "pruned": lambda: [cp.pruned(ctx, 0.6, ft)],
        "decomposed": lambda: [cp.decomposed(ctx, 0.5, ft)],
        "distilled": lambda: cp.distilled(ctx, a.student, a.epochs, a.temperature, a.alpha),
        "arcface": lambda: [cp.arcface(ctx, a.epochs)],
    }


def scan_step(ctx: cp.Baseline, args: argparse.Namespace, out: Path) -> None:
    """The pruning sensitivity scan, written to ``sensitivity.csv`` when it is done."""
    scan = cp.sensitivity_scan(ctx, [float(r) for r in args.scan.split(",")], args.scan_epochs)
    write_atomic(out / "sensitivity.csv", scan.to_csv(index=False))
    print(f"  sensitivity scan: done ({len(scan)} rows)", flush=True)


def main() -> None:
    """Build, evaluate and record each step in turn; print the table and the scan."""
    args = parse()
    out = Path(args.resume) if args.resume else new_run_dir("compress-trashnet")
    if not args.resume:
        write_json(out / "benchmark.json", {k: v for k, v in vars(args).items() if k != "resume"})
    t0 = time.perf_counter()
    ctx = cp.Baseline(args.checkpoint, out)
    print(
        f"{args.checkpoint}: {ctx.cfg.model} @ {ctx.size}px, {len(ctx.eval_labels)} "
        f"{ctx.eval_split} images of its run; run folder {out}",
        flush=True,
    )
    rows = []

    def add(candidates: list) -> None:
        rows.extend(
            evaluate_candidate(
                v, ctx.eval_images, ctx.eval_labels, ctx.n_classes, ctx.size, args.latency_runs
            )
            for v in candidates
        )
        write_atomic(out / "variants.csv", variants_table(rows).to_csv())
        print(
            f"  {', '.join(v.name for v in candidates)}: done at {time.perf_counter() - t0:.0f} s",
            flush=True,
        )

    add([cp.original(ctx)])
    steps = build_steps(ctx, args)
    for name in STEPS:
        if name not in args.only.split(","):
            continue
        if name == "scan":
            scan_step(ctx, args, out)
        else:
            add(steps[name]())
    pd.set_option("display.width", 250)
    table = variants_table(rows)
    print(table[COLS].round(4).to_markdown())
    by = {r["variant"]: r["predictions"] for r in rows}
    for name in ("ONNX Runtime fp32", "ONNX Runtime int8"):
        if name in by:
            print(
                f"{name}: same prediction as PyTorch on "
                f"{cp.agreement(by['original'], by[name]):.1%} of the {ctx.eval_split} images"
            )
    if (out / "sensitivity.csv").is_file():
        print(f"\npruning sensitivity ({args.scan_epochs} fine-tuning epochs per ratio):")
        print(pd.read_csv(out / "sensitivity.csv").round(4).to_markdown(index=False))
    print(f"total {time.perf_counter() - t0:.0f} s in this process")


if __name__ == "__main__":
    main()
