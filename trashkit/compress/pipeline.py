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
from ..scoring import find_checkpoint
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


def pruned(
    s: Baseline,
    target_ratio: float,
    epochs: int,
    lr: float = 0.02,
    name: str = "pruned",
    distill: bool = False,
) -> Candidate:
    """The original pruned to ``target_ratio`` of its MACs, fine-tuned ``epochs`` epochs (with
    the original as teacher when ``distill``), in ``out/<name>_ft``."""
    model, info = prune_to_macs(s.model, s.size, target_ratio)
    note = f"{info['ratio']:.0%} of the original MACs"
    if epochs > 0:
        start = s.save_network(model, f"{name}_init")
        kd = {"teacher": str(s.path)} if distill else {}
        model = s.retrain(f"{name}_ft", epochs, init_from=str(start), lr=lr, **kd)
        note += f", fine-tuned {epochs} epochs" + (" from the original as teacher" if kd else "")
    return Candidate(name, model, note, info)


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


def onnx_candidates(s: Baseline, int8: bool = True, threads: int | None = None) -> list[Candidate]:
    """The original in ONNX Runtime, fp32 and (``int8``) static int8; ``threads``: ONNX
    Runtime's intra-op threads (None: its default, one per core)."""
    path = export_onnx(s.model, s.size, s.out / "model.onnx")
    out = [
        Candidate("ONNX Runtime fp32", OrtModel(path, threads), "same weights, ONNX Runtime CPU")
    ]
    if int8:
        q = quantize_int8(path, s.calibration, s.out / "model.int8.onnx")
        out.append(
            Candidate(
                "ONNX Runtime int8",
                OrtModel(q, threads),
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


# --- the network to compress, and the open track's teacher -----------------------------------

#: chapter 4's recipe (its parameters cell): the network and split a fallback original uses
CHAPTER4 = dict(
    model="mobilenetv3:width=0.75,depth=0.5", val_fraction=0.1, test_fraction=0.2, split_seed=0
)
#: the open track's teacher (as benchmarks/trashnet.py's OPEN_TEACHER): EfficientNet-Lite0
#: fine-tuned from its ImageNet weights, leading blocks frozen
OPEN_TEACHER = dict(
    model="efficientnet_lite0",
    pretrained="imagenet",
    batch_size=32,
    lr=0.01,
    momentum=0.9,
    weight_decay=1e-5,
    loss="label_smoothing",
    randaugment_n=0,
    cutout=0.0,
    crop_scale=0.35,
    mixup=0.0,
    cutmix=0.0,
    ema=0.0,
    teacher=None,
    init_from=None,
)
#: a student on a teacher bank: soft targets only (the bank's views are augmented already)
BANK_STUDENT = dict(
    loss="ce",
    label_smoothing=0.0,
    randaugment_n=0,
    cutout=0.0,
    crop_scale=0.0,
    mixup=0.0,
    cutmix=0.0,
    teacher=None,
    init_from=None,
)


def original_checkpoint(
    root: str | Path, out: Path, data: str | None = None, epochs: int = 3, image_size: int = 64
) -> tuple[Path, str]:
    """The network chapter 7 compresses: the newest ``best.pt`` of chapter 4's training runs
    under ``root``, or else one trained here with chapter 4's recipe (``epochs`` epochs at
    ``image_size`` px, recorded as ``chapter=7, kind="original"`` in ``out/original``).

    Returns the checkpoint and a sentence saying which it is. Why a fallback: the chapter must
    run on a fresh machine, where chapter 4 has not run yet.
    """
    try:
        path = find_checkpoint(root)
        return path, f"chapter 4's newest training run ({path.parent.name})"
    except FileNotFoundError:
        pass
    cfg = TrainConfig(
        data=data or "default",
        image_size=image_size,
        epochs=epochs,
        chapter=7,
        kind="original",
        **CHAPTER4,
    )
    train_once(cfg, out / "original")
    return out / "original" / "best.pt", (
        f"no chapter-4 run under {root}: trained here with chapter 4's recipe, {epochs} "
        f"epochs at {image_size} px"
    )


def pretrained_teacher(
    s: Baseline, epochs: int, image_size: int, freeze: int = 6, name: str = "teacher_imagenet"
) -> tuple[Path, dict]:
    """EfficientNet-Lite0 from ImageNet, fine-tuned ``epochs`` epochs on the original's split
    (its first ``freeze`` blocks fixed) at ``image_size`` px; its checkpoint and a row
    (macro-F1 on the same evaluation images, official MACs, parameters)."""
    from ..scoring import score_run_split

    model = s.retrain(name, epochs, image_size=image_size, freeze=freeze, **OPEN_TEACHER)
    path = s.out / name / "best.pt"
    score = score_run_split(load_checkpoint(path), s.eval_split)
    return path, {
        "variant": f"teacher: EfficientNet-Lite0 from ImageNet @ {image_size}px",
        "macro_f1": score["f1"],
        "MACs": official_macs(model, image_size),
        "params": sum(p.numel() for p in model.parameters()),
        "note": f"{epochs} epoch(s), {freeze} leading blocks frozen; {score['f1_source']}",
    }


def bank_student(
    s: Baseline, teacher: Path, student: str, views: int, epochs: int, seed: int = 0
) -> Candidate:
    """A teacher bank of ``views`` views of every training image (built once in
    ``out/bank``), and ``student`` trained ``epochs`` passes over it with the teacher's
    probabilities as its only targets."""
    from ..train.bank import build_bank

    bank = s.out / "bank"
    if not (bank / "bank.json").is_file():
        build_bank(teacher, bank, s.size, views=views, seed=seed)
    model = s.retrain("student_bank", epochs, model=student, teacher_bank=str(bank), **BANK_STUDENT)
    return Candidate(
        f"student from the bank ({student})",
        model,
        f"{epochs} pass(es) over {views} views per image, soft targets of {teacher.parent.name}",
    )


# --- the chapter's presets -------------------------------------------------------------------

#: ``preset="full"``: the settings of the Reference results (benchmarks/compress_trashnet.py,
#: compare_latency.py's 300 interleaved rounds at torch's default threads, and the open
#: track's teacher and bank as benchmarks/trashnet.py --recipe open)
PRESETS: dict[str, dict] = {
    "class": {},
    "full": {
        "train_epochs": 30,
        "finetune_epochs": 10,
        "scan_ratios": [0.8, 0.5, 0.3],
        "scan_epochs": 5,
        "latency_runs": 300,
        "threads": None,
        "teacher_epochs": 5,
        "teacher_size": 192,
        "teacher_freeze": 3,
        "bank_views": 6,
        "bank_epochs": 15,
    },
}


def preset_values(preset: str, given: set[str], namespace: dict) -> dict:
    """The parameters ``preset`` sets, read from ``namespace`` (a chapter's globals) and
    replaced by the preset's values, except those papermill set explicitly (``given``)."""
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r}: use one of {sorted(PRESETS)}")
    return {k: namespace[k] if k in given else v for k, v in PRESETS[preset].items()}
