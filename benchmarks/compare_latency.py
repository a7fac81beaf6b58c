"""Batch-1 CPU latency of models side by side, interleaved, each at its own input size.

    python benchmarks/compare_latency.py outputs/<run-a>/best.pt outputs/<run-b>/best.pt
    python benchmarks/compare_latency.py --compress-run outputs/<run>-compress-trashnet \
        outputs/<run>-trashnet-quick/seed0/best.pt

Takes trashkit checkpoints and ONNX files (``.onnx``, timed through ONNX Runtime at the size
of the first checkpoint); ``--compress-run`` adds every variant a compress_trashnet.py run
saved (pruned, decomposed, distilled student, ONNX fp32/int8). Every round runs each model
once in turn, so drifting load on a shared machine hits them all alike; the speed-up column
is relative to the first model. MACs and F1 come from each run's metrics.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from trashkit.checkpoint import load_checkpoint
from trashkit.complexity import interleaved_latency
from trashkit.compress import OrtModel

VARIANTS = (
    ("pruned", "pruned_ft/best.pt"),
    ("decomposed", "decomposed_ft/best.pt"),
    ("student distilled", "student_kd/best.pt"),
    ("ONNX Runtime fp32", "model.onnx"),
    ("ONNX Runtime int8", "model.int8.onnx"),
)


def collect(paths: list[Path], compress_run: Path | None) -> dict[str, Path]:
    named = {f"{p.parent.name}/{p.name}": p for p in paths}
    if compress_run is not None:
        named.update(
            {name: compress_run / rel for name, rel in VARIANTS if (compress_run / rel).is_file()}
        )
    return named


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help="best.pt / last.pt / .onnx files")
    ap.add_argument("--compress-run", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    models, info, size = {}, {}, None
    for name, path in collect(args.models, args.compress_run).items():
        if path.suffix == ".onnx":
            models[name], info[name] = OrtModel(path), (size, "not countable (ONNX)", None)
        else:
            ckpt = load_checkpoint(path)
            size = size or ckpt.image_size
            metrics = path.parent / "metrics.json"
            m = json.loads(metrics.read_text()) if metrics.is_file() else {}
            models[name] = ckpt.build_model()
            info[name] = (ckpt.image_size, m.get("macs"), m.get("val_macro_f1"))
    inputs = {k: (m, torch.zeros(1, 3, info[k][0], info[k][0])) for k, m in models.items()}
    df = interleaved_latency(inputs, rounds=args.rounds)
    print(
        f"batch 1, {args.rounds} interleaved rounds, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print("| model | size | MACs | val macro-F1 | median ms | p90 ms | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in df.itertuples():
        s, macs, f1 = info[r.model]
        macs_s = f"{macs:,.0f}" if isinstance(macs, int) else macs or "-"
        f1_s = f"{f1:.4f}" if f1 is not None else "-"
        print(
            f"| {r.model} | {s or size} | {macs_s} | {f1_s} "
            f"| {r.median_ms:.2f} | {r.p90_ms:.2f} | {r.speedup:.2f}x |"
        )


if __name__ == "__main__":
    main()
