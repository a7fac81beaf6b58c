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
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from .models import build_model, is_yaml_spec, load_config
from .models.blocks import CHANNELS, COUNT, PADDING, STRIDE, Kind, is_int, is_number
from .runs import write_atomic

VERSION = 3
#: the oldest version read without ``trust_legacy``: version 2 held the same plain data, its
#: weights under the key ``model``
SAFE_SINCE = 2

#: the most parameters (weights and buffers) a checkpoint may declare: ten times the largest
#: network any chapter trains (EfficientNet-Lite0, 4.7M). A grader that loads a whole class's
#: files never allocates more than this for one of them.
MAX_PARAMS = 50_000_000
#: the most layers an architecture description may list
MAX_LAYERS = 5_000
#: a path segment of an architecture description: a child module's name, never an attribute
#: such as ``__class__`` (walking attributes let a file rewrite classes of the whole process)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*")


def _pair_of(kind: Kind) -> Kind:
    return Kind(
        kind.name,
        f"a list of two values, each {kind.wants}",
        lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(map(kind.check, v)),
    )


BOOL = Kind("bool", "true or false", lambda v: isinstance(v, bool))
EPS = Kind("eps", "a positive number", lambda v: is_number(v) and 0 < v < 1)
MOMENTUM = Kind(
    "momentum", "a number in [0, 1] or null", lambda v: v is None or (is_number(v) and 0 <= v <= 1)
)
PAD_MODE = Kind(
    "padding_mode",
    "one of zeros, reflect, replicate, circular",
    lambda v: v in ("zeros", "reflect", "replicate", "circular"),
)
_NORM = {
    "num_features": CHANNELS,
    "eps": EPS,
    "momentum": MOMENTUM,
    "affine": BOOL,
    "track_running_stats": BOOL,
}

#: layer types an architecture description may rebuild: each shape argument and what it
#: must hold (the kinds of the YAML table, so a file passes the same checks as a config)
LAYERS: dict[str, tuple[type, dict[str, Kind]]] = {
    "Conv2d": (
        nn.Conv2d,
        {
            "in_channels": CHANNELS,
            "out_channels": CHANNELS,
            "kernel_size": _pair_of(COUNT),
            "stride": _pair_of(STRIDE),
            "padding": _pair_of(PADDING),
            "dilation": _pair_of(COUNT),
            "groups": COUNT,
            "bias": BOOL,
            "padding_mode": PAD_MODE,
        },
    ),
    "Linear": (nn.Linear, {"in_features": COUNT, "out_features": COUNT, "bias": BOOL}),
    "BatchNorm2d": (nn.BatchNorm2d, _NORM),
    "BatchNorm1d": (nn.BatchNorm1d, _NORM),
}


class CheckpointError(ValueError):
    """A file that is not a (safe, current) trashkit checkpoint; the message says why."""


@dataclass
class Checkpoint:
    """Everything a checkpoint file holds. ``state`` (optimizer, scheduler, history, RNG...)
    is only in ``last.pt``, for resuming; ``best.pt`` is weights plus what rebuilds them.
    ``model_yaml`` is the backbone YAML of a model spec that names a file: a checkpoint
    rebuilds its network without reading any path it names."""

    weights: dict
    classes: list[str]
    config: dict
    image_size: int
    epoch: int = 0
    val_macro_f1: float = float("nan")
    architecture: list[dict] | None = None
    state: dict | None = None
    version: int = VERSION
    extra: dict = field(default_factory=dict)
    model_yaml: dict | None = None

    def build_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The network with these weights, in eval mode on ``device``.

        It is built on the ``meta`` device first (no memory): its parameter count and every
        tensor's shape are checked against the weights in the file before anything real is
        allocated."""
        where = f"model {self.config.get('model')!r}"
        check_fit(self._network("meta"), self.weights, where)
        net = self._network("cpu")
        load_weights(net, self.weights, where=where)
        return net.to(device).eval()

    def _network(self, device: str) -> nn.Module:
        spec = self.config.get("model")
        if not isinstance(spec, str):
            raise CheckpointError(f"config 'model' must be a model spec string, got {spec!r}")
        if is_yaml_spec(spec) and self.model_yaml is None:
            raise CheckpointError(
                f"model {spec!r} names a YAML file, and this checkpoint does not carry "
                "its YAML (model_yaml): a checkpoint never reads a path it names"
            )
        try:
            with torch.device(device):
                net = build_model(spec, len(self.classes), self.model_yaml)
                if self.architecture is not None:
                    net = apply_architecture(net, self.architecture)
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"model {spec!r} cannot be built: {exc}") from None
        return net


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


def _segments(path: object) -> list[str]:
    """The child names of an architecture path, each a plain module name."""
    if not isinstance(path, str) or not path:
        raise CheckpointError(
            f"architecture: a layer path must be a non-empty string, got {path!r}"
        )
    parts = path.split(".")
    bad = [p for p in parts if not _NAME.fullmatch(p)]
    if bad:
        raise CheckpointError(
            f"architecture: path {path!r} has {bad[0]!r}, which is not a child module's name "
            "(letters, digits and _, not starting with _)"
        )
    return parts


def _child(parent: nn.Module, name: str, path: str) -> nn.Module:
    """``parent``'s child module ``name`` (through ``_modules``, never an attribute); a new
    ``nn.Sequential`` where there is none yet or where a decomposition replaced a layer by
    a chain of layers."""
    current = parent._modules.get(name)
    if current is None or isinstance(current, tuple(t for t, _ in LAYERS.values())):
        if current is None and hasattr(parent, name):
            raise CheckpointError(f"architecture: {path!r}: {name!r} is not a child module")
        current = nn.Sequential()
        parent._modules[name] = current
    return current


def _layer(item: object) -> tuple[list[str], nn.Module]:
    """``(path segments, fresh layer)`` of one description entry, every argument checked."""
    if not isinstance(item, dict) or not isinstance(item.get("args"), dict):
        raise CheckpointError(
            f"architecture: an entry must be {{path, type, args}}, got {str(item)[:80]}"
        )
    path, kind, args = item.get("path"), item.get("type"), item["args"]
    parts = _segments(path)
    if kind not in LAYERS:
        raise CheckpointError(
            f"architecture: unknown layer type {kind!r} at {path!r}; supported: {sorted(LAYERS)}"
        )
    cls, kinds = LAYERS[kind]
    unknown = sorted(set(args) - set(kinds))
    if unknown:
        raise CheckpointError(f"architecture: {path!r} ({kind}): unknown argument(s) {unknown}")
    for name, value in args.items():
        if not kinds[name].check(value):
            raise CheckpointError(
                f"architecture: {path!r} ({kind}): argument '{name}' must be "
                f"{kinds[name].wants}, got {value!r}"
            )
    try:
        layer = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"architecture: {path!r} ({kind}): {exc}") from None
    return parts, layer


def apply_architecture(net: nn.Module, description: list[dict]) -> nn.Module:
    """Put a fresh layer of the described type and shape at every described path.

    Only child modules are walked and replaced, and only layer types of :data:`LAYERS` are
    built, so a description changes this network and nothing else in the process."""
    if not isinstance(description, list) or len(description) > MAX_LAYERS:
        raise CheckpointError(f"architecture: must be a list of at most {MAX_LAYERS} layers")
    for item in description:
        parts, layer = _layer(item)
        parent = net
        for name in parts[:-1]:
            parent = _child(parent, name, item["path"])
        name = parts[-1]
        if name not in parent._modules and hasattr(parent, name):
            raise CheckpointError(f"architecture: {item['path']!r}: {name!r} is not a child module")
        parent._modules[name] = layer
    return net


def check_fit(net: nn.Module, weights: dict, where: str = "the model") -> None:
    """Refuse a network larger than :data:`MAX_PARAMS`, or whose tensors are not exactly the
    weights present (names and shapes): before anything real is built."""
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    total = sum(math.prod(s) for s in expected.values())
    if total > MAX_PARAMS:
        raise CheckpointError(
            f"{where} declares {total:,} parameters; a checkpoint may hold at most "
            f"{MAX_PARAMS:,} (trashkit.checkpoint.MAX_PARAMS)"
        )
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        raise CheckpointError(f"the weights of {where} must map names to tensors")
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    shapes = sorted(
        k for k in set(expected) & set(weights) if tuple(weights[k].shape) != expected[k]
    )
    if missing or extra or shapes:
        detail = "; ".join(
            f"{what}: {names[:3]}{' ...' if len(names) > 3 else ''}"
            for what, names in (
                ("missing", missing),
                ("unexpected", extra),
                ("wrong shape", shapes),
            )
            if names
        )
        raise CheckpointError(f"the weights do not fit {where}: {detail}")


def load_weights(net: nn.Module, weights: dict, where: str = "the model") -> None:
    """``load_state_dict`` with an error that says what does not fit, in two lines."""
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:
        first = " ".join(str(exc).strip().splitlines()[:3])[:400]
        raise CheckpointError(f"the weights do not fit {where}: {first}") from None


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    """Write atomically: an interrupted save never destroys the previous checkpoint. A model
    spec that names a YAML file gets that YAML embedded (``model_yaml``)."""
    spec = ckpt.config.get("model")
    if ckpt.model_yaml is None and isinstance(spec, str) and is_yaml_spec(spec):
        ckpt.model_yaml = load_config(spec.removeprefix("arcface:"))[0]
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


#: what each field of a file must hold (checked before a Checkpoint is made from it)
FIELDS: dict[str, tuple[str, object]] = {
    "weights": ("a dict of tensors", lambda v: isinstance(v, dict)),
    "classes": (
        "a non-empty list of distinct class names",
        lambda v: (
            isinstance(v, list)
            and 0 < len(v) <= 10_000
            and all(isinstance(c, str) and c for c in v)
            and len(set(v)) == len(v)
        ),
    ),
    "config": ("a dict", lambda v: isinstance(v, dict)),
    "image_size": ("an integer in 8..4096", lambda v: COUNT.check(v) and 8 <= v <= 4096),
    "epoch": ("an integer >= 0", lambda v: PADDING.check(v)),
    "val_macro_f1": ("a number", lambda v: isinstance(v, (int, float))),
    "architecture": ("a list or null", lambda v: v is None or isinstance(v, list)),
    "state": ("a dict or null", lambda v: v is None or isinstance(v, dict)),
    "extra": ("a dict", lambda v: isinstance(v, dict)),
    "model_yaml": ("a dict or null", lambda v: v is None or isinstance(v, dict)),
}


def _upgrade(raw: dict, path: Path, trust_legacy: bool) -> dict:
    """A file's fields as this version names them; older and newer versions refused or
    read as the module docstring says."""
    version = raw.get("version", 1)
    if not is_int(version) or version > VERSION:
        raise CheckpointError(
            f"{path} was written by a newer trashkit (checkpoint version "
            f"{version!r}; this one reads up to {VERSION})"
        )
    if version < SAFE_SINCE and not trust_legacy:
        raise CheckpointError(
            f"{path} is a version-{version} checkpoint (older trashkit); "
            "load it with trust_legacy=True if you wrote it yourself"
        )
    if version < VERSION:
        raw["weights"] = raw.pop("model", None)
    if "module" in raw:
        raw["architecture"] = describe_architecture(raw.pop("module"))
    raw["version"] = VERSION
    return raw


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
    if not isinstance(raw, dict) or not ({"model", "weights"} & set(raw)) or "config" not in raw:
        raise CheckpointError(f"{path} is not a trashkit checkpoint (no model weights/config)")
    raw = _upgrade(raw, path, trust_legacy)
    missing = [k for k in ("weights", "classes", "image_size") if raw.get(k) is None]
    if missing:
        raise CheckpointError(f"{path} is not a trashkit checkpoint (missing {missing})")
    for name, (wants, ok) in FIELDS.items():
        if name in raw and not ok(raw[name]):
            raise CheckpointError(
                f"{path}: field {name!r} must be {wants}, got {str(raw[name])[:80]}"
            )
    known = {f.name for f in fields(Checkpoint)}
    return Checkpoint(**{k: v for k, v in raw.items() if k in known})
