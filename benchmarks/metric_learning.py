"""Metric learning on TrashNet: ArcFace against softmax, three predictors, a new class, cost.

    python benchmarks/metric_learning.py                       # everything (hours on 2 cores)
    python benchmarks/metric_learning.py --resume outputs/<run>-metric-learning
    python benchmarks/metric_learning.py --only arcface        # one group of training runs

1. **ArcFace vs softmax** (benchmarks/protocol.py: test 20% / val 10% of each class per split
   seed, best.pt chosen on val, test scored once): the ArcFace head (``arcface:<backbone>``,
   loss ``arcface``, the library's defaults) on the softmax baseline's backbone, epochs and
   splits. The softmax numbers are read from an ablation run's ``baseline`` row
   (``--baseline``: benchmarks/ablation.py) or trained here when none is given.
2. **Three predictors** on the same test images of each split: nearest learned centre,
   nearest class mean of the training embeddings, k nearest training embeddings by cosine;
   macro-F1 and official MACs (the k-NN search counted as the ``Linear`` it is).
3. **Serving cost** of the nearest-neighbour search, batch 1, 100 -> 20,000 stored
   embeddings: brute force in torch, faiss (exact flat and approximate HNSW), scikit-learn.
4. **A new class without retraining**: one class held out of training (split seed 0); it is
   added from k = 1, 5, 10, 20 of its images, against fine-tuning a softmax head on the same
   k images.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from protocol import (
    RECOMMENDED,
    SPLIT_SEEDS,
    TEST_FRACTION,
    TRASHNET,
    VAL_FRACTION,
    describe,
    mean_sd,
    run_row,
)
from trashkit import embeddings as em
from trashkit.checkpoint import load_checkpoint
from trashkit.complexity import official_macs
from trashkit.data import make_eval_loader, prepare_split
from trashkit.runs import new_run_dir, write_json

EPOCHS = 30


def recipes(spec: dict) -> tuple[dict, dict]:
    """(softmax, ArcFace) training parameters: the baseline's, at the benchmark's image size
    and epochs (defaults 128 px and 30 epochs: the ablation's baseline row)."""
    base = {
        **RECOMMENDED,
        "data": spec["data"],
        "epochs": spec.get("epochs", EPOCHS),
        "image_size": spec.get("image_size", RECOMMENDED["image_size"]),
    }
    return base, {**base, "model": f"arcface:{RECOMMENDED['model']}", "loss": "arcface"}


HOLDOUT = "metal"
K_NN = 5
DRAWS = 5  # draws of the k images of the new class (mean +- sd over draws)
SHOTS = (1, 5, 10, 20)
STORED = (100, 1_000, 5_000, 20_000)
INDEXES = ("torch", "faiss-flat", "faiss-hnsw", "sklearn")


def without_class(data: Path, holdout: str, root: Path) -> Path:
    """An image folder of ``data``'s classes except ``holdout``, as links (nothing copied)."""
    folder = root / f"data-without-{holdout}"
    folder.mkdir(parents=True, exist_ok=True)
    for d in sorted(p for p in Path(data).iterdir() if p.is_dir()):
        link = folder / d.name
        if d.name != holdout and not link.exists():
            os.symlink(d.resolve(), link, target_is_directory=True)
    return folder


def baseline_results(spec: dict, root: Path) -> list[dict]:
    """The softmax rows: an ablation run's ``baseline`` folder, or trained here."""
    if spec.get("baseline"):
        out = []
        for s in spec["seeds"]:
            f = Path(spec["baseline"]) / "baseline" / f"seed{s}" / "test_scores.json"
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
        held = str(without_class(Path(spec["data"]), spec["holdout"], root))
        print(f"\n== without class {spec['holdout']!r} (the new-class experiment)", flush=True)
        runs["arcface-without"] = run_row("arcface-without", {**arcface, "data": held}, root, [0])
        runs["softmax-without"] = run_row("softmax-without", {**base, "data": held}, root, [0])
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


def split_of(ckpt):
    """The run's data split, rebuilt from its config (the images it trained and tested on)."""
    c = ckpt.config
    return prepare_split(
        c["data"],
        c["image_size"],
        c["val_fraction"],
        c["test_fraction"],
        c["split_seed"],
        c.get("classes"),
        progress=False,
    )


def embedded(model, data, idx) -> em.Embedded:
    return em.embed(model, make_eval_loader(data.cache, idx))


def predictors_stage(root: Path, seeds: list[int]) -> pd.DataFrame:
    """Macro-F1 of the three predictors on each split's test images, and their MACs."""
    rows = []
    for seed in seeds:
        ckpt = load_checkpoint(root / "arcface" / f"seed{seed}" / "best.pt")
        model, data = ckpt.build_model(), split_of(ckpt)
        train = embedded(model, data, data.train_idx)
        test = embedded(model, data, data.test_idx)
        preds = em.three_predictors(model, train, test, len(data.classes), K_NN)
        preds["1 nearest neighbour"] = em.knn_predict(test, train, 1, len(data.classes))
        size = ckpt.image_size
        macs = {
            "centre": official_macs(model, size),
            "knn": official_macs(em.GalleryNet(model, train.vectors), size),
        }
        for name, p in preds.items():
            rows.append(
                {
                    "predictor": name,
                    "seed": seed,
                    "f1": em.macro_f1_of(p, test.labels, len(data.classes)),
                    "macs": macs["knn" if "neighbour" in name else "centre"],
                    "stored": len(train) if "neighbour" in name else len(data.classes),
                }
            )
    df = pd.DataFrame(rows)
    return df.groupby("predictor", sort=False).agg(
        **{
            "test macro-F1": ("f1", lambda v: mean_sd(list(v))),
            "vectors stored": ("stored", "first"),
            "official MACs (backbone + head / search)": ("macs", lambda v: f"{v.iloc[0]:,}"),
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


def holdout_images(spec: dict, model, seed: int = 0):
    """The held-out class's embeddings: its test images (the 6-class split's test share) and
    the pool its k images are drawn from (the rest), both unseen by the 5-class runs."""
    full = prepare_split(
        spec["data"],
        recipes(spec)[0]["image_size"],
        VAL_FRACTION,
        TEST_FRACTION,
        seed,
        progress=False,
    )
    label = full.classes.index(spec["holdout"])
    pick = lambda idx: idx[full.cache.labels[idx] == label]  # noqa: E731
    return (
        embedded(model, full, pick(full.test_idx)),
        embedded(model, full, pick(np.concatenate([full.train_idx, full.val_idx]))),
        full,
        label,
    )


def newclass_stage(spec: dict, root: Path) -> pd.DataFrame:
    """Add the held-out class from k of its images: ArcFace (a new centre, or stored
    embeddings) against fine-tuning a softmax head on the same k images."""
    arc = load_checkpoint(root / "arcface-without" / "seed0" / "best.pt")
    soft = load_checkpoint(root / "softmax-without" / "seed0" / "best.pt")
    model, smodel, data = arc.build_model(), soft.build_model(), split_of(arc)
    new = len(data.classes)
    train, test = embedded(model, data, data.train_idx), embedded(model, data, data.test_idx)
    feats, flabels = em.penultimate(smodel, make_eval_loader(data.cache, data.train_idx))
    tfeats, tlabels = em.penultimate(smodel, make_eval_loader(data.cache, data.test_idx))
    new_test, pool, full, label = holdout_images(spec, model)
    pool_f, _ = em.penultimate(smodel, make_eval_loader(full.cache, _pool_idx(full, label)))
    newt_f, _ = em.penultimate(smodel, make_eval_loader(full.cache, _test_idx(full, label)))
    true = np.concatenate([test.labels, np.full(len(new_test), new)])
    queries = torch.cat([test.vectors, new_test.vectors])
    squeries = torch.cat([tfeats, newt_f])
    head = [m for m in smodel.modules() if isinstance(m, torch.nn.Linear)][-1]
    rows = []
    for k in SHOTS:
        for draw in range(DRAWS):
            pick = np.random.default_rng(draw).permutation(len(pool))[:k]
            support = em.Embedded(pool.vectors[pick], np.full(k, new))
            methods = {
                "ArcFace: learned centres + mean of the k": em.nearest_centre(
                    queries, em.add_class(em.learned_centres(model), support)
                ),
                "ArcFace: 1-NN over training + k stored": em.knn_predict(
                    queries, train + support, 1, new + 1
                ),
            }
            h = em.finetune_head(
                head,
                torch.cat([feats, pool_f[pick]]),
                np.concatenate([flabels, np.full(k, new)]),
                new + 1,
            )
            with torch.no_grad():
                methods["softmax: head fine-tuned on the k"] = h(squeries).argmax(1).numpy()
            for name, p in methods.items():
                rows.append(
                    {"k": k, "method": name, "draw": draw, **em.new_class_scores(p, true, new)}
                )
    return _newclass_table(pd.DataFrame(rows), spec["holdout"])


def _pool_idx(full, label):
    idx = np.concatenate([full.train_idx, full.val_idx])
    return idx[full.cache.labels[idx] == label]


def _test_idx(full, label):
    return full.test_idx[full.cache.labels[full.test_idx] == label]


def _newclass_table(df: pd.DataFrame, holdout: str) -> pd.DataFrame:
    agg = lambda v: mean_sd(list(v))  # noqa: E731
    return df.groupby(["k", "method"], sort=False).agg(
        **{
            f"recall of '{holdout}'": ("new_recall", agg),
            f"precision of '{holdout}'": ("new_precision", agg),
            "macro-F1 of the other 5": ("others_macro_f1", agg),
        }
    )


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


def report(spec: dict, root: Path, runs: dict) -> dict:
    """Print every table of the comparison (markdown) and keep them in ``report.json``."""
    out = {"comparison": comparison_table(runs)}
    print("\n## ArcFace against softmax (test macro-F1)\n" + out["comparison"].to_markdown())
    out["predictors"] = predictors_stage(root, spec["seeds"])
    print(
        f"\n## Three predictors (k = {K_NN}), same test images\n" + out["predictors"].to_markdown()
    )
    out["newclass"] = newclass_stage(spec, root)
    print(
        f"\n## A new class without retraining ({spec['holdout']!r} held out, split seed 0, "
        f"{DRAWS} draws of the k images)\n" + out["newclass"].to_markdown()
    )
    out["latency"] = latency_stage()
    print(
        f"\n## Nearest-neighbour search, batch 1, median ms (torch threads: "
        f"{torch.get_num_threads()})\n" + out["latency"].to_markdown()
    )
    write_json(
        root / "report.json", {k: v.reset_index().to_dict("records") for k, v in out.items()}
    )
    return out


def main() -> None:
    args = parse_args()
    root, spec = open_benchmark(args)
    print(describe(root, spec["seeds"]), flush=True)
    if args.only != "all":
        train_stage(spec, root, (args.only,))
        return
    report(spec, root, train_stage(spec, root))


if __name__ == "__main__":
    main()
