"""Each technique of chapter 7 as one call that returns a :class:`Variant` to compare."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data import make_eval_loader, normalize_batch
from ..scoring import load_checkpoint
from ..train import TrainConfig, prepare_data, train
from .decompose import decompose_model
from .onnx_rt import OrtModel, export_onnx, quantize_int8
from .prune import prune_to_macs
from .report import Variant


class Context:
    """The checkpoint under study, its training config and its evaluation images."""

    def __init__(self, checkpoint: str | Path, out: Path, data: str | None = None):
        self.loaded = load_checkpoint(checkpoint)
        cfg = dict(self.loaded.config)
        if data is not None:
            cfg["data"] = data
        self.cfg = TrainConfig.from_dict(cfg)
        self.out = out
        self.data = prepare_data(self.cfg, progress=False)
        self.size = self.cfg.image_size
        imgs = np.array(self.data.cache.images[np.sort(self.data.val_idx)])
        self.eval_images = torch.from_numpy(imgs)
        self.eval_labels = self.data.cache.labels[np.sort(self.data.val_idx)]
        rng = np.random.default_rng(0)
        pick = rng.choice(self.data.train_idx, min(64, len(self.data.train_idx)), replace=False)
        self.calibration = normalize_batch(torch.from_numpy(
            np.array(self.data.cache.images[np.sort(pick)])))  # training images only

    @property
    def n_classes(self) -> int:
        return len(self.data.classes)

    def retrain(self, name: str, epochs: int, **kw) -> Path:
        """Train a variant with the original recipe in ``out/name`` and return best.pt."""
        cfg_over = {k: kw.pop(k) for k in list(kw)
                    if k in TrainConfig.__dataclass_fields__ and not isinstance(kw[k], nn.Module)}
        cfg = replace(self.cfg, epochs=epochs, **cfg_over)
        train(cfg, self.out / name, progress=False, **kw)
        return self.out / name / "best.pt"


def original(ctx: Context) -> Variant:
    return Variant("original", ctx.loaded.model, "the checkpoint as trained")


def distilled(ctx: Context, student: str, epochs: int, temperature: float = 4.0,
              alpha: float = 0.7) -> list[Variant]:
    """The student with the original as teacher, and the same student alone (same seed)."""
    teacher = copy.deepcopy(ctx.loaded.model)
    alone = load_checkpoint(ctx.retrain("student_alone", epochs, model=student)).model
    kd = load_checkpoint(ctx.retrain("student_kd", epochs, model=student, teacher=teacher,
                                     kd_temperature=temperature, kd_alpha=alpha)).model
    return [Variant(f"student alone ({student})", alone, f"{epochs} epochs, no teacher"),
            Variant(f"student distilled ({student})", kd,
                    f"{epochs} epochs, teacher = original, T={temperature}, alpha={alpha}")]


def pruned(ctx: Context, target_ratio: float, epochs: int, lr: float = 0.02) -> Variant:
    model, info = prune_to_macs(ctx.loaded.model, ctx.size, target_ratio)
    note = f"{info['ratio']:.0%} of the original MACs"
    if epochs > 0:
        model = load_checkpoint(ctx.retrain("pruned_ft", epochs, model=model, lr=lr)).model
        note += f", fine-tuned {epochs} epochs"
    return Variant("pruned", model, note, info)


def decomposed(ctx: Context, rank_ratio: float, epochs: int, lr: float = 0.02) -> Variant:
    model, names = decompose_model(ctx.loaded.model, rank_ratio)
    note = f"Tucker-2/SVD rank x{rank_ratio} on {len(names)} convs"
    if epochs > 0 and names:
        model = load_checkpoint(ctx.retrain("decomposed_ft", epochs, model=model, lr=lr)).model
        note += f", fine-tuned {epochs} epochs"
    return Variant("decomposed", model, note, {"replaced": names})


def onnx_variants(ctx: Context, int8: bool = True) -> list[Variant]:
    path = export_onnx(ctx.loaded.model, ctx.size, ctx.out / "model.onnx")
    out = [Variant("ONNX Runtime fp32", OrtModel(path), "same weights, ONNX Runtime CPU")]
    if int8:
        q = quantize_int8(path, ctx.calibration, ctx.out / "model.int8.onnx")
        out.append(Variant("ONNX Runtime int8", OrtModel(q),
                           f"static QDQ int8, calibrated on {len(ctx.calibration)} training "
                           "images"))
    return out


def arcface(ctx: Context, epochs: int) -> Variant:
    spec = ctx.cfg.model
    model = load_checkpoint(ctx.retrain("arcface", epochs, model=f"arcface:{spec}",
                                        loss="arcface")).model
    return Variant("ArcFace head", model, f"512-d embedding, cosine to class centres, "
                                          f"{epochs} epochs")


def agreement(a: list[int], b: list[int]) -> float:
    """Fraction of evaluation images on which two variants predict the same class."""
    return float(np.mean(np.array(a) == np.array(b)))
