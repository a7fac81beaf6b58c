"""The training recipe of the winning teams, as one loop you can read in one sitting.

SGD (lr 0.1, momentum 0.9, Nesterov) with OneCycleLR, RandAugment + flip + cutout on the
cached uint8 images, label smoothing / class weights / focal loss, mixed precision on CUDA,
the best checkpoint chosen by validation macro-F1, and exact resumption: epoch ``e`` draws its
batches and augmentations from generators seeded by ``(seed, e)`` only, so a run resumed from
``last.pt`` replays the same epochs as one that never stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, f1_score
from torch import nn
from tqdm.auto import tqdm

from .complexity import check_countable, official_macs
from .data import (build_cache, cutout, load_source, make_eval_loader, make_train_loader,
                   normalize_batch, resolve_source)
from .data.split import stratified_split
from .models import build_model
from .paths import cache_dir
from .runs import new_run_dir

CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
    """Everything that defines a run; saved as ``config.json`` and enough to reproduce it."""

    data: str = "default"            # "default" | competition folder | image folder
    model: str = "mbv3_reduced"      # family spec, shipped config name or YAML path
    image_size: int = 156
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 4e-5
    randaugment_n: int = 2
    randaugment_m: int = 9
    cutout: float = 0.25             # side of the cutout square as a fraction (0: off)
    loss: str = "label_smoothing"    # "ce" | "label_smoothing" | "class_weights" | "focal"
    #                                  | "arcface" (with model "arcface:<backbone spec>")
    label_smoothing: float = 0.1
    focal_gamma: float = 2.0
    val_fraction: float = 0.2        # image folders only; the competition layout has val/
    split_seed: int = 0              # the train/val split (kept apart from the training seed)
    seed: int = 42
    amp: bool = True                 # mixed precision (CUDA only; ignored on CPU)
    device: str = "auto"
    workers: int | None = None
    classes: list[str] | None = None  # fix the class list/order (default: folder names)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
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

    def validate(self) -> None:
        checks = {"epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1,
                  "image_size": self.image_size >= 16, "lr": self.lr > 0,
                  "loss": self.loss in ("ce", "label_smoothing", "class_weights", "focal",
                                        "arcface"),
                  "val_fraction": 0 < self.val_fraction < 1, "cutout": 0 <= self.cutout < 1}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"training parameter {name}={getattr(self, name)!r} is invalid")


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): down-weights easy examples by (1 - p_t)^gamma."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma, self.weight = gamma, weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits, dim=1)
        logp_t = logp.gather(1, target[:, None]).squeeze(1)
        loss = -((1 - logp_t.exp()) ** self.gamma) * logp_t
        if self.weight is not None:
            loss = loss * self.weight[target]
        return loss.mean()


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, hard_loss: torch.Tensor,
            temperature: float = 4.0, alpha: float = 0.7) -> torch.Tensor:
    """Hinton et al. (2015): ``alpha * T^2 * KL(p_teacher^T || p_student^T) + (1-alpha) * hard``.

    The T^2 factor keeps the soft term's gradients on the scale of the hard loss's.
    """
    t = temperature
    soft = F.kl_div(F.log_softmax(student.float() / t, dim=1),
                    F.log_softmax(teacher.float() / t, dim=1), reduction="batchmean",
                    log_target=True)
    return alpha * t * t * soft + (1 - alpha) * hard_loss


def class_weights(labels: np.ndarray, n: int) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 (sklearn's 'balanced' rule)."""
    counts = np.bincount(labels, minlength=n).astype(np.float64)
    w = len(labels) / (n * np.maximum(counts, 1))
    return torch.tensor(w, dtype=torch.float32)


def make_loss(cfg: TrainConfig, train_labels: np.ndarray, n: int) -> nn.Module:
    if cfg.loss == "ce":
        return nn.CrossEntropyLoss()
    if cfg.loss == "label_smoothing":
        return nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    if cfg.loss == "class_weights":
        return nn.CrossEntropyLoss(weight=class_weights(train_labels, n))
    if cfg.loss == "arcface":
        from .models.arcface import ArcFaceLoss
        return ArcFaceLoss()
    return FocalLoss(cfg.focal_gamma)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Data:
    """The cached images and the split a run trains on."""

    cache: object
    classes: list[str]
    train_idx: np.ndarray
    val_idx: np.ndarray
    source: str
    skipped: list = field(default_factory=list)


def prepare_data(cfg: TrainConfig, progress: bool = True) -> Data:
    """Scan, cache (decode once) and split. Competition layouts keep their own val/ folder."""
    src = resolve_source(cfg.data)
    if src.folder is None:
        raise ValueError(f"data {cfg.data!r} is a COCO file: build crops first (chapter 1) "
                         "and pass the crops folder")
    scan = load_source(src.folder, classes=cfg.classes)
    cache = build_cache(scan.samples, cfg.image_size, cache_dir(), progress=progress)
    labels = cache.labels
    split_of = {str(s.path): s.split for s in scan.samples}
    splits = np.array([split_of[p] for p in cache.paths])
    if scan.layout == "competition" and (splits == "val").any():
        tr, va = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "val")
    else:
        tr, va = stratified_split(labels, cfg.val_fraction, cfg.split_seed)
    return Data(cache, scan.classes, tr, va, str(src.folder), cache.skipped + scan.skipped)


def _batch_to(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return normalize_batch(x.to(device, non_blocking=True))


@torch.no_grad()
def predict(model: nn.Module, loader, device: torch.device) -> tuple[np.ndarray, np.ndarray,
                                                                     float]:
    """Predicted labels, true labels and mean cross-entropy over a loader (eval mode)."""
    model.eval()
    preds, trues, loss, n = [], [], 0.0, 0
    for x, y in loader:
        logits = model(_batch_to(x, device)).float()
        y = y.to(device)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        n += len(y)
        preds.append(logits.argmax(1).cpu().numpy())
        trues.append(y.cpu().numpy())
    return np.concatenate(preds), np.concatenate(trues), loss / max(1, n)


def macro_f1(y_true, y_pred, n_classes: int) -> float:
    """Macro F1 over all classes (a class never predicted nor present scores 0, as sklearn)."""
    return float(f1_score(y_true, y_pred, labels=list(range(n_classes)), average="macro",
                          zero_division=0))


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_checkpoint(path: Path, **state) -> None:
    """Write atomically: an interrupted save never destroys the previous checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save({"version": CHECKPOINT_VERSION, **state}, tmp)
    tmp.replace(path)


def load_weights(model: nn.Module, ckpt: dict, classes: list[str], path: Path) -> None:
    """Load a checkpoint's weights, with errors that say what does not fit."""
    if ckpt.get("classes") is not None and list(ckpt["classes"]) != list(classes):
        raise ValueError(f"checkpoint {path} was trained on classes {ckpt['classes']}, but the "
                         f"data has {classes}")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ValueError(f"checkpoint {path} does not fit model "
                         f"{ckpt.get('config', {}).get('model', '?')!r}: "
                         f"{' '.join(first[:3])[:400]}") from None


def train(cfg: TrainConfig | dict | None, output_dir: str | Path | None = None, resume: bool = False,
          progress: bool = True, stop_after: int | None = None,
          on_epoch=None, model: nn.Module | None = None,
          teacher: nn.Module | None = None, kd_temperature: float = 4.0,
          kd_alpha: float = 0.7) -> dict:
    """Train (or resume) one run; returns the metrics written to ``metrics.json``.

    ``output_dir`` None -> a fresh ``outputs/<run-id>-train``. A new run refuses a folder that
    already holds a run; ``resume=True`` continues the run in ``output_dir`` from ``last.pt``
    (its saved config wins; passing a different one is an error). ``stop_after`` ends the
    process after that many epochs, as a crash would (for tests and demos). ``cfg`` may be
    None when resuming. ``on_epoch(epoch, val_macro_f1)`` is called after every epoch (the
    AutoML chapter prunes weak trials from it by raising). ``model`` trains a prebuilt network
    (e.g. a pruned one; its checkpoints then carry the whole module) instead of building
    ``cfg.model``; ``teacher`` adds knowledge distillation (see :func:`kd_loss`).
    """
    cfg = TrainConfig.from_dict(cfg) if isinstance(cfg, dict) else cfg
    if cfg is not None:
        cfg.validate()
    elif not resume:
        raise ValueError("a new run needs a config")
    if resume:
        if output_dir is None or not (Path(output_dir) / "last.pt").is_file():
            raise FileNotFoundError(f"resume=True needs an output_dir with last.pt "
                                    f"(got {output_dir})")
        out = Path(output_dir)
        saved = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
        if cfg is not None and asdict(saved) != asdict(cfg):
            diff = {k: (v, asdict(cfg)[k]) for k, v in asdict(saved).items()
                    if asdict(cfg)[k] != v}
            raise ValueError(f"resume: config differs from the run's config.json: {diff}")
        cfg = saved
    else:
        out = new_run_dir("train") if output_dir is None else Path(output_dir)
        if (out / "config.json").exists() or (out / "last.pt").exists():
            raise FileExistsError(f"{out} already holds a training run; pass resume=True to "
                                  "continue it, or choose a new output_dir")
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    device = pick_device(cfg.device)
    use_amp = cfg.amp and device.type == "cuda"
    data = prepare_data(cfg, progress)
    n_cls = len(data.classes)
    seed_everything(cfg.seed)
    prebuilt = model is not None
    model = (model if prebuilt else build_model(cfg.model, n_cls)).to(device)
    check_countable(model)
    if teacher is not None:
        teacher = teacher.to(device).eval()
    train_labels = data.cache.labels[data.train_idx]
    criterion = make_loss(cfg, train_labels, n_cls).to(device)
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    steps = max(1, len(data.train_idx) // cfg.batch_size)  # batches per epoch (drop_last)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr,
                                                    total_steps=cfg.epochs * steps)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    val_loader = make_eval_loader(data.cache, data.val_idx)
    history: list[dict] = []
    start_epoch, best_f1, wall = 0, -1.0, 0.0

    if resume:
        ckpt = torch.load(out / "last.pt", map_location=device, weights_only=False)
        load_weights(model, ckpt, data.classes, out / "last.pt")
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, best_f1 = ckpt["epoch"] + 1, ckpt["best_f1"]
        history, wall = ckpt["history"], ckpt["wall_seconds"]
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed * 1000 + epoch)  # dropout & cutout draws depend on epoch only
        loader = make_train_loader(data.cache, data.train_idx, cfg.batch_size,
                                   seed=cfg.seed * 1000 + epoch,
                                   randaugment=(cfg.randaugment_n, cfg.randaugment_m),
                                   workers=cfg.workers, persistent=False)
        model.train()
        total, seen = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not progress)
        for x, y in bar:
            x, y = _batch_to(x, device), y.to(device)
            if cfg.cutout > 0:
                x = cutout(x, cfg.cutout)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                logits = model(x)
                loss = criterion(logits, y)
                if teacher is not None:
                    with torch.no_grad():
                        soft = teacher(x)
                    loss = kd_loss(logits, soft, loss, kd_temperature, kd_alpha)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if scheduler.last_epoch < scheduler.total_steps - 1:
                scheduler.step()
            total += loss.item() * len(y)
            seen += len(y)
            bar.set_postfix(loss=f"{total / seen:.3f}")
        pred, true, val_loss = predict(model, val_loader, device)
        f1 = macro_f1(true, pred, n_cls)
        wall += time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "train_loss": total / max(1, seen),
                        "val_loss": val_loss, "val_macro_f1": f1,
                        "val_acc": float((pred == true).mean()),
                        "lr": optimizer.param_groups[0]["lr"], "seconds": wall})
        state = dict(model=model.state_dict(), classes=data.classes, config=asdict(cfg),
                     image_size=cfg.image_size, epoch=epoch, val_macro_f1=f1)
        if prebuilt:
            state["module"] = model  # the architecture cannot be rebuilt from cfg.model
        if f1 > best_f1:
            best_f1 = f1
            save_checkpoint(out / "best.pt", **state)
        save_checkpoint(out / "last.pt", **state, optimizer=optimizer.state_dict(),
                        scheduler=scheduler.state_dict(), scaler=scaler.state_dict(),
                        best_f1=best_f1, history=history, wall_seconds=wall, rng=_rng_state())
        pd.DataFrame(history).to_csv(out / "history.csv", index=False)
        if progress:
            print(f"epoch {epoch + 1:3d}/{cfg.epochs}  train loss {history[-1]['train_loss']:.4f}"
                  f"  val loss {val_loss:.4f}  val macro-F1 {f1:.4f}  ({wall:.0f}s)")
        if on_epoch is not None:
            on_epoch(epoch + 1, f1)
        if stop_after is not None and epoch + 1 - start_epoch >= stop_after \
                and epoch + 1 < cfg.epochs:
            raise KeyboardInterrupt(f"stopped after epoch {epoch + 1} (stop_after)")
    return finish(out, model, data, cfg, device, wall)


def finish(out: Path, model: nn.Module, data: Data, cfg: TrainConfig, device: torch.device,
           wall: float) -> dict:
    """Evaluate best.pt on the validation split and write metrics.json and the plots."""
    best = torch.load(out / "best.pt", map_location=device, weights_only=False)
    load_weights(model, best, data.classes, out / "best.pt")
    pred, true, _ = predict(model, make_eval_loader(data.cache, data.val_idx), device)
    model_cpu = (copy.deepcopy(best["module"]).cpu() if "module" in best else
                 build_model(cfg.model, len(data.classes)))
    model_cpu.load_state_dict({k: v.cpu() for k, v in best["model"].items()})
    metrics = {
        "val_macro_f1": macro_f1(true, pred, len(data.classes)),
        "val_acc": float((pred == true).mean()),
        "best_epoch": int(best["epoch"]) + 1,
        "macs": official_macs(model_cpu, cfg.image_size),
        "params": sum(p.numel() for p in model_cpu.parameters()),
        "input_size": cfg.image_size, "epochs": cfg.epochs, "wall_seconds": wall,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "model": cfg.model, "data": data.source,
        "classes": data.classes, "n_train": int(len(data.train_idx)),
        "n_val": int(len(data.val_idx)), "skipped_files": [str(s[0]) for s in data.skipped],
        "run_dir": str(out),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    cm = confusion_matrix(true, pred, labels=list(range(len(data.classes))))
    pd.DataFrame(cm, index=data.classes, columns=data.classes).to_csv(out / "confusion.csv")
    plot_history(pd.read_csv(out / "history.csv"), out / "curves.png")
    plot_confusion(cm, data.classes, out / "confusion.png")
    return metrics


def plot_history(history: pd.DataFrame, path: Path | None = None):
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    a.plot(history.epoch, history.train_loss, label="train")
    a.plot(history.epoch, history.val_loss, label="val")
    a.set(xlabel="epoch", ylabel="loss", title="loss")
    a.legend()
    b.plot(history.epoch, history.val_macro_f1, color="tab:green")
    b.set(xlabel="epoch", ylabel="macro-F1", title="validation macro-F1", ylim=(0, 1))
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig


def plot_confusion(cm: np.ndarray, classes: list[str], path: Path | None = None):
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sns.heatmap(cm, annot=True, fmt="d", cmap="Greens", xticklabels=classes,
                yticklabels=classes, ax=ax, cbar=False)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (validation)")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig
