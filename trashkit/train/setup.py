"""Everything a run needs before its first batch: folder, data, network, optimiser, batches.

The folder rules keep every run's outputs safe:

* one process per folder: a run holds the folder's lock (:class:`~trashkit.runs.RunLock`)
  from its first check to its end, so a second training or a ``resume`` of a run still going
  is refused with the holder's name;
* a new run needs an empty (or new) folder, or one where a run never finished an epoch (it
  left only its config); everything the config names is checked before ``config.json`` is
  written, so a mistake leaves no run behind;
* a resumed run continues the folder's own ``config.json`` (a parameter given explicitly that
  differs from it is an error, except the machine's: ``device``, ``workers``), from
  ``last.pt`` when an epoch has finished, from the start otherwise;
* what interrupted saves left (``.name.pid.tmp``) is removed when the folder is next opened.
"""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import Checkpoint, describe_architecture, load_checkpoint
from ..complexity import check_countable
from ..data import BatchAugment, DataSplit, MixBatch, make_eval_loader, make_train_loader
from ..models import build_model
from ..models.pretrained import freeze_blocks, load_pretrained
from ..runs import LOCK_NAME, RunLock, new_run_dir, remove_stale_temporaries, write_json
from .bank import check_bank, load_bank
from .callbacks import Callback, Distill
from .config import TrainConfig, run_split
from .distributed import Dist, barrier, setup_distributed, wrap
from .loop import Run
from .losses import make_loss


#: properties of the machine, not of the run: a resumed run may take new values for them
MACHINE_KEYS = ("device", "workers")
#: what a folder may hold for a new run to start in it: nothing of value (a run that never
#: finished an epoch has written only its config)
_RESTARTABLE = {"config.json", LOCK_NAME}


def _compare(saved: TrainConfig, given: TrainConfig | dict | None, out: Path) -> TrainConfig:
    """A resumed run keeps its saved config; an explicit parameter that differs is an error,
    except the machine's own (:data:`MACHINE_KEYS`), which the given values replace."""
    if given is None:
        return saved
    mine = saved.to_dict()
    theirs = (
        given.to_dict()
        if isinstance(given, TrainConfig)
        else TrainConfig.from_dict({**mine, **given}).to_dict()
    )
    keys = mine if isinstance(given, TrainConfig) else given
    diff = {k: (mine[k], theirs[k]) for k in keys if k not in MACHINE_KEYS and mine[k] != theirs[k]}
    if diff:
        raise ValueError(
            f"resume: config differs from the run's config.json ({out}): "
            f"{{name: (saved, given)}} = {diff}"
        )
    machine = {k: theirs[k] for k in MACHINE_KEYS if k in keys}
    return dataclasses.replace(saved, **machine) if machine else saved


def _check_new_folder(out: Path) -> None:
    """A new run needs an empty folder, or one where a run never finished an epoch."""
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if set(held) <= _RESTARTABLE:
        return
    if (out / "config.json").exists():
        raise FileExistsError(
            f"{out} already holds a training run; pass resume=True to "
            "continue it, or choose a new output_dir"
        )
    shown = [n for n in held if n != LOCK_NAME][:5]
    raise FileExistsError(
        f"{out} already holds files ({shown}); a new run needs an empty or new output_dir"
    )


def _remove_if_unused(out: Path) -> None:
    """A new run that failed its checks leaves no folder behind (only its lock was there)."""
    if out.is_dir() and [p.name for p in out.iterdir()] == [LOCK_NAME]:
        (out / LOCK_NAME).unlink(missing_ok=True)
        out.rmdir()


def _check_spec(cfg: TrainConfig) -> None:
    """Build the network on the ``meta`` device (no memory, no data yet): a wrong model
    spec fails in the first second, before anything is written."""
    try:
        with torch.device("meta"):
            build_model(cfg.model, 2)
    except (ValueError, TypeError, KeyError, FileNotFoundError) as exc:
        raise ValueError(f"training parameter model={cfg.model!r} is invalid: {exc}") from None


def open_run_dir(
    cfg: TrainConfig | dict | None, output_dir: str | Path | None, resume: bool, d: Dist
) -> tuple[TrainConfig, Path, RunLock | None]:
    """The run's config (checked once), its folder and the folder's lock (rank 0), by the
    rules in the module docstring. A new run's ``config.json`` is written later, by
    :func:`start`, once everything it names has been checked."""
    if d.world > 1 and output_dir is None:
        raise ValueError("a distributed run needs an explicit output_dir (shared by all ranks)")
    if resume:
        out = Path(output_dir) if output_dir is not None else None
        if out is None or not (out / "config.json").is_file():
            raise FileNotFoundError(
                f"resume=True needs an output_dir holding a run's config.json (got {output_dir})"
            )
    else:
        if cfg is None:
            raise ValueError("a new run needs a config")
        if isinstance(cfg, dict):
            cfg = TrainConfig.from_dict(cfg)
        else:
            cfg.validate()
        _check_spec(cfg)
        out = new_run_dir("train") if output_dir is None else Path(output_dir)
    lock = RunLock(out) if d.main else None
    try:
        if d.main:
            remove_stale_temporaries(out)
        if resume:
            cfg = _compare(TrainConfig.load(out / "config.json"), cfg, out)
        elif d.main:
            _check_new_folder(out)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return cfg, out, lock


def pick_device(name: str, d: Dist) -> torch.device:
    """``auto``: this rank's GPU when there is one, else the CPU. A device this machine does
    not have is an error naming it (a resumed run may name another: it is the machine's)."""
    if name == "auto":
        return torch.device(f"cuda:{d.local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (
        not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()
    ):
        raise ValueError(
            f"training parameter device={name!r} is not available on this machine "
            f"({torch.cuda.device_count()} CUDA device(s)); use device='cpu' or 'auto' "
            "(a resumed run takes a new device: train({'device': 'cpu'}, folder, resume=True))"
        )
    return device


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA only: bf16 where the GPU has it (no scaler needed), else fp16."""
    mode = {True: "auto", False: "off"}.get(cfg.amp, cfg.amp)
    if device.type != "cuda" or mode == "off":
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp16": torch.float16, "bf16": torch.bfloat16}[mode]


def make_deterministic(cfg: TrainConfig, device: torch.device) -> None:
    """Same seed, same GPU -> same numbers: deterministic kernels, no cuDNN autotuning, and
    cuBLAS' workspace setting (it must be set before cuBLAS starts)."""
    if device.type != "cuda":
        return
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = cfg.deterministic
    torch.backends.cudnn.benchmark = not cfg.deterministic


def build_network(
    cfg: TrainConfig, classes: list[str], callbacks: list[Callback]
) -> tuple[nn.Module, list | None]:
    """``(network, architecture)``: a callback's prebuilt network, ``init_from``'s, or
    ``cfg.model`` built fresh; ``architecture`` stores the shapes of a prebuilt one."""
    for cb in callbacks:
        net = cb.network(cfg, len(classes))
        if net is not None:
            return net, describe_architecture(net)
    if cfg.init_from:
        start = load_checkpoint(cfg.init_from)
        if list(start.classes) != list(classes):
            raise ValueError(
                f"init_from {cfg.init_from} was trained on classes "
                f"{start.classes}, but the data has {classes}"
            )
        return start.build_model(), start.architecture
    net = build_model(cfg.model, len(classes))
    if cfg.pretrained:
        load_pretrained(net, cfg.model, cfg.pretrained)
    return net, None


def build_optimizer(cfg: TrainConfig, net: nn.Module, steps: int):
    """SGD (Nesterov) without weight decay on biases and norms, and OneCycleLR over all
    steps; OneCycle also cycles the momentum when ``cfg.momentum`` is a [low, high] pair."""
    trained = [p for p in net.parameters() if p.requires_grad]  # frozen blocks stay out
    decay = [p for p in trained if p.ndim > 1]
    no_decay = [p for p in trained if p.ndim <= 1]
    rng = cfg.momentum_range
    mom = rng[1] if rng else float(cfg.momentum)
    opt = torch.optim.SGD(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        momentum=mom,
        nesterov=mom > 0,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=cfg.lr,
        total_steps=cfg.epochs * steps,
        cycle_momentum=rng is not None,
        base_momentum=rng[0] if rng else mom,
        max_momentum=mom,
    )
    return opt, sched


def make_batches(
    cfg: TrainConfig, data, device: torch.device, d: Dist, notes: list[str], bank=None
):
    """Training batches built by CPU worker processes, or on the GPU from a cache held there
    (``augment_on``), falling back to the workers when the cache does not fit."""
    where = cfg.augment_on
    if where == "auto":
        where = "device" if device.type == "cuda" else "workers"
    if where == "device" and device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if data.cache.images.nbytes > 0.5 * free:
            notes.append(
                f"the {data.cache.images.nbytes / 2**30:.1f} GiB cache does not fit "
                "half the free GPU memory: augmenting in CPU workers instead"
            )
            where = "workers"
    if bank is not None:  # the bank's views are augmented already, each as the teacher saw it
        cache, info = bank
        notes.append(f"training on {len(cache)} views of teacher {info['teacher']}")
        cache_rows, augment = (cache, np.arange(len(cache))), BatchAugment(None, flip=False)
    else:
        augment = BatchAugment((cfg.randaugment_n, cfg.randaugment_m), cfg.crop_scale, cfg.cutout)
        cache_rows = (data.cache, data.train_idx)
    return make_train_loader(
        *cache_rows,
        cfg.batch_size,
        cfg.seed,
        augment,
        cfg.workers,
        where,
        device,
        d.rank,
        d.world,
    )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def restore(run: Run, ckpt: Checkpoint) -> None:
    """Continue from ``last.pt`` (read once, by :func:`start`): weights, optimiser, schedule,
    average, history."""
    s = ckpt.state or {}
    if "net" not in s:
        raise ValueError(f"{run.out / 'last.pt'} holds no training state to resume from")
    run.net.load_state_dict(s["net"])
    run.optimizer.load_state_dict(s["optimizer"])
    run.scheduler.load_state_dict(s["scheduler"])
    run.scaler.load_state_dict(s["scaler"])
    if run.ema is not None and s.get("ema") is not None:
        run.ema.load_state_dict(s["ema"])
    run.best_f1, run.history, run.wall = s["best_f1"], list(s["history"]), s["wall"]
    run.epoch = ckpt.epoch + 1


def load_data(cfg: TrainConfig, d: Dist, progress: bool) -> DataSplit:
    """The run's images; rank 0 builds the image cache first, the other ranks then read it."""
    if not d.main:
        barrier(d)
    data = run_split(cfg, progress and d.main)
    if d.main:
        barrier(d)
    return data


def teacher_callback(cfg: TrainConfig, classes: list[str]) -> Distill:
    """Distillation from ``cfg.teacher``, refused when it was trained on other classes."""
    teacher = load_checkpoint(cfg.teacher)
    if list(teacher.classes) != list(classes):
        raise ValueError(
            f"teacher {cfg.teacher} was trained on classes {teacher.classes}, but the data "
            f"has {classes}"
        )
    return Distill(teacher.build_model(), cfg.kd_temperature, cfg.kd_alpha)


def start(
    cfg: TrainConfig | dict | None,
    output_dir,
    resume: bool,
    callbacks: list[Callback],
    progress: bool,
) -> Run:
    """A :class:`Run` ready for its next epoch (restored from ``last.pt`` when resuming).

    Everything a new run's config names (data, classes, model, device, starting weights,
    teacher) is checked before its ``config.json`` is written, so a mistake leaves no run
    behind; the folder stays locked until the run ends (:class:`~trashkit.runs.RunLock`)."""
    d = setup_distributed(
        cfg.get("device", "auto") if isinstance(cfg, dict) else getattr(cfg, "device", "auto")
    )
    cfg, out, lock = open_run_dir(cfg, output_dir, resume, d)
    try:
        device = pick_device(cfg.device, d)
        make_deterministic(cfg, device)
        data = load_data(cfg, d, progress)
        seed_everything(cfg.seed)
        callbacks = list(callbacks)
        saved = load_checkpoint(out / "last.pt") if resume and (out / "last.pt").is_file() else None
        if saved is not None:
            net, arch = saved.build_model(), saved.architecture
        else:
            net, arch = build_network(cfg, data.classes, callbacks)
        if cfg.teacher:  # after the student, so a teacher never changes the student's init
            callbacks.append(teacher_callback(cfg, data.classes))
        bank = load_bank(cfg.teacher_bank) if cfg.teacher_bank else None
        if bank is not None:
            check_bank(bank[1], cfg, data)
        if d.main and (not resume or saved is None):
            write_json(out / "config.json", cfg.to_dict())
        run = assemble(cfg, out, data, device, d, (net, arch, saved, bank), callbacks, progress)
    except BaseException:
        if lock is not None:
            lock.release()
            if not resume:
                _remove_if_unused(out)
        raise
    run.lock = lock
    if resume and saved is None:
        run.notes.append("no epoch had finished: started again from epoch 1 with the saved config")
    return run


def assemble(cfg, out, data, device, d, parts, callbacks, progress) -> Run:
    """Put the parts together (and restore ``last.pt`` when there is one); ``parts`` is
    ``(network, its architecture, last.pt's checkpoint or None, the teacher bank or None)``."""
    net, arch, saved, bank = parts
    net = net.to(device).train()
    freeze_blocks(net, cfg.freeze)
    check_countable(net)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    model = wrap(net, d, device, cfg.sync_bn)
    net = getattr(model, "module", net)
    notes = list(data.notes)
    batches = make_batches(cfg, data, device, d, notes, bank)
    optimizer, scheduler = build_optimizer(cfg, net, max(1, len(batches)))
    dtype = amp_dtype(cfg, device)
    run = Run(
        cfg,
        out,
        data,
        device,
        net,
        model,
        optimizer,
        scheduler,
        torch.amp.GradScaler("cuda", enabled=dtype == torch.float16),
        make_loss(
            cfg.loss,
            data.cache.labels[data.train_idx],
            len(data.classes),
            cfg.label_smoothing,
            cfg.focal_gamma,
        ).to(device),
        batches,
        make_eval_loader(data.cache, data.val_idx),
        MixBatch(len(data.classes), cfg.mixup, cfg.cutmix),
        d,
        dtype,
        callbacks=callbacks,
        architecture=arch,
        progress=progress,
        notes=notes,
    )
    if cfg.ema > 0:
        ema_fn = torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema)
        run.ema = torch.optim.swa_utils.AveragedModel(net, multi_avg_fn=ema_fn, use_buffers=True)
    if saved is not None:
        restore(run, saved)
    return run
