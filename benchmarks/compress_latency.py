"""Re-time the variants of a compress_trashnet.py run side by side, interleaved.

    python benchmarks/compress_latency.py outputs/<run>-compress-trashnet \
        --original outputs/<run>-trashnet-quick/best.pt

Every round times each variant once (batch 1, CPU) in turn, so machine noise hits them all
alike; prints the median and p90 over rounds and the speed-up over the eager float original.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trashkit.complexity import interleaved_latency  # noqa: E402
from trashkit.compress import OrtModel  # noqa: E402
from trashkit.scoring import load_checkpoint  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--original", required=True)
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    run = Path(args.run)
    orig = load_checkpoint(args.original)
    size = orig.image_size
    models = {"original (eager fp32)": orig.model.eval()}
    for name, sub in (("pruned", "pruned_ft"), ("decomposed", "decomposed_ft"),
                      ("student distilled", "student_kd")):
        if (run / sub / "best.pt").is_file():
            models[name] = load_checkpoint(run / sub / "best.pt").model.eval()
    for name, f in (("ONNX Runtime fp32", "model.onnx"), ("ONNX Runtime int8", "model.int8.onnx")):
        if (run / f).is_file():
            models[name] = OrtModel(run / f)
    x = torch.zeros(1, 3, size, size)
    df = interleaved_latency({k: (m, x) for k, m in models.items()}, rounds=args.rounds)
    print(f"batch 1, {size}px, {args.rounds} interleaved rounds, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("| variant | median ms | p90 ms | speed-up vs eager fp32 |\n|---|---:|---:|---:|")
    for r in df.itertuples():
        print(f"| {r.model} | {r.median_ms:.2f} | {r.p90_ms:.2f} | {r.speedup:.2f}x |")


if __name__ == "__main__":
    main()
