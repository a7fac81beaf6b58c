"""Chapter 8's experiments, one function each: the chapter and ``benchmarks/metric_learning.py``
run the same code, the chapter on one split, the benchmark on several.

* :func:`arcface_params` / :func:`softmax_params` / :func:`without_class` - the training
  runs: the softmax recipe with the ArcFace head and loss, recorded as chapter 8's runs
  (``chapter=8`` and a ``kind`` in ``config.json``), and the same runs on every class but one;
* :func:`predictors_table` - the three ways to predict from embeddings (and 1-NN) on a run's
  own test images, with their official MACs;
* :func:`holdout_embeddings` - a class the networks never saw, embedded once: the known
  classes' train / val / test images and the held-out class's images;
* :func:`new_class_experiment` - that class added from ``k`` of its images: a new ArcFace
  centre, stored embeddings for 1-NN, or a fine-tuned softmax head;
* :func:`unknown_experiment` - "none of the known classes": a threshold on the best cosine,
  chosen on validation images only, scored on the test images.

This module sits above :mod:`trashkit.train` (it reads runs) and beside search and compression.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import embeddings as em
from .checkpoint import load_checkpoint
from .complexity import official_macs
from .data import make_eval_loader, resolve_source
from .data.folders import folder_without_class
from .metrics import macro_f1
from .train import run_split
from .train.head import finetune_head

CHAPTER = 8

#: chapter 8's presets: parameter values that replace the parameters cell's own ("classroom"
#: keeps them). "full" is split seed 0 of the Reference results (benchmarks/metric_learning.py
#: --image-size 32 --epochs 15: TrashNet, ``metal`` held out, 5 draws); "quick" the smallest
#: run that executes every cell (tests, ``make demo``).
PRESETS = {
    "classroom": {},
    "full": {"image_size": 32, "epochs": 15, "holdout": "metal", "draws": 5, "queries": 200},
    "quick": {
        "backbone": "tiny",
        "image_size": 32,
        "epochs": 2,
        "shots": [1, 5],
        "stored": [100, 1000],
        "queries": 30,
    },
}


def preset_values(preset: str, data: str = "default") -> dict:
    """The values ``preset`` sets (see :data:`PRESETS`); "full" needs real photos."""
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r}: use one of {sorted(PRESETS)}")
    if preset == "full" and str(data) == "default":
        raise ValueError(
            "preset 'full' is the Reference results' run on TrashNet: add -p data <the "
            "TrashNet folder> (its class folders: cardboard, glass, metal, paper, plastic, trash)"
        )
    return dict(PRESETS[preset])


def arcface_params(params: dict, kind: str = "arcface") -> dict:
    """A softmax run's parameters with the ArcFace head (``arcface:<backbone>``) and loss,
    recorded as chapter 8's run of ``kind``: everything else (data, split, recipe) unchanged."""
    model = params.get("model", "mbv3_reduced")
    return {
        **params,
        "model": model if model.startswith("arcface:") else f"arcface:{model}",
        "loss": "arcface",
        "chapter": CHAPTER,
        "kind": kind,
    }


def softmax_params(params: dict, kind: str = "softmax") -> dict:
    """The softmax run of the same recipe, recorded as chapter 8's run of ``kind``."""
    return {**params, "chapter": CHAPTER, "kind": kind}


def without_class(params: dict, holdout: str) -> dict:
    """``params`` on the same images minus class ``holdout`` (a folder of links, nothing
    copied: :func:`trashkit.data.folders.folder_without_class`)."""
    folder = resolve_source(params.get("data", "default")).folder
    return {**params, "data": str(folder_without_class(folder, holdout))}


def _embed(model: nn.Module, split, idx) -> em.Embedded:
    return em.embed(model, make_eval_loader(split.cache, idx))


def predictors_table(run_dir: str | Path, k: int = 5) -> pd.DataFrame:
    """Test macro-F1 of the nearest learned centre, the nearest class mean, ``k``-NN and 1-NN
    of an ArcFace run on its own test images (rebuilt from its config), with the vectors each
    stores and its official MACs (the search counted as the ``Linear`` it is)."""
    ckpt = load_checkpoint(Path(run_dir) / "best.pt")
    model, split = ckpt.build_model(), run_split(ckpt.config)
    n = len(split.classes)
    train = _embed(model, split, split.train_idx)
    test = _embed(model, split, split.test_idx)
    preds = em.three_predictors(model, train, test, n, k)
    preds["1 nearest neighbour"] = em.knn_predict(test, train, 1, n)
    centre = official_macs(model, ckpt.image_size)
    search = official_macs(em.GalleryNet(model, train.vectors), ckpt.image_size)
    rows = []
    for name, pred in preds.items():
        knn = "neighbour" in name
        rows.append(
            {
                "predictor": name,
                "test macro-F1": macro_f1(test.labels, pred, n),
                "vectors stored": len(train) if knn else n,
                "official MACs": search if knn else centre,
            }
        )
    return pd.DataFrame(rows).set_index("predictor")


@dataclass
class Holdout:
    """A class two five-class networks never saw, and everything the experiments measure,
    embedded once. Known classes: the five-class runs' own split; the held-out class: its
    images in the six-class split of the same seed (``pool`` = its train + val images, the
    ones a few are drawn from; ``new_val`` and ``new_test`` its val and test images)."""

    holdout: str
    new: int  # the held-out class's label: the number of known classes
    centres: torch.Tensor  # the five-class ArcFace head's learned centres
    train: em.Embedded
    val: em.Embedded
    test: em.Embedded
    pool: em.Embedded
    new_val: em.Embedded
    new_test: em.Embedded
    head: nn.Linear | None = None  # the five-class softmax network's last layer
    features: dict | None = None  # its inputs: "train", "test", "pool", "new_test"
    train_labels: np.ndarray | None = None


def _held_rows(split, label: int) -> dict[str, np.ndarray]:
    pick = lambda idx: idx[split.cache.labels[idx] == label]  # noqa: E731
    return {
        "pool": pick(np.concatenate([split.train_idx, split.val_idx])),
        "val": pick(split.val_idx),
        "test": pick(split.test_idx),
    }


def holdout_embeddings(
    arcface_dir: str | Path, softmax_dir: str | Path | None, data: str, holdout: str
) -> Holdout:
    """Embed, once, what :func:`new_class_experiment` and :func:`unknown_experiment` need:
    ``arcface_dir`` / ``softmax_dir`` are runs on every class but ``holdout`` (made with
    :func:`without_class`), ``data`` the source with all classes."""
    ckpt = load_checkpoint(Path(arcface_dir) / "best.pt")
    model, known = ckpt.build_model(), run_split(ckpt.config)
    full = run_split({**ckpt.config, "data": str(data), "classes": None})
    rows = _held_rows(full, full.classes.index(holdout))
    h = Holdout(
        holdout,
        len(known.classes),
        em.learned_centres(model),
        *(_embed(model, known, i) for i in (known.train_idx, known.val_idx, known.test_idx)),
        *(_embed(model, full, rows[p]) for p in ("pool", "val", "test")),
    )
    if softmax_dir is not None:
        soft = load_checkpoint(Path(softmax_dir) / "best.pt").build_model()
        feats = lambda sp, idx: em.penultimate(soft, make_eval_loader(sp.cache, idx))  # noqa: E731
        train, h.train_labels = feats(known, known.train_idx)
        h.features = {
            "train": train,
            "test": feats(known, known.test_idx)[0],
            "pool": feats(full, rows["pool"])[0],
            "new_test": feats(full, rows["test"])[0],
        }
        h.head = [m for m in soft.modules() if isinstance(m, nn.Linear)][-1]
    return h


def _softmax_added(h: Holdout, pick: np.ndarray) -> np.ndarray:
    """The softmax way: a head with one more output, fine-tuned on the old training features
    plus the ``pick`` images' features; its predictions on the test queries."""
    f = h.features
    head = finetune_head(
        h.head,
        torch.cat([f["train"], f["pool"][pick]]),
        np.concatenate([h.train_labels, np.full(len(pick), h.new)]),
        h.new + 1,
    )
    with torch.no_grad():
        return head(torch.cat([f["test"], f["new_test"]])).argmax(1).numpy()


def new_class_experiment(h: Holdout, shots=(1, 5, 10, 20), draws: int = 1) -> pd.DataFrame:
    """The held-out class added from ``k`` of its pool images (draw ``d`` picks them with
    ``numpy.random.default_rng(d)``), scored on the test images of all classes: recall and
    precision of the new class, macro-F1 of the known ones. One row per (k, draw, method)."""
    true = np.concatenate([h.test.labels, np.full(len(h.new_test), h.new)])
    queries = torch.cat([h.test.vectors, h.new_test.vectors])
    rows = []
    for k in [k for k in shots if k <= len(h.pool)]:
        for draw in range(draws):
            pick = np.random.default_rng(draw).permutation(len(h.pool))[:k]
            support = em.Embedded(h.pool.vectors[pick], np.full(k, h.new))
            methods = {
                "ArcFace: learned centres + mean of the k": em.nearest_centre(
                    queries, em.add_class(h.centres, support)
                ),
                "ArcFace: 1-NN over training + k stored": em.knn_predict(
                    queries, h.train + support, 1, h.new + 1
                ),
            }
            if h.head is not None:
                methods["softmax: head fine-tuned on the k"] = _softmax_added(h, pick)
            for name, pred in methods.items():
                scores = em.new_class_scores(pred, true, h.new)
                rows.append({"k": k, "draw": draw, "method": name, **scores})
    return pd.DataFrame(rows)


def unknown_scores_of(h: Holdout) -> dict[str, dict[str, np.ndarray]]:
    """The best cosine of every val and test image, known and held-out, under two rules: the
    nearest learned centre, and the nearest stored training embedding (1-NN)."""
    stored = {"nearest learned centre": h.centres, "nearest training embedding": h.train.vectors}
    return {
        rule: {
            part: em.best_cosine(e, bank)
            for part, e in (
                ("known val", h.val),
                ("unknown val", h.new_val),
                ("known test", h.test),
                ("unknown test", h.new_test),
            )
        }
        for rule, bank in stored.items()
    }


def unknown_experiment(h: Holdout) -> tuple[pd.DataFrame, dict]:
    """Call an image "unknown" when its best cosine is below a threshold chosen on the
    validation images only (the best F1 of "unknown" there), then score the rule once on
    the test images. Returns the table (one row per rule) and the scores it used."""
    scores, rows = unknown_scores_of(h), []
    for rule, s in scores.items():
        t = em.choose_threshold(s["known val"], s["unknown val"])
        val = em.unknown_scores(s["known val"], s["unknown val"], t)
        test = em.unknown_scores(s["known test"], s["unknown test"], t)
        rows.append(
            {
                "rule (best cosine to...)": rule,
                "threshold (chosen on val)": t,
                "val F1 of unknown": val["f1"],
                "test precision of unknown": test["precision"],
                "test recall of unknown": test["recall"],
                "test F1 of unknown": test["f1"],
                "known test images rejected": test["known_rejected"],
            }
        )
    return pd.DataFrame(rows).set_index("rule (best cosine to...)"), scores


def summarize(df: pd.DataFrame, by: list[str], columns: list[str]) -> pd.DataFrame:
    """Mean and standard deviation of ``columns`` per group (e.g. over draws or splits)."""
    agg = df.groupby(by, sort=False)[columns].agg(["mean", "std"])
    agg.columns = [f"{c} {stat}" for c, stat in agg.columns]
    return agg
