"""What a finished run leaves behind: ``metrics.json``, the confusion matrix and two plots."""

from __future__ import annotations

import pandas as pd
import torch

from ..checkpoint import load_checkpoint
from ..complexity import official_macs
from ..metrics import f1_report, predict
from ..plots import plot_confusion, plot_history
from ..runs import write_csv, write_json
from .loop import Run


def write_report(run: Run) -> dict:
    """Evaluate ``best.pt`` on the validation images and write the run's report (rank 0).

    The test images (``test_fraction``) are *not* looked at here: a training run only ever
    sees its own validation split. Chapter 5 and the benchmarks score the test split.
    """
    if not run.dist.main:
        return {"rank": run.rank, "run_dir": str(run.out)}
    best = load_checkpoint(run.out / "best.pt")
    p = predict(best.build_model(run.device), run.val_batches, run.device, run.cfg.channels_last)
    report = f1_report(p.true, p.pred, run.data.classes)
    cpu_net = best.build_model("cpu")
    metrics = {
        "val_macro_f1": report["macro_f1"],
        "val_acc": report["accuracy"],
        "best_epoch": int(best.epoch) + 1,
        "last_val_macro_f1": run.history[-1]["val_macro_f1"] if run.history else None,
        "val_classes": report["covered_classes"],
        "val_per_class_f1": {c: r["f1-score"] for c, r in report["per_class"].items()},
        "macs": official_macs(cpu_net, run.cfg.image_size),
        "params": sum(t.numel() for t in cpu_net.parameters()),
        "input_size": run.cfg.image_size,
        "epochs": run.cfg.epochs,
        "wall_seconds": run.wall,
        "device": torch.cuda.get_device_name(run.device) if run.device.type == "cuda" else "cpu",
        "world_size": run.dist.world,
        "amp": str(run.amp_dtype).replace("torch.", "") if run.amp_dtype else "off",
        "torch": torch.__version__,
        "model": run.cfg.model,
        "data": run.data.source,
        "classes": run.data.classes,
        **run.data.summary(),
        "test_fraction": run.cfg.test_fraction,
        "split_seed": run.cfg.split_seed,
        "skipped_files": [str(s[0]) for s in run.data.skipped],
        "notes": run.notes,
        "run_dir": str(run.out),
    }
    write_json(run.out / "metrics.json", metrics)
    cm = report["confusion"]
    write_csv(
        run.out / "confusion.csv",
        pd.DataFrame(cm, index=run.data.classes, columns=run.data.classes),
    )
    import matplotlib.pyplot as plt

    for fig in (
        plot_history(pd.DataFrame(run.history), run.out / "curves.png"),
        plot_confusion(cm, run.data.classes, run.out / "confusion.png"),
    ):
        plt.close(fig)
    return metrics
