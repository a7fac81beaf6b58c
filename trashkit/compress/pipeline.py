"""Each technique of chapter 7 as one call that returns a :class:`Candidate` to compare.

Every retrained candidate is an ordinary training run in its own folder, reproducible from
its ``config.json``: the distilled student names its teacher checkpoint (``teacher``), a
pruned or decomposed network is saved as a checkpoint first and fine-tuned with
``init_from`` pointing at it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..checkpoint import Checkpoint, describe_architecture, load_checkpoint, save_checkpoint
from ..complexity import official_macs
from ..data import normalize_batch
from ..train import TrainConfig, run_split, train_once
from .decompose import decompose_model
from .onnx_rt import OrtModel, export_onnx, quantize_int8
from .prune import prune_to_macs
from .report import Candidate, eval_f1


class Baseline:
    """The baseline every technique is compared with: the checkpoint to compress, its
    training config and its evaluation images.

    Evaluation uses the run's *test* images when it held some back (``test_fraction``),
    otherwise its validation images (which chose ``best.pt``: slightly optimistic, and the
    table says so in ``eval_split``).
    """

    def __init__(self, checkpoint: str | Path, out: Path, data: str | None = None):
        self.path = Path(checkpoint)
        self.ckpt = load_checkpoint(checkpoint)
        self.model = self.ckpt.build_model()
        cfg = dict(self.ckpt.config)
        if data is not None:
            cfg["data"] = data
        self.cfg = TrainConfig.from_dict(cfg)
        self.out = out
        self.data = run_split(self.cfg)
        self.eval_split = "test" if len(self.data.test_idx) else "val"
        idx = np.sort(self.data.test_idx if len(self.data.test_idx) else self.data.val_idx)
        self.eval_images = torch.from_numpy(np.array(self.data.cache.images[idx]))
        self.eval_labels = self.data.cache.labels[idx]
        rng = np.random.default_rng(0)
        pick = rng.choice(self.data.train_idx, min(64, len(self.data.train_idx)), replace=False)
        self.calibration = normalize_batch(
            torch.from_numpy(np.array(self.data.cache.images[np.sort(pick)]))
        )  # training images only

    @property
    def size(self) -> int:
        return self.cfg.image_size

    @property
    def n_classes(self) -> int:
        return len(self.data.classes)

    def retrain(self, name: str, epochs: int, **overrides) -> nn.Module:
        """Train a candidate with the original recipe in ``out/name``; its best network.

        A folder that already holds the finished run is read back, a half-finished one
        resumes from its ``last.pt``: a long benchmark survives an interruption.
        """
        folder = self.out / name
        train_once(replace(self.cfg, epochs=epochs, chapter=7, kind=name, **overrides), folder)
        return load_checkpoint(folder / "best.pt").build_model()

    def save_network(self, model: nn.Module, name: str) -> Path:
        """A modified network (pruned, decomposed) as a checkpoint that rebuilds it."""
        path = self.out / f"{name}.pt"
        save_checkpoint(
            path,
            Checkpoint(
                weights=model.state_dict(),
                classes=self.data.classes,
                config=self.cfg.to_dict(),
                image_size=self.size,
                architecture=describe_architecture(model),
            ),
        )
        return path


def original(s: Baseline) -> Candidate:
    return Candidate("original", s.model, "the checkpoint as trained")


def distilled(
    s: Baseline, student: str, epochs: int, temperature: float = 4.0, alpha: float = 0.7
) -> list[Candidate]:
    """The student with the original as teacher, and the same student alone (same seed)."""
    alone = s.retrain("student_alone", epochs, model=student)
    kd = s.retrain(
        "student_kd",
        epochs,
        model=student,
        teacher=str(s.path),
        kd_temperature=temperature,
        kd_alpha=alpha,
    )
    return [
        Candidate(f"student alone ({student})", alone, f"{epochs} epochs, no teacher"),
        Candidate(
            f"student distilled ({student})",
            kd,
            f"{epochs} epochs, teacher = original, T={temperature}, alpha={alpha}",
        ),
    ]


def pruned(s: Baseline, target_ratio: float, epochs: int, lr: float = 0.02) -> Candidate:
    model, info = prune_to_macs(s.model, s.size, target_ratio)
    note = f"{info['ratio']:.0%} of the original MACs"
    if epochs > 0:
        start = s.save_network(model, "pruned_init")
        model = s.retrain("pruned_ft", epochs, init_from=str(start), lr=lr)
        note += f", fine-tuned {epochs} epochs"
    return Candidate("pruned", model, note, info)


def continued(s: Baseline, epochs: int, lr: float = 0.02) -> Candidate:
    """The original trained ``epochs`` more epochs with the fine-tuning recipe (``init_from``).

    Why: a pruned or decomposed variant fine-tuned for ``epochs`` has trained that much longer
    than the original. Comparing it with the original alone credits the compression with what
    the extra epochs bought; this candidate is the fair baseline.
    """
    model = s.retrain("original_continued", epochs, init_from=str(s.path), lr=lr)
    return Candidate(
        "original + same extra epochs",
        model,
        f"the original, {epochs} more epochs at lr {lr} (fair baseline)",
    )


def sensitivity_scan(
    s: Baseline, ratios: list[float], epochs: int, lr: float = 0.02
) -> pd.DataFrame:
    """Prune the original to each MACs ratio, fine-tune ``epochs`` epochs, measure macro-F1.

    One row per ratio: the target, the MACs actually kept (torch-pruning removes channels in
    steps of 8 and stops at 90% of them, so it lands at or below the target, or above it on a
    network too small to reach it), parameters, F1 straight after pruning and
    F1 after fine-tuning, on the study's evaluation images. Why a scan: one pruned point says
    nothing about where accuracy starts to fall; the curve shows how much can go.
    """
    base = eval_f1(s.model, s.eval_images, s.eval_labels, s.n_classes)
    rows = [
        {
            "target": 1.0,
            "kept MACs": 1.0,
            "MACs": official_macs(s.model, s.size),
            "params": sum(p.numel() for p in s.model.parameters()),
            "F1 pruned": base,
            "F1 fine-tuned": base,
        }
    ]
    for ratio in sorted(ratios, reverse=True):
        model, info = prune_to_macs(s.model, s.size, ratio)
        row = {
            "target": ratio,
            "kept MACs": info["ratio"],
            "MACs": info["macs_after"],
            "params": sum(p.numel() for p in model.parameters()),
            "F1 pruned": eval_f1(model, s.eval_images, s.eval_labels, s.n_classes),
        }
        if epochs > 0:
            name = f"scan_{round(100 * ratio):03d}"
            tuned = s.retrain(
                f"{name}_ft", epochs, init_from=str(s.save_network(model, name)), lr=lr
            )
            row["F1 fine-tuned"] = eval_f1(tuned, s.eval_images, s.eval_labels, s.n_classes)
        rows.append(row)
    return pd.DataFrame(rows)


def decomposed(s: Baseline, rank_ratio: float, epochs: int, lr: float = 0.02) -> Candidate:
    model, names = decompose_model(s.model, rank_ratio)
    note = f"Tucker-2/SVD rank x{rank_ratio} on {len(names)} convs"
    if epochs > 0 and names:
        start = s.save_network(model, "decomposed_init")
        model = s.retrain("decomposed_ft", epochs, init_from=str(start), lr=lr)
        note += f", fine-tuned {epochs} epochs"
    return Candidate("decomposed", model, note, {"replaced": names})


def onnx_candidates(s: Baseline, int8: bool = True) -> list[Candidate]:
    path = export_onnx(s.model, s.size, s.out / "model.onnx")
    out = [Candidate("ONNX Runtime fp32", OrtModel(path), "same weights, ONNX Runtime CPU")]
    if int8:
        q = quantize_int8(path, s.calibration, s.out / "model.int8.onnx")
        out.append(
            Candidate(
                "ONNX Runtime int8",
                OrtModel(q),
                f"static QDQ int8, calibrated on {len(s.calibration)} training images",
            )
        )
    return out


def arcface(s: Baseline, epochs: int) -> Candidate:
    model = s.retrain(
        "arcface", epochs, model=f"arcface:{s.cfg.model}", loss="arcface", mixup=0.0, cutmix=0.0
    )
    return Candidate(
        "ArcFace head", model, f"512-d embedding, cosine to class centres, {epochs} epochs"
    )


def agreement(a: list[int], b: list[int]) -> float:
    """Fraction of evaluation images on which two candidates predict the same class."""
    return float(np.mean(np.array(a) == np.array(b)))
