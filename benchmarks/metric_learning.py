"""Metric learning on TrashNet: ArcFace against softmax, three predictors, a new class, an
"unknown" threshold, the cost of the search (chapter 8's experiments, run by the same functions:
trashkit.metric_learning).

    python benchmarks/metric_learning.py                       # everything (hours on 2 cores)
    python benchmarks/metric_learning.py --resume outputs/<run>-metric-learning
    python benchmarks/metric_learning.py --only arcface        # one group of training runs
    python benchmarks/metric_learning.py --resume <run> --tables newclass unknown

1. **ArcFace vs softmax** (benchmarks/protocol.py: test 20% / val 10% of each class per split
   seed, best.pt chosen on val, test scored once): the ArcFace head (``arcface:<backbone>``,
   loss ``arcface``, the library's defaults) on the softmax baseline's backbone, epochs and
   splits. The softmax numbers are read from an ablation run's ``baseline`` row
   (``--baseline``: benchmarks/ablation.py) or trained here when none is given.
2. **Three predictors** on the same test images of each split: nearest learned centre,
   nearest class mean of the training embeddings, k nearest training embeddings by cosine,
   and the single nearest (1-NN); macro-F1 and official MACs (the search counted as the
   ``Linear`` it is).
3. **Serving cost** of the nearest-neighbour search, batch 1, 100 -> 20,000 stored
   embeddings: brute force in torch, faiss (exact flat and approximate HNSW), scikit-learn.
4. **A new class without retraining**: one class held out of training (split seed 0); it is
   added from k = 1, 5, 10, 20 of its images, against fine-tuning a softmax head on the same
   k images.
5. **"None of the known classes"**: the same held-out class as the unknown; a threshold on
   the best cosine (to a learned centre, or to a stored training embedding), chosen on the
   validation images only, scored once on the test images.

Run folders: ``<root>/<row>/split<k>-seed<t>`` (benchmarks/protocol.py's ``run_row``); every
run records ``chapter: 8`` and its row as ``kind`` in its config.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pandas as pd
import torch
from protocol import (
    RECOMMENDED,
    SPLIT_SEEDS,
    TRASHNET,
    describe,
    mean_sd,
    run_row,
)
from trashkit import embeddings as em
from trashkit import metric_learning as ml
from trashkit.runs import new_run_dir, write_json

EPOCHS = 30


def recipes(spec: dict) -> tuple[dict, dict]:
    """(softmax, ArcFace) training parameters: the baseline's, at the benchmark's image size
    and epochs (defaults 128 px and 30 epochs: the ablation's baseline row), recorded as
    chapter 8's runs."""
    base = {
        **RECOMMENDED,
        "data": spec["data"],
        "epochs": spec.get("epochs", EPOCHS),
        "image_size": spec.get("image_size", RECOMMENDED["image_size"]),
    }
    return ml.softmax_params(base), ml.arcface_params(base)


HOLDOUT = "metal"
K_NN = 5
DRAWS = 5  # draws of the k images of the new class (mean +- sd over draws)
SHOTS = (1, 5, 10, 20)
STORED = (100, 1_000, 5_000, 20_000)
INDEXES = ("torch", "faiss-flat", "faiss-hnsw", "sklearn")
TABLES = ("comparison", "predictors", "newclass", "unknown", "latency")
SEED = RECOMMENDED["seed"]  # the training seed of every run (run_row's default)


def baseline_results(spec: dict, root: Path) -> list[dict]:
    """The softmax rows: an ablation run's ``baseline`` folder, or trained here."""
    if spec.get("baseline"):
        out = []
        for s in spec["seeds"]:
            f = Path(spec["baseline"]) / "baseline" / f"split{s}-seed{SEED}" / "test_scores.json"
            if not f.is_file():
                raise FileNotFoundError(
                    f"{f} is missing: finish that ablation run first "
                    "(benchmarks/ablation.py --resume), or run without "
                    "--baseline to train the softmax row here"
                )
            out.append(json.loads(f.read_text()))
        return out
    return run_row("softmax", recipes(spec)[0], root, spec["seeds"])


def train_stage(
    spec: dict, root: Path, parts: tuple[str, ...] = ("arcface", "softmax", "holdout")
) -> dict:
    """Every training run of the benchmark (each resumable, skipped when done); ``parts``
    lets several processes train the groups side by side."""
    runs, (base, arcface) = {}, recipes(spec)
    if "arcface" in parts:
        print("\n== ArcFace head, same protocol as the softmax baseline", flush=True)
        runs["arcface"] = run_row("arcface", arcface, root, spec["seeds"])
    if "softmax" in parts:
        print("\n== softmax baseline", flush=True)
        runs["softmax"] = baseline_results(spec, root)
    if "holdout" in parts:
        held = spec["holdout"]
        print(f"\n== without class {held!r} (new class and unknown experiments)", flush=True)
        for name, params in (("arcface-without", arcface), ("softmax-without", base)):
            params = ml.without_class({**params, "kind": name.replace("-", "_")}, held)
            runs[name] = run_row(name, params, root, [0])
    return runs


def comparison_table(runs: dict) -> pd.DataFrame:
    """Test macro-F1 per split seed and mean +- sd, ArcFace against softmax."""
    rows = []
    for name in ("softmax", "arcface"):
        f1 = [r["test_f1"] for r in runs[name]]
        rows.append(
            {
                "head": name,
                **{f"seed {i}": round(v, 4) for i, v in enumerate(f1)},
                "test macro-F1": mean_sd(f1),
                "val macro-F1": mean_sd([r["val_f1"] for r in runs[name]]),
                "MACs": f"{int(runs[name][0]['macs']):,}",
                "training s": round(statistics.fmean(r["train_seconds"] for r in runs[name])),
            }
        )
    gap = [a["test_f1"] - s["test_f1"] for a, s in zip(runs["arcface"], runs["softmax"])]
    rows.append({"head": "ArcFace - softmax", "test macro-F1": mean_sd(gap)})
    return pd.DataFrame(rows).set_index("head")


def predictors_stage(root: Path, seeds: list[int]) -> pd.DataFrame:
    """Macro-F1 of the three predictors (and 1-NN) on each split's test images, and MACs."""
    per_seed = [
        ml.predictors_table(root / "arcface" / f"split{seed}-seed{SEED}", K_NN).assign(seed=seed)
        for seed in seeds
    ]
    df = pd.concat(per_seed).reset_index()
    return df.groupby("predictor", sort=False).agg(
        **{
            "test macro-F1": ("test macro-F1", lambda v: mean_sd(list(v))),
            "vectors stored": ("vectors stored", "first"),
            "official MACs (backbone + head / search)": (
                "official MACs",
                lambda v: f"{v.iloc[0]:,}",
            ),
        }
    )


def latency_stage(stored=STORED, kinds=INDEXES) -> pd.DataFrame:
    """Batch-1 search latency as the number of stored embeddings grows."""
    rows = [em.search_latency(kind, n) for n in stored for kind in kinds]
    df = pd.DataFrame(rows)
    table = df.pivot(index="n_stored", columns="name", values="median_ms").round(3)
    table["MACs per query (n x 512)"] = [f"{n * 512:,}" for n in table.index]
    recall = df[df["index"] == "faiss-hnsw"].set_index("n_stored")["recall_at_k"]
    table["HNSW recall@5 (random vectors)"] = recall.round(3)
    return table


def holdout(spec: dict, root: Path) -> ml.Holdout:
    """The held-out class and the five-class runs (split seed 0), embedded once."""
    runs = {n: root / n / f"split0-seed{SEED}" for n in ("arcface-without", "softmax-without")}
    return ml.holdout_embeddings(
        runs["arcface-without"], runs["softmax-without"], spec["data"], spec["holdout"]
    )


def newclass_stage(h: ml.Holdout) -> pd.DataFrame:
    """Add the held-out class from k of its images: ArcFace (a new centre, or stored
    embeddings) against fine-tuning a softmax head on the same k images."""
    df = ml.new_class_experiment(h, SHOTS, DRAWS)
    agg = lambda v: mean_sd(list(v))  # noqa: E731
    return df.groupby(["k", "method"], sort=False).agg(
        **{
            f"recall of '{h.holdout}'": ("new_recall", agg),
            f"precision of '{h.holdout}'": ("new_precision", agg),
            f"macro-F1 of the other {h.new}": ("others_macro_f1", agg),
        }
    )


def unknown_stage(h: ml.Holdout) -> pd.DataFrame:
    """The held-out class as "none of the known classes": threshold chosen on val only."""
    table, scores = ml.unknown_experiment(h)
    first = next(iter(scores.values()))
    table["images (val known/unknown, test known/unknown)"] = "/".join(
        str(len(first[p])) for p in ("known val", "unknown val", "known test", "unknown test")
    )
    return table.round(3)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=str(TRASHNET))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SPLIT_SEEDS))
    ap.add_argument(
        "--baseline",
        default=None,
        metavar="ABLATION_DIR",
        help="an ablation run whose baseline/seed*/test_scores.json to compare with",
    )
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument(
        "--image-size",
        type=int,
        default=RECOMMENDED["image_size"],
        help="128 = the baseline's; smaller for a cheaper proxy of the whole study",
    )
    ap.add_argument("--holdout", default=HOLDOUT, help="the class added without retraining")
    ap.add_argument(
        "--only",
        choices=("arcface", "softmax", "holdout", "all"),
        default="all",
        help="arcface / softmax / holdout: train that group only (processes can "
        "share the work); all: train what is missing, then the whole comparison",
    )
    ap.add_argument("--resume", default=None, metavar="RUN_DIR")
    ap.add_argument(
        "--tables",
        nargs="+",
        choices=TABLES,
        default=list(TABLES),
        help="the tables to print after training (default: all; each needs its runs)",
    )
    return ap.parse_args()


def open_benchmark(args: argparse.Namespace) -> tuple[Path, dict]:
    """A new benchmark folder with its spec, or the spec of the one being resumed."""
    if args.resume:
        root = Path(args.resume)
        return root, json.loads((root / "benchmark.json").read_text())
    root = new_run_dir("metric-learning")
    spec = {
        "data": str(Path(args.data).resolve()),
        "seeds": args.seeds,
        "baseline": args.baseline and str(Path(args.baseline).resolve()),
        "holdout": args.holdout,
        "epochs": args.epochs,
        "image_size": args.image_size,
    }
    write_json(root / "benchmark.json", spec)
    return root, spec


def report(spec: dict, root: Path, runs: dict, tables=TABLES) -> dict:
    """Print the chosen tables (markdown) and keep them in ``report.json``."""
    out = {}
    if "comparison" in tables:
        out["comparison"] = comparison_table(runs)
        print(
            "\n## ArcFace against softmax (test macro-F1)\n"
            + out["comparison"].to_markdown(disable_numparse=True)
        )
    if "predictors" in tables:
        out["predictors"] = predictors_stage(root, spec["seeds"])
        print(
            f"\n## Predictors (k = {K_NN}), same test images\n"
            + out["predictors"].to_markdown(disable_numparse=True)
        )
    if "newclass" in tables or "unknown" in tables:
        h = holdout(spec, root)
        where = f"{spec['holdout']!r} held out, split seed 0"
        if "newclass" in tables:
            out["newclass"] = newclass_stage(h)
            print(
                f"\n## A new class without retraining ({where}, {DRAWS} draws of the k "
                "images)\n" + out["newclass"].to_markdown(disable_numparse=True)
            )
        if "unknown" in tables:
            out["unknown"] = unknown_stage(h)
            print(
                f"\n## None of the known classes ({where})\n"
                + out["unknown"].to_markdown(disable_numparse=True)
            )
    if "latency" in tables:
        out["latency"] = latency_stage()
        print(
            f"\n## Nearest-neighbour search, batch 1, median ms (torch threads: "
            f"{torch.get_num_threads()})\n" + out["latency"].to_markdown(disable_numparse=True)
        )
    name = "report.json" if set(tables) == set(TABLES) else f"report-{'-'.join(tables)}.json"
    write_json(root / name, {k: v.reset_index().to_dict("records") for k, v in out.items()})
    return out


def main() -> None:
    args = parse_args()
    root, spec = open_benchmark(args)
    print(describe(root, spec["seeds"]), flush=True)
    if args.only != "all":
        train_stage(spec, root, (args.only,))
        return
    needs = {"comparison": ("arcface", "softmax"), "predictors": ("arcface",)}
    parts = {p for t in args.tables for p in needs.get(t, ("holdout",) if t != "latency" else ())}
    report(spec, root, train_stage(spec, root, tuple(sorted(parts))), args.tables)


if __name__ == "__main__":
    main()
