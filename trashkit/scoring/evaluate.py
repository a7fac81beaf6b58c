"""Evaluating one checkpoint: macro-F1, official MACs, size, latency, submit time, scores.

Every number chapter 5 reports for a checkpoint comes from :func:`evaluate`, which writes them
to ``scores.json`` (tied to the checkpoint it scored by the file's SHA-256) and, for an
unlabelled test folder, ``submission.csv``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..checkpoint import Checkpoint, load_checkpoint
from ..complexity import check_countable, measure_latency, official_macs
from ..data import BadImage, decode_resized, load_source, make_eval_loader
from ..data.folders import scan_unlabelled
from ..metrics import f1_report, predict
from ..runs import resolve_output_dir, write_csv, write_json
from ..train import run_split
from .formulas import (
    COMPETITION_TEST_IMAGES,
    F1_BASELINE_MACS,
    F1_BASELINE_TIME,
    MACS_BASELINE,
    TIME_BASELINE,
    score_macs,
    score_time,
)


def file_batches(
    paths: list[Path], size: int, batch_size: int, skipped: list, progress: bool = False
) -> Iterator[tuple[torch.Tensor, None]]:
    """Decode image files into uint8 batches exactly as the cache does; unreadable ones
    (corrupt, missing, dangling links) are appended to ``skipped`` and left out."""
    from tqdm.auto import tqdm

    batch = []
    for p in tqdm(paths, desc="predicting", disable=not progress):
        try:
            batch.append(torch.from_numpy(decode_resized(p, size)))
        except (BadImage, OSError) as exc:
            skipped.append((str(p), getattr(exc, "reason", str(exc))))
            continue
        if len(batch) == batch_size:
            yield torch.stack(batch), None
            batch = []
    if batch:
        yield torch.stack(batch), None


def predict_files(
    model: nn.Module,
    paths: list[Path],
    size: int,
    batch_size: int = 32,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[np.ndarray, list, float]:
    """One forward pass per image (no test-time augmentation), decoding every file.

    Returns (predicted index per path, -1 where unreadable; skipped files with reasons; wall
    seconds of the whole thing: the "submit time").
    """
    skipped: list = []
    pred, seconds = timed_predictions(
        model, file_batches(paths, size, batch_size, skipped, progress), device
    )
    out = np.full(len(paths), -1, dtype=np.int64)
    bad = {s for s, _ in skipped}
    keep = [i for i, path in enumerate(paths) if str(path) not in bad]
    out[keep] = pred
    return out, skipped, seconds


def timed_predictions(model, batches, device: str = "cpu") -> tuple[np.ndarray, float]:
    """``(predicted class per image, wall seconds)``: the competition's "submit time" is the
    wall time of predicting the whole test set, one forward pass per image, with whatever
    producing the batches costs (decoding files, or nothing for images already in memory)."""
    t0 = time.perf_counter()
    pred = predict(model, batches, device).pred
    return pred, time.perf_counter() - t0


def checkpoint_sha256(path: str | Path) -> str:
    """The SHA-256 of a checkpoint file: what ties a score to the file it scored."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_cost(model: nn.Module, image_size: int, latency_runs: int = 50) -> dict:
    """Official MACs, parameters and batch-1 CPU latency of a model (on a CPU copy)."""
    check_countable(model)
    lat = measure_latency(model, (3, image_size, image_size), runs=latency_runs)
    return {
        "macs": official_macs(model, image_size),
        "params": sum(p.numel() for p in model.parameters()),
        "latency_ms": lat.median_ms,
        "latency_p90_ms": lat.p90_ms,
        "latency_device": str(lat),
    }


def score_run_split(ckpt: Checkpoint, split: str, device: str = "cpu") -> dict:
    """Macro-F1 on the ``"test"`` (or ``"val"``) images of the run that wrote ``ckpt``,
    rebuilt from its saved config: the same images the run held back (or selected on)."""
    c = ckpt.config
    data = run_split(c)
    idx = {"test": data.test_idx, "val": data.val_idx}[split]
    if len(idx) == 0:
        raise ValueError(
            f"the run has no {split} images (test_fraction "
            f"{c.get('test_fraction', 0.0)}); train with test_fraction > 0 or pass a "
            "labelled eval_folder"
        )
    p = predict(ckpt.build_model(device), make_eval_loader(data.cache, idx), device)
    rep = f1_report(p.true, p.pred, ckpt.classes)
    why = (
        "held back from training and from choosing best.pt"
        if split == "test"
        else "the validation split that chose best.pt: optimistic"
    )
    return {
        "f1": rep["macro_f1"],
        "report": rep,
        "n_eval": rep["n"],
        "f1_source": f"{split} split of {data.source} ({rep['n']} images, {why})",
    }


def score_folder(
    ckpt: Checkpoint, folder: str | Path, device: str = "cpu", progress: bool = True
) -> dict:
    """Macro-F1 on a labelled folder (a competition layout: its val/ folder only)."""
    scan = load_source(folder)
    extra = [c for c in scan.classes if c not in ckpt.classes]
    if extra:
        raise ValueError(
            f"{folder} has class(es) {extra} that the model does not know: {ckpt.classes}"
        )
    samples = [s for s in scan.samples if scan.layout != "competition" or s.split == "val"]
    remap = {i: ckpt.classes.index(c) for i, c in enumerate(scan.classes)}
    y_true = np.array([remap[s.label] for s in samples])
    pred, skipped, seconds = predict_files(
        ckpt.build_model(device),
        [s.path for s in samples],
        ckpt.image_size,
        device=device,
        progress=progress,
    )
    ok = pred >= 0
    rep = f1_report(y_true[ok], pred[ok], ckpt.classes)
    part = "val/ folder" if scan.layout == "competition" else "all images"
    return {
        "f1": rep["macro_f1"],
        "report": rep,
        "n_eval": rep["n"],
        "eval_skipped": skipped,
        "eval_seconds": seconds,
        "f1_source": f"{folder} ({part}, {rep['n']} images)",
    }


def submission(
    ckpt: Checkpoint,
    test_folder: str | Path,
    out: Path | None,
    device: str = "cpu",
    progress: bool = True,
) -> dict:
    """Predict every image of an unlabelled folder once; write ``submission.csv``."""
    test = scan_unlabelled(test_folder)
    paths = [s.path for s in test.samples]
    pred, skipped, seconds = predict_files(
        ckpt.build_model(device), paths, ckpt.image_size, device=device, progress=progress
    )
    per_image = seconds / max(1, len(paths))
    res = {
        "submit_time_s": seconds,
        "n_test": len(paths),
        "submit_ms_per_image": 1000 * per_image,
        "submit_time_scaled_s": per_image * COMPETITION_TEST_IMAGES,
        "test_skipped": skipped + [(str(p), why) for p, why in test.skipped],
    }
    if out is not None:
        sub = pd.DataFrame(
            {
                "file": [p.name for p in paths],
                "label": [ckpt.classes[i] if i >= 0 else "" for i in pred],
            }
        )
        write_csv(out / "submission.csv", sub, index=False)
        res["submission"] = str(out / "submission.csv")
    return res


def add_scores(
    result: dict,
    macs_baseline: float = MACS_BASELINE,
    f1_baseline_macs: float = F1_BASELINE_MACS,
    time_baseline: float = TIME_BASELINE,
    f1_baseline_time: float = F1_BASELINE_TIME,
) -> dict:
    """Both competition scores of an evaluation that has an F1, with the baselines used."""
    if "f1" in result:
        result["accuracy"] = result["report"]["accuracy"]
        result["confusion"] = result["report"]["confusion"]
        result["score_macs"] = score_macs(
            result["f1"], result["macs"], macs_baseline, f1_baseline_macs
        )
        if "submit_time_scaled_s" in result:
            result["score_time"] = score_time(
                result["f1"], result["submit_time_scaled_s"], time_baseline, f1_baseline_time
            )
            result["score_time_basis"] = (
                f"per-image time on this machine x {COMPETITION_TEST_IMAGES} images"
            )
    result["baselines"] = {
        "macs": macs_baseline,
        "f1_macs": f1_baseline_macs,
        "time": time_baseline,
        "f1_time": f1_baseline_time,
    }
    return result


def evaluate(
    checkpoint: str | Path,
    eval_folder: str | Path | None = None,
    test_folder: str | Path | None = None,
    out_dir: str | Path | None = None,
    split: str | None = None,
    device: str = "cpu",
    latency_runs: int = 50,
    progress: bool = True,
    macs_baseline: float = MACS_BASELINE,
    f1_baseline_macs: float = F1_BASELINE_MACS,
    time_baseline: float = TIME_BASELINE,
    f1_baseline_time: float = F1_BASELINE_TIME,
) -> dict:
    """Everything chapter 5 reports for one checkpoint; writes scores.json (+ submission.csv).

    The F1 comes from ``split`` ("test" / "val": the run's own held-back / validation images)
    or from a labelled ``eval_folder``; ``f1_source`` says which. ``test_folder``: unlabelled
    images -> ``submission.csv`` and the submit time. ``out_dir`` must be new or empty (an
    earlier evaluation is never overwritten).
    """
    ckpt = load_checkpoint(checkpoint)
    out = resolve_output_dir(out_dir, "score") if out_dir is not None else None
    result: dict = {
        "checkpoint": str(Path(checkpoint).resolve()),
        "checkpoint_sha256": checkpoint_sha256(checkpoint),
        "model": ckpt.config["model"],
        "data": ckpt.config.get("data"),
        "input_size": ckpt.image_size,
        "classes": ckpt.classes,
        "size_bytes": Path(checkpoint).stat().st_size,
    }
    result.update(model_cost(ckpt.build_model("cpu"), ckpt.image_size, latency_runs))
    if split is not None:
        result.update(score_run_split(ckpt, split, device))
    elif eval_folder is not None:
        result.update(score_folder(ckpt, eval_folder, device, progress))
    if test_folder is not None:
        result.update(submission(ckpt, test_folder, out, device, progress))
    add_scores(result, macs_baseline, f1_baseline_macs, time_baseline, f1_baseline_time)
    if out is not None:
        write_json(out / "scores.json", result)
    return result


def held_out_split(config: dict, wanted: str = "test") -> tuple[str, str | None]:
    """Which split of a run to score, and a warning when it is not the one ``wanted``.

    ``"test"`` is the run's held-back images (they chose nothing); a run trained with
    ``test_fraction = 0`` has none, so it falls back to ``"val"`` - the images that chose
    ``best.pt`` - and the warning says the F1 is optimistic."""
    if wanted not in ("test", "val"):
        raise ValueError(f"split={wanted!r}: use 'test' (held back) or 'val' (chose best.pt)")
    if wanted == "val" or config.get("test_fraction", 0.0) > 0:
        return wanted, None
    return "val", (
        "WARNING: this run held back no test images (test_fraction 0): scoring on its "
        "VALIDATION images, which chose best.pt, so the F1 is optimistic. Train with "
        "test_fraction > 0."
    )


def score_held_out(ckpt: Checkpoint, wanted: str = "test", device: str = "cpu") -> dict:
    """:func:`score_run_split` on the run's test split when it held one back, else on its
    validation split; ``split`` says which was scored and ``warning`` why (None when the
    wanted split was scored)."""
    split, warning = held_out_split(ckpt.config, wanted)
    return {**score_run_split(ckpt, split, device), "split": split, "warning": warning}


def score_at_size(ckpt: Checkpoint, size: int, split: str = "val", device: str = "cpu") -> dict:
    """The checkpoint evaluated at another input side, without retraining: official MACs and
    macro-F1 on the run's ``split`` images decoded at ``size`` px, and the MACs-edition score.
    The split is the run's own (it does not depend on the image size)."""
    config = {**ckpt.config, "image_size": int(size)}
    data = run_split(config)
    idx = {"test": data.test_idx, "val": data.val_idx}[split]
    if len(idx) == 0:
        raise ValueError(f"the run has no {split} images")
    model = ckpt.build_model(device)
    p = predict(model, make_eval_loader(data.cache, idx), device)
    f1 = f1_report(p.true, p.pred, ckpt.classes)["macro_f1"]
    macs = official_macs(ckpt.build_model("cpu"), int(size))
    return {
        "size": int(size),
        "split": split,
        "f1": f1,
        "macs": macs,
        "score_macs": score_macs(f1, macs),
    }


def _halves_metric(y: np.ndarray, pred: np.ndarray, n_classes: int, metric: str) -> float:
    if metric == "accuracy":
        return float((pred == y).mean())
    cm = np.bincount(y * n_classes + pred, minlength=n_classes**2).reshape(n_classes, n_classes)
    tp, actual, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    present = actual > 0
    f1 = 2 * tp[present] / (actual[present] + predicted[present])
    return float(f1.mean()) if present.any() else 0.0


def resample_halves(
    y_true,
    predictions: dict,
    n_public: int,
    draws: int = 1000,
    seed: int = 0,
    metric: str = "macro_f1",
) -> pd.DataFrame:
    """How a leaderboard's public and private halves can disagree: ``draws`` times, the test
    images are split at random into a public half of ``n_public`` and a private rest, and
    every team's ``metric`` ("macro_f1" or "accuracy") is computed on both halves.

    ``predictions`` maps a team name to its predicted class per image (for accuracy, a
    boolean "right or wrong" per image works with ``y_true`` all True). One row per draw and
    team: ``draw, team, public, private``. Draw k uses the k-th ``rng.permutation`` of
    ``numpy.random.default_rng(seed)``, so a loop written by hand with the same seed gives
    the same halves."""
    if metric not in ("macro_f1", "accuracy"):
        raise ValueError(f"metric={metric!r}: use 'macro_f1' or 'accuracy'")
    y = np.asarray(y_true).astype(np.int64)
    preds = {k: np.asarray(v).astype(np.int64) for k, v in predictions.items()}
    n = len(y)
    if not 0 < n_public < n or any(len(p) != n for p in preds.values()):
        raise ValueError(f"n_public={n_public} must split the {n} images; one prediction each")
    k = int(max(y.max(), *(p.max() for p in preds.values()))) + 1
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(draws):
        order = rng.permutation(n)
        pub, priv = order[:n_public], order[n_public:]
        for team, p in preds.items():
            rows.append(
                (
                    d,
                    team,
                    _halves_metric(y[pub], p[pub], k, metric),
                    _halves_metric(y[priv], p[priv], k, metric),
                )
            )
    return pd.DataFrame(rows, columns=["draw", "team", "public", "private"])
