"""The competition's measures: macro-F1, MACs, size, latency, submit time, both scores.

Baselines are the brief's back-derived values, overridable in every function:

* MACs edition: ``MACS_BASELINE = 13_863_553`` and ``F1_BASELINE_MACS = 0.8366`` were solved
  from published leaderboard rows (score, F1, MACs) of that edition, assuming its formula.
* Submit-time edition: ``F1_BASELINE_TIME = 0.70`` and ``TIME_BASELINE = 43.15`` s, likewise
  back-derived; its published target row (F1 0.70 at 60 s) scores 0.5*60/43.15 + 0.5 = 1.195.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import classification_report, confusion_matrix, f1_score
from torch import nn
from tqdm.auto import tqdm

from .complexity import check_countable, measure_latency, official_macs
from .data import BadImage, decode_resized, load_source, normalize_batch
from .data.folders import scan_unlabelled
from .models import build_model

MACS_BASELINE = 13_863_553
F1_BASELINE_MACS = 0.8366
F1_BASELINE_TIME = 0.70
TIME_BASELINE = 43.15


def score_f1_part(f1: float, f1_baseline: float = F1_BASELINE_MACS) -> float:
    """The F1 term of the MACs edition: 1 below 0.5 (too weak), full weight below the
    baseline, half weight above it."""
    if f1 < 0.5:
        return 1.0
    if f1 < f1_baseline:
        return 1.0 - f1 / f1_baseline
    return 0.5 * (1.0 - f1 / f1_baseline)


def score_macs(f1: float, macs: float, macs_baseline: float = MACS_BASELINE,
               f1_baseline: float = F1_BASELINE_MACS) -> float:
    """MACs edition (lower is better, may be negative): MACs/MACs_base + F1 term."""
    return macs / macs_baseline + score_f1_part(f1, f1_baseline)


def score_time(f1: float, seconds: float, time_baseline: float = TIME_BASELINE,
               f1_baseline: float = F1_BASELINE_TIME) -> float:
    """Submit-time edition (lower is better): 0.5 t/t_base + sigmoid(20 (F1_base - F1))."""
    return 0.5 * seconds / time_baseline + 1.0 / (1.0 + math.exp(-20.0 * (f1_baseline - f1)))


@dataclass
class Loaded:
    model: nn.Module
    classes: list[str]
    image_size: int
    config: dict
    path: Path


def load_checkpoint(path: str | Path, device: str = "cpu") -> Loaded:
    """Rebuild a model from a trashkit checkpoint (its config says which architecture)."""
    from .train import load_weights
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not ours"
        raise ValueError(f"{path} is not a readable checkpoint ({exc})") from None
    missing = [k for k in ("model", "classes", "config", "image_size") if k not in ckpt]
    if missing:
        raise ValueError(f"{path} is not a trashkit checkpoint (missing {missing})")
    model = ckpt["module"] if "module" in ckpt else \
        build_model(ckpt["config"]["model"], len(ckpt["classes"]))
    load_weights(model, ckpt, ckpt["classes"], path)
    return Loaded(model.to(device).eval(), list(ckpt["classes"]), int(ckpt["image_size"]),
                  ckpt["config"], path)


@torch.no_grad()
def predict_files(model: nn.Module, paths: list[Path], size: int, batch_size: int = 32,
                  device: str = "cpu", progress: bool = True) -> tuple[np.ndarray, list, float]:
    """One forward pass per image (no test-time augmentation), decoding every file.

    Returns (predicted indices, skipped files with reasons, wall seconds of the whole thing:
    the "submit time").
    """
    t0 = time.perf_counter()
    model.eval().to(device)
    preds, skipped, batch, kept = [], [], [], []
    for i, p in enumerate(tqdm(paths, desc="predicting", disable=not progress)):
        try:
            batch.append(torch.from_numpy(decode_resized(p, size)))
            kept.append(i)
        except BadImage as exc:
            skipped.append((str(p), exc.reason))
        if len(batch) == batch_size or (i == len(paths) - 1 and batch):
            x = normalize_batch(torch.stack(batch).to(device))
            preds.append(model(x).argmax(1).cpu().numpy())
            batch = []
    out = np.full(len(paths), -1, dtype=np.int64)
    if preds:
        out[kept] = np.concatenate(preds)
    return out, skipped, time.perf_counter() - t0


def evaluate(ckpt_path: str | Path, eval_folder: str | Path | None = None,
             test_folder: str | Path | None = None, out_dir: str | Path | None = None,
             device: str = "cpu", latency_runs: int = 50, progress: bool = True,
             macs_baseline: float = MACS_BASELINE, f1_baseline_macs: float = F1_BASELINE_MACS,
             time_baseline: float = TIME_BASELINE,
             f1_baseline_time: float = F1_BASELINE_TIME) -> dict:
    """Everything chapter 5 reports for one checkpoint; writes scores.json (+ submission.csv).

    ``eval_folder``: labelled images (competition layout: its val/ folder is used; any image
    folder: all of it). ``test_folder``: unlabelled images -> ``submission.csv`` and the
    submit time. Classes in the data that the checkpoint lacks are an error naming them.
    """
    loaded = load_checkpoint(ckpt_path, device)
    check_countable(loaded.model)
    result: dict = {"checkpoint": str(ckpt_path), "model": loaded.config["model"],
                    "input_size": loaded.image_size, "classes": loaded.classes}
    cpu_model = loaded.model if str(device) == "cpu" else load_checkpoint(ckpt_path, "cpu").model
    result["macs"] = official_macs(cpu_model, loaded.image_size)
    result["params"] = sum(p.numel() for p in cpu_model.parameters())
    result["size_bytes"] = Path(ckpt_path).stat().st_size
    lat = measure_latency(cpu_model, (3, loaded.image_size, loaded.image_size),
                          runs=latency_runs)
    result.update(latency_ms=lat.median_ms, latency_p90_ms=lat.p90_ms, latency_device=str(lat))
    out = Path(out_dir) if out_dir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    if eval_folder is not None:
        scan = load_source(eval_folder)
        extra = [c for c in scan.classes if c not in loaded.classes]
        if extra:
            raise ValueError(f"{eval_folder} has class(es) {extra} that the model "
                             f"({ckpt_path}) does not know: {loaded.classes}")
        samples = [s for s in scan.samples if scan.layout != "competition" or s.split == "val"]
        remap = {i: loaded.classes.index(c) for i, c in enumerate(scan.classes)}
        y_true = np.array([remap[s.label] for s in samples])
        pred, skipped, seconds = predict_files(loaded.model, [s.path for s in samples],
                                               loaded.image_size, device=device,
                                               progress=progress)
        ok = pred >= 0
        labels = list(range(len(loaded.classes)))
        result["f1"] = float(f1_score(y_true[ok], pred[ok], labels=labels, average="macro",
                                      zero_division=0))
        result["accuracy"] = float((y_true[ok] == pred[ok]).mean())
        result["n_eval"] = int(ok.sum())
        result["eval_skipped"] = skipped
        result["report"] = classification_report(y_true[ok], pred[ok], labels=labels,
                                                 target_names=loaded.classes, zero_division=0,
                                                 output_dict=True)
        result["confusion"] = confusion_matrix(y_true[ok], pred[ok], labels=labels).tolist()
        result["eval_seconds"] = seconds
    if test_folder is not None:
        test = scan_unlabelled(test_folder)
        paths = [s.path for s in test.samples]
        pred, skipped, seconds = predict_files(loaded.model, paths, loaded.image_size,
                                               device=device, progress=progress)
        result["submit_time_s"] = seconds
        result["n_test"] = len(paths)
        result["test_skipped"] = skipped + [(str(p), why) for p, why in test.skipped]
        if out:
            sub = pd.DataFrame({"file": [p.name for p in paths],
                                "label": [loaded.classes[i] if i >= 0 else "" for i in pred]})
            sub.to_csv(out / "submission.csv", index=False)
            result["submission"] = str(out / "submission.csv")
    if "f1" in result:
        result["score_macs"] = score_macs(result["f1"], result["macs"], macs_baseline,
                                          f1_baseline_macs)
        seconds = result.get("submit_time_s")
        if seconds is not None:
            result["score_time"] = score_time(result["f1"], seconds, time_baseline,
                                              f1_baseline_time)
    result["baselines"] = {"macs": macs_baseline, "f1_macs": f1_baseline_macs,
                           "time": time_baseline, "f1_time": f1_baseline_time}
    if out:
        (out / "scores.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def leaderboard(root: str | Path, score: str = "score_macs") -> pd.DataFrame:
    """Every run under ``root`` in one table, best first.

    Reads ``metrics.json`` (training runs: validation F1) and ``scores.json`` (chapter 5);
    a run scored by chapter 5 shows those numbers. Score columns are recomputed from F1 and
    MACs with the default baselines so every row is comparable.
    """
    rows = {}
    for path in sorted(Path(root).rglob("metrics.json")):
        m = json.loads(path.read_text())
        rows[str(path.parent)] = {"run": str(path.parent.relative_to(root)),
                                  "model": m.get("model"), "f1": m.get("val_macro_f1"),
                                  "macs": m.get("macs"), "params": m.get("params"),
                                  "input_size": m.get("input_size"), "epochs": m.get("epochs"),
                                  "f1 from": "train val"}
    for path in sorted(Path(root).rglob("scores.json")):
        s = json.loads(path.read_text())
        if "f1" not in s:
            continue
        key = str(Path(s["checkpoint"]).parent)
        row = rows.get(key, {"run": str(path.parent.relative_to(root))})
        row.update(model=s["model"], f1=s["f1"], macs=s["macs"], params=s["params"],
                   input_size=s["input_size"], latency_ms=s.get("latency_ms"),
                   submit_time_s=s.get("submit_time_s"), **{"f1 from": "chapter 5"})
        rows[key] = row
    df = pd.DataFrame(list(rows.values()))
    if df.empty:
        return df
    df = df.dropna(subset=["f1", "macs"])
    df["score_macs"] = [score_macs(f, m) for f, m in zip(df.f1, df.macs)]
    if "submit_time_s" in df:
        df["score_time"] = [score_time(f, t) if pd.notna(t) else np.nan
                            for f, t in zip(df.f1, df.submit_time_s)]
    return df.sort_values(score).reset_index(drop=True)


def calculator():
    """ipywidgets sliders (F1, MACs, seconds) -> both scores, for interactive sessions."""
    import ipywidgets as w
    f1 = w.FloatSlider(0.84, min=0.0, max=1.0, step=0.005, description="macro-F1")
    macs = w.FloatLogSlider(13.86e6, base=10, min=5, max=9, description="MACs")
    secs = w.FloatSlider(43.15, min=1, max=200, step=0.5, description="seconds")
    out = w.HTML()

    def update(*_):
        out.value = (f"<b>MACs edition</b>: {score_macs(f1.value, macs.value):.4f} &nbsp; "
                     f"<b>time edition</b>: {score_time(f1.value, secs.value):.4f}")

    for s in (f1, macs, secs):
        s.observe(update, "value")
    update()
    return w.VBox([f1, macs, secs, out])
