"""One checkpoint type for training, scoring and compression, safe to load from strangers.

A checkpoint holds only tensors and plain data (numbers, strings, lists, dicts), so it is read
with ``torch.load(weights_only=True)``: unpickling a file a student mailed you cannot run code.
The network is rebuilt from its one-line model spec (``config["model"]``) and, for a pruned
or decomposed network, from ``architecture``: a plain description of every conv, linear and
batch-norm layer (path, type, shape arguments) that is put in place of the spec's layers
before the weights are loaded. Anything else is refused with a message that says why.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from .models import build_model
from .runs import write_atomic

VERSION = 2

#: layer types an architecture description may rebuild, with their shape arguments
LAYERS: dict[str, tuple[type, tuple[str, ...]]] = {
    "Conv2d": (
        nn.Conv2d,
        (
            "in_channels",
            "out_channels",
            "kernel_size",
            "stride",
            "padding",
            "dilation",
            "groups",
            "bias",
            "padding_mode",
        ),
    ),
    "Linear": (nn.Linear, ("in_features", "out_features", "bias")),
    "BatchNorm2d": (
        nn.BatchNorm2d,
        ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    ),
    "BatchNorm1d": (
        nn.BatchNorm1d,
        ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    ),
}


class CheckpointError(ValueError):
    """A file that is not a (safe, current) trashkit checkpoint; the message says why."""


@dataclass
class Checkpoint:
    """Everything a checkpoint file holds. ``state`` (optimizer, scheduler, history, RNG...)
    is only in ``last.pt``, for resuming; ``best.pt`` is weights plus what rebuilds them."""

    model: dict
    classes: list[str]
    config: dict
    image_size: int
    epoch: int = 0
    val_macro_f1: float = float("nan")
    architecture: list[dict] | None = None
    state: dict | None = None
    version: int = VERSION
    extra: dict = field(default_factory=dict)

    def build_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The network with these weights, in eval mode on ``device``."""
        net = build_model(self.config["model"], len(self.classes))
        if self.architecture is not None:
            net = apply_architecture(net, self.architecture)
        load_weights(net, self.model, where=f"model {self.config.get('model')!r}")
        return net.to(device).eval()


def _arg(module: nn.Module, name: str):
    value = getattr(module, name)
    if name == "bias":
        return value is not None
    return list(value) if isinstance(value, tuple) else value


def describe_architecture(model: nn.Module) -> list[dict]:
    """Plain data that rebuilds ``model``'s layer shapes on top of its spec's network.

    Refuses a network holding a layer with weights whose type it cannot rebuild (the
    description would silently lose it).
    """
    out = []
    for path, m in model.named_modules():
        kind = type(m).__name__
        if kind in LAYERS and type(m) is LAYERS[kind][0]:
            out.append(
                {"path": path, "type": kind, "args": {a: _arg(m, a) for a in LAYERS[kind][1]}}
            )
        elif any(True for _ in m.parameters(recurse=False)):
            raise CheckpointError(
                f"layer {path!r} ({kind}) has weights but cannot be stored "
                f"as plain data; supported layers: {sorted(LAYERS)}"
            )
    return out


def _container(root: nn.Module, path: str) -> nn.Module:
    """The module at ``path``, turned into an ``nn.Sequential`` first if it is a layer that
    a decomposition replaced by a chain of layers."""
    if not path:
        return root
    parent_path, _, name = path.rpartition(".")
    parent = _container(root, parent_path)
    current = getattr(parent, name, None)
    if current is None or isinstance(current, tuple(t for t, _ in LAYERS.values())):
        current = nn.Sequential()
        setattr(parent, name, current)
    return current


def apply_architecture(net: nn.Module, description: list[dict]) -> nn.Module:
    """Put a fresh layer of the described type and shape at every described path."""
    for item in description:
        kind = item.get("type")
        if kind not in LAYERS:
            raise CheckpointError(
                f"architecture: unknown layer type {kind!r} at "
                f"{item.get('path')!r}; supported: {sorted(LAYERS)}"
            )
        cls, names = LAYERS[kind]
        args = {
            k: tuple(v) if isinstance(v, list) else v for k, v in item["args"].items() if k in names
        }
        parent_path, _, name = item["path"].rpartition(".")
        setattr(_container(net, parent_path), name, cls(**args))
    return net


def load_weights(net: nn.Module, weights: dict, where: str = "the model") -> None:
    """``load_state_dict`` with an error that says what does not fit, in two lines."""
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:
        first = " ".join(str(exc).strip().splitlines()[:3])[:400]
        raise CheckpointError(f"the weights do not fit {where}: {first}") from None


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    """Write atomically: an interrupted save never destroys the previous checkpoint."""
    buf = io.BytesIO()
    torch.save(asdict(ckpt), buf)
    return write_atomic(path, buf.getvalue())


def _pickle_error(text: str) -> str:
    """The useful line of torch's long weights-only message (e.g. 'Unsupported operand')."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    useful = [
        ln
        for ln in lines
        if "WeightsUnpickler" not in ln
        and "PyTorch 2.6" not in ln
        and "Please file" not in ln
        and "Check the documentation" not in ln
    ]
    return (useful or lines or ["unknown error"])[0][:200]


def _read(path: Path, device, trust_legacy: bool) -> dict:
    try:
        return torch.load(path, map_location=device, weights_only=not trust_legacy)
    except FileNotFoundError:
        raise
    except Exception as exc:  # any unpickling failure: say why it was refused
        text = str(exc)
        unsafe = "Unsupported global" in text or "GLOBAL" in text
        reason = (
            "it contains pickled Python objects, which could run code when loaded"
            if unsafe
            else f"it is not a readable checkpoint ({type(exc).__name__}: {_pickle_error(text)})"
        )
        hint = (
            " trashkit checkpoints hold only tensors and plain data; for a file you trust "
            "that an older trashkit wrote, pass trust_legacy=True."
            if unsafe
            else ""
        )
        raise CheckpointError(f"{path} refused: {reason}.{hint}") from None


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", trust_legacy: bool = False
) -> Checkpoint:
    """Read a checkpoint safely (``weights_only=True``) and check its version and fields.

    ``trust_legacy=True`` is the explicit opt-in for a version-1 file (which may pickle a
    whole module): only for files you wrote yourself.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    raw = _read(path, device, trust_legacy)
    if not isinstance(raw, dict) or "model" not in raw or "config" not in raw:
        raise CheckpointError(f"{path} is not a trashkit checkpoint (no model weights/config)")
    version = raw.get("version", 1)
    if version > VERSION:
        raise CheckpointError(
            f"{path} was written by a newer trashkit (checkpoint version "
            f"{version}; this one reads up to {VERSION})"
        )
    if version < VERSION and not trust_legacy:
        raise CheckpointError(
            f"{path} is a version-{version} checkpoint (older trashkit); "
            "load it with trust_legacy=True if you wrote it yourself"
        )
    if "module" in raw:
        raw["architecture"] = describe_architecture(raw.pop("module"))
    known = {f.name for f in fields(Checkpoint)}
    raw["version"] = VERSION
    missing = [k for k in ("classes", "image_size") if k not in raw]
    if missing:
        raise CheckpointError(f"{path} is not a trashkit checkpoint (missing {missing})")
    return Checkpoint(**{k: v for k, v in raw.items() if k in known})
