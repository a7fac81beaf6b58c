"""Everything that defines a training run, saved as ``config.json`` and enough to repeat it.

Every field is checked for its type and range before anything runs, with a message that
names the parameter: a typo or a wrong type must fail in the first second, not as a raw
``TypeError`` deep in PyTorch an hour later.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable

LOSSES = ("ce", "label_smoothing", "class_weights", "focal", "arcface")
AMP_MODES = ("auto", "fp16", "bf16", "off")


@dataclass
class TrainConfig:
    """A training run. Defaults: the recipe of one team's wrap-up report, shortened to 30
    epochs (SGD with Nesterov momentum, OneCycle, RandAugment n=2, cutout, batch 64)."""

    # --- data
    data: str = "default"  # "default" (synthetic) | competition folder | image folder
    image_size: int = 156  # square input side; MACs grow with its square
    val_fraction: float = 0.2  # of all images (image folders; the competition has val/)
    test_fraction: float = 0.0  # of all images, held back from training AND selection
    split_seed: int = 0  # which images go where (kept apart from the training seed)
    classes: list[str] | None = None  # fix the class list/order (default: folder names)
    # --- model
    model: str = "mbv3_reduced"  # family spec, shipped config name, or YAML path
    init_from: str | None = None  # start from this checkpoint's network and weights
    pretrained: str | None = None  # "imagenet" (or a state-dict path): weights for the
    #                                  backbone, a fresh classifier for the data's classes
    freeze: int = 0  # leading blocks of the network's `features` kept fixed (fine-tuning)
    # --- optimisation: SGD + OneCycleLR
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.1  # OneCycle's peak learning rate
    momentum: float | list[float] = (0.85, 0.95)  # [low, high]: OneCycle cycles it inversely
    #                                  to the lr; one number: held constant
    weight_decay: float = 4e-5  # on weights only, never on biases / BN
    # --- augmentation
    randaugment_n: int = 2  # RandAugment: ops per image (0: off)
    randaugment_m: int = 9  # RandAugment: magnitude, 0..30 on torchvision's scale
    cutout: float = 0.25  # side of the cutout square, fraction of the image (0: off)
    crop_scale: float = 0.0  # random-resized-crop: smallest area kept (0: off)
    mixup: float = 0.0  # mixup's Beta(alpha, alpha) (0: off)
    cutmix: float = 0.0  # CutMix's Beta(alpha, alpha) (0: off)
    # --- loss
    loss: str = "label_smoothing"  # ce | label_smoothing | class_weights | focal | arcface
    label_smoothing: float = 0.1  # a regulariser: target 1-eps on the true class
    focal_gamma: float = 2.0  # focal loss: down-weights easy images by (1-p)^gamma
    # --- extras
    ema: float = 0.0  # exponential moving average of the weights (0: off)
    teacher: str | None = None  # checkpoint to distil from (knowledge distillation)
    teacher_bank: str | None = None  # a bank of a teacher's answers (trashkit.train.bank):
    #                                  train on its views with its probabilities as targets
    kd_temperature: float = 4.0
    kd_alpha: float = 0.7  # weight of the teacher's soft targets
    # --- machine
    seed: int = 42
    amp: str = "auto"  # mixed precision on CUDA: auto (bf16 if supported) |
    #                                  fp16 (with a gradient scaler) | bf16 | off; CPU: off
    channels_last: bool = False  # NHWC memory format (often faster on GPUs)
    deterministic: bool = False  # GPU: deterministic kernels (CPU runs always are)
    augment_on: str = "auto"  # workers (CPU processes) | device (whole batches on the
    #                                  GPU, cache held there) | auto (device on CUDA)
    sync_bn: bool = False  # torchrun: SyncBatchNorm across processes
    device: str = "auto"
    workers: int | None = None  # loader processes (default: one per core, at most 4)
    # --- bookkeeping: which chapter made the run and as what (how later chapters find it)
    chapter: int = 0  # 0: not made by a chapter
    kind: str = "train"  # train | trial | teacher | student | pruned | decomposed | ...

    def __post_init__(self) -> None:
        for name in ("data", "model", "init_from", "teacher"):  # a Path is as good as a str
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, str(getattr(self, name)))

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from a dict; a misspelled key is an error that suggests the right one."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(f"unknown training parameter {key!r}{hint}; valid: {names}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """A run's ``config.json``."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict:
        """Plain JSON-able values (tuples become lists, as they would in config.json)."""
        return json.loads(json.dumps(asdict(self)))

    def validate(self) -> None:
        """Check every field's type and range; the error names the field and what it expects."""
        for name, (kind, ok, expected) in RULES.items():
            value = getattr(self, name)
            if not (_is(value, kind) and ok(value)):
                raise ValueError(
                    f"training parameter {name}={value!r} is invalid: expected {expected}"
                )
        if self.loss == "arcface" and (self.mixup or self.cutmix):
            raise ValueError(
                "training parameter loss='arcface' cannot be combined with mixup/"
                "cutmix (the margin needs one true class per image)"
            )
        if self.loss == "arcface" and not self.model.startswith("arcface:"):
            raise ValueError(
                f"training parameter loss='arcface' needs an ArcFace model "
                f"('arcface:{self.model}'), got model={self.model!r}: the loss "
                "reads the network's outputs as scaled cosines"
            )
        if self.teacher_bank and (self.teacher or self.mixup or self.cutmix):
            raise ValueError(
                "training parameter teacher_bank trains on the bank's views and answers: it "
                "cannot be combined with a live teacher, mixup or cutmix (a mixed image has "
                "no teacher answer in the bank)"
            )
        if self.teacher_bank and self.loss not in ("ce", "class_weights"):
            raise ValueError(
                f"training parameter teacher_bank needs loss='ce' or 'class_weights' (soft "
                f"targets), got loss={self.loss!r}"
            )
        if self.pretrained and self.init_from:
            raise ValueError(
                "training parameters pretrained and init_from both choose the starting "
                "weights: give one of them"
            )
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"training parameters val_fraction + test_fraction = "
                f"{self.val_fraction + self.test_fraction} must stay below 1"
            )

    @property
    def momentum_range(self) -> tuple[float, float] | None:
        """(low, high) when OneCycle cycles the momentum, None when it is held constant."""
        m = self.momentum
        return (float(m[0]), float(m[1])) if isinstance(m, (list, tuple)) else None


def _is(value: Any, kind) -> bool:
    """Type test that refuses bool as a number and float (32.7) or str ("2") as an int."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if k is None and value is None:
            return True
        if k is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if k is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if k in (str, bool) and isinstance(value, k):
            return True
        if k is list and isinstance(value, (list, tuple)):
            return True
    return False


def _pair(v) -> bool:
    return not isinstance(v, (list, tuple)) or (
        len(v) == 2 and all(_is(x, float) for x in v) and 0 <= v[0] <= v[1] < 1
    )


def _nonempty(v: str) -> bool:
    """A string that says something (an empty data source or model spec never does)."""
    return v.strip() != ""


def _unit(v) -> bool:
    return 0 <= v < 1


#: field -> (accepted types, range check, what the error says is expected)
RULES: dict[str, tuple[Any, Callable[[Any], bool], str]] = {
    "data": (str, _nonempty, "a data source: 'default', a folder or a path"),
    "image_size": (int, lambda v: v >= 16, "an integer >= 16 (pixels)"),
    "val_fraction": (float, lambda v: 0 < v < 1, "a fraction between 0 and 1"),
    "test_fraction": (float, _unit, "a fraction in [0, 1)"),
    "split_seed": (int, lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "classes": (
        (list, None),
        lambda v: v is None or all(isinstance(c, str) for c in v),
        "a list of class names or None",
    ),
    "model": (str, _nonempty, "a model spec, shipped config name or YAML path"),
    "init_from": ((str, None), lambda v: True, "a checkpoint path or None"),
    "pretrained": (
        (str, None),
        lambda v: v is None or _nonempty(v),
        "'imagenet', a state-dict path or None",
    ),
    "freeze": (int, lambda v: v >= 0, "an integer >= 0 (blocks of `features` to keep fixed)"),
    "epochs": (int, lambda v: v >= 1, "an integer >= 1"),
    "batch_size": (int, lambda v: v >= 1, "an integer >= 1"),
    "lr": (float, lambda v: v > 0, "a positive number"),
    "momentum": (
        (float, list),
        lambda v: _pair(v) and (isinstance(v, (list, tuple)) or 0 <= v < 1),
        "a number in [0, 1) or a pair [low, high] with 0 <= low <= high < 1",
    ),
    "weight_decay": (float, lambda v: v >= 0, "a number >= 0"),
    "randaugment_n": (int, lambda v: v >= 0, "an integer >= 0"),
    "randaugment_m": (int, lambda v: 0 <= v <= 30, "an integer in 0..30"),
    "cutout": (float, _unit, "a fraction in [0, 1)"),
    "crop_scale": (float, _unit, "a fraction in [0, 1) (0: off)"),
    "mixup": (float, lambda v: v >= 0, "a number >= 0 (0: off)"),
    "cutmix": (float, lambda v: v >= 0, "a number >= 0 (0: off)"),
    "loss": (str, lambda v: v in LOSSES, f"one of {list(LOSSES)}"),
    "label_smoothing": (float, _unit, "a fraction in [0, 1)"),
    "focal_gamma": (float, lambda v: v >= 0, "a number >= 0"),
    "ema": (float, _unit, "a decay in [0, 1) (0: off)"),
    "teacher": ((str, None), lambda v: True, "a checkpoint path or None"),
    "teacher_bank": ((str, None), lambda v: v is None or _nonempty(v), "a bank folder or None"),
    "kd_temperature": (float, lambda v: v > 0, "a positive number"),
    "kd_alpha": (float, lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "seed": (int, lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "amp": (
        (str, bool),
        lambda v: isinstance(v, bool) or v in AMP_MODES,
        f"one of {list(AMP_MODES)}",
    ),
    "channels_last": (bool, lambda v: True, "True or False"),
    "deterministic": (bool, lambda v: True, "True or False"),
    "augment_on": (
        str,
        lambda v: v in ("auto", "workers", "device"),
        "one of ['auto', 'workers', 'device']",
    ),
    "sync_bn": (bool, lambda v: True, "True or False"),
    "device": (
        str,
        lambda v: re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None,
        "'auto', 'cpu', 'cuda' or 'cuda:N'",
    ),
    "workers": ((int, None), lambda v: v is None or v >= 0, "an integer >= 0 or None"),
    "chapter": (int, lambda v: 0 <= v <= 99, "a chapter number (0: none)"),
    "kind": (str, lambda v: v.isidentifier(), "a short name such as 'train' or 'trial'"),
}


def run_split(cfg: TrainConfig | dict, progress: bool = False):
    """The cached images and the train / val / test split of a run, rebuilt from its config
    (a ``TrainConfig`` or a saved ``config.json`` dict, missing keys taking the defaults):
    the one way training, scoring, compression and the benchmarks get a run's images."""
    from ..data import prepare_split

    if isinstance(cfg, dict):
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        cfg = TrainConfig.from_dict({k: v for k, v in cfg.items() if k in known})
    return prepare_split(
        cfg.data,
        cfg.image_size,
        cfg.val_fraction,
        cfg.test_fraction,
        cfg.split_seed,
        cfg.classes,
        progress,
    )


def _preset_values(namespace: dict, given: set[str], presets: dict[str, dict] | None) -> dict:
    """``presets[namespace['preset']]`` without the names set explicitly (``given``); a
    preset that names something the chapter does not declare is an error."""
    name = namespace.get("preset")
    if not presets or name is None:
        return {}
    if name not in presets:
        raise ValueError(f"preset={name!r} is not one of {sorted(presets)}")
    unknown = [k for k in presets[name] if k not in namespace]
    if unknown:
        raise ValueError(f"preset {name!r} sets {unknown}, which the chapter does not declare")
    return {k: v for k, v in presets[name].items() if k not in given}


def notebook_config(
    namespace: dict,
    given: set[str] = frozenset(),
    presets: dict[str, dict] | None = None,
    extras: tuple[str, ...] = (),
    chapter: int = 0,
    kind: str = "train",
) -> tuple[TrainConfig, TrainConfig | dict, dict]:
    """A chapter's training configuration from its parameters cell, in one call.

    ``namespace`` is the notebook's ``globals()`` right after the parameters cell: every name
    in it that is a :class:`TrainConfig` field is a training parameter. ``presets`` maps the
    chapter's ``preset`` parameter to values that replace the defaults, except those given
    explicitly with papermill (``given``, from :func:`trashkit.notebook.check_parameters`).
    ``extras`` names the chapter's other parameters (epochs of an exercise, ...) whose final
    values the caller wants back. The run records ``chapter`` and ``kind`` (later chapters
    find it by them).

    Returns ``(config, for_train, values)``: the configuration the run uses; what
    :func:`trashkit.train.train` receives (the config, or when ``namespace['resume']`` is
    true only the parameters given explicitly, which must agree with the run's own
    ``config.json``); every parameter's final value.
    """
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    values = {k: namespace[k] for k in (*fields, *extras) if k in namespace}
    values.update(_preset_values(namespace, given, presets))
    params = {k: v for k, v in values.items() if k in fields}
    params.update(chapter=chapter, kind=kind)
    if not namespace.get("resume"):
        config = TrainConfig.from_dict(params)
        return config, config, values
    folder = namespace.get("output_dir")
    saved = Path(str(folder)) / "config.json"
    if folder is None or not saved.is_file():
        raise FileNotFoundError(
            f"resume=True needs an output_dir holding a run's config.json: {folder}"
        )
    return TrainConfig.load(saved), {k: v for k, v in params.items() if k in given}, values
