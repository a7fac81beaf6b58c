"""The modules of the competition's YAML backbone description, in one table: ``MODULES``.

An entry reads ``[repeat, Module, args]`` with ``args`` positional, as in the competition's
template. Each row of ``MODULES`` (a :class:`ModuleSpec`, in the table-of-rows style of
torchvision's ``mobilenetv3.py``) names a module's arguments in YAML order with their kind,
defaults and allowed values, and holds the builder that takes them by name. Why one table:
the positions used to be spelled out in the builder, the stride check, the search space and
the error messages, and they drifted apart. Everything reads them from here:

- :func:`parse_args` turns a YAML argument list into named values (defaults filled in, every
  value checked, errors naming the module and the argument);
- :func:`yaml_args` turns named values back into the positional list (what the search writes);
- :func:`stride_of` reads an entry's stride; :func:`scale_channels` applies ``width_multiple``;
- :func:`build_block` builds one instance from named values.

A ``null`` argument means "the default" (``[16, 3, 2, null, 1, Hardswish]``: automatic
padding). Each builder takes ``(cin, **values)`` and returns ``(module, out channels)``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from torch import nn
from torchvision.models._utils import _make_divisible
from torchvision.models.efficientnet import MBConv, MBConvConfig
from torchvision.models.mobilenetv2 import InvertedResidual as IRv2
from torchvision.models.mobilenetv3 import InvertedResidual as IRv3
from torchvision.models.mobilenetv3 import InvertedResidualConfig
from torchvision.models.shufflenetv2 import InvertedResidual as ShuffleUnit
from torchvision.models.squeezenet import Fire
from torchvision.ops import Conv2dNormActivation

#: activation names a YAML may use; ``Identity`` means none
ACTIVATIONS: dict[str, type[nn.Module] | None] = {
    "ReLU": nn.ReLU,
    "ReLU6": nn.ReLU6,
    "Hardswish": nn.Hardswish,
    "HardSwish": nn.Hardswish,
    "SiLU": nn.SiLU,
    "Swish": nn.SiLU,
    "Identity": None,
    "Hardsigmoid": nn.Hardsigmoid,
}
_BN = partial(nn.BatchNorm2d, eps=0.001, momentum=0.1)


class ArgError(ValueError):
    """A module name or argument list that does not fit the table; :meth:`at` adds where."""

    def __init__(self, module: str | None, detail: str):
        self.module, self.detail = module, detail
        super().__init__(f"{module}: {detail}" if module else detail)

    def at(self, where: str) -> str:
        """The message behind a location such as ``file.yaml:4: backbone[1]``."""
        return f"{where} {self}" if self.module else f"{where}: {self}"


def is_int(v: Any) -> bool:
    """An integer that is not a bool (YAML's ``true`` must not pass for 1)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """A finite int or float that is not a bool."""
    return (is_int(v) or isinstance(v, float)) and math.isfinite(v)


@dataclass(frozen=True)
class Kind:
    """What an argument holds: a check, and the phrase errors use for it (``must be ...``)."""

    name: str
    wants: str
    check: Callable[[Any], bool]


CHANNELS = Kind(
    "channels", "a positive number of channels (an integer)", lambda v: is_int(v) and v >= 1
)
COUNT = Kind("count", "a positive integer", lambda v: is_int(v) and v >= 1)
STRIDE = Kind("stride", "a positive integer", lambda v: is_int(v) and v >= 1)
PADDING = Kind("padding", "an integer >= 0", lambda v: is_int(v) and v >= 0)
RATIO = Kind("ratio", "a positive number", lambda v: is_number(v) and v > 0)
FLAG = Kind(
    "flag", "0, 1, true or false", lambda v: isinstance(v, bool) or (is_int(v) and v in (0, 1))
)
ACT = Kind(
    "activation",
    f"an activation, one of {sorted(ACTIVATIONS)}",
    lambda v: isinstance(v, str) and v in ACTIVATIONS,
)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class SameAs:
    """A default that copies another argument (a pool's stride defaults to its kernel)."""

    name: str


@dataclass(frozen=True)
class Arg:
    """One named argument: its kind, its default (``REQUIRED`` if none), allowed values."""

    name: str
    kind: Kind
    default: Any = REQUIRED
    choices: tuple = ()

    def check(self, module: str, value: Any) -> None:
        """Raise :class:`ArgError` naming the module and this argument if ``value`` is bad."""
        if not self.kind.check(value):
            hint = did_you_mean(value, ACTIVATIONS) if self.kind is ACT else ""
            raise ArgError(
                module, f"argument '{self.name}' must be {self.kind.wants}, got {value!r}{hint}"
            )
        if self.choices and value not in self.choices:
            raise ArgError(
                module, f"argument '{self.name}' must be one of {list(self.choices)}, got {value!r}"
            )


@dataclass(frozen=True)
class ModuleSpec:
    """One row of the table: a YAML module's arguments in order and its builder."""

    name: str
    args: tuple[Arg, ...]
    build: Callable[..., tuple[nn.Module, int]]

    def __post_init__(self) -> None:
        flags = [a.default is REQUIRED for a in self.args]
        if flags != sorted(flags, reverse=True):
            raise TypeError(f"{self.name}: required arguments must come first")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)

    @property
    def required(self) -> int:
        """How many leading arguments a YAML entry must give."""
        return sum(a.default is REQUIRED for a in self.args)

    @property
    def channels(self) -> tuple[str, ...]:
        """The arguments scaled by ``width_multiple``."""
        return tuple(a.name for a in self.args if a.kind is CHANNELS)

    @property
    def stride(self) -> str | None:
        """The stride argument (repeats after the first use 1), if the module has one."""
        return next((a.name for a in self.args if a.kind is STRIDE), None)


class YoloBottleneck(nn.Module):
    """1x1 conv to ``c*e`` then 3x3 (grouped) conv back to ``c``, plus a shortcut when shapes
    allow (the competition template's ``Bottleneck``, from YOLOv5)."""

    def __init__(self, cin: int, c: int, shortcut: bool = True, g: int = 1, e: float = 0.5):
        super().__init__()
        hidden = max(1, int(c * e))
        self.cv1 = Conv2dNormActivation(cin, hidden, 1, activation_layer=nn.SiLU)
        self.cv2 = Conv2dNormActivation(
            hidden, c, 3, groups=math.gcd(g, math.gcd(hidden, c)), activation_layer=nn.SiLU
        )
        self.add = shortcut and cin == c

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class Flatten(nn.Flatten):
    """``nn.Flatten`` from dim 1 (an explicit class so configs read like the template)."""


def _multiple_of_8(cin: int) -> None:
    """torchvision's MobileNetV3/EfficientNet configs round in channels to a multiple of 8;
    any other count builds but fails at the first forward pass, so refuse it now."""
    if InvertedResidualConfig.adjust_channels(cin, 1.0) != cin:
        raise ValueError(
            f"in channels must be a multiple of 8 (torchvision rounds them), got {cin}"
        )


def _conv(cin: int, c: int, k: int, s: int, p: int | None, g: int, act: str):
    return Conv2dNormActivation(
        cin, c, k, s, p, groups=g, norm_layer=_BN, activation_layer=ACTIVATIONS[act]
    ), c


def _dwconv(cin: int, c: int, k: int, s: int, act: str):
    return Conv2dNormActivation(
        cin, c, k, s, groups=math.gcd(cin, c), norm_layer=_BN, activation_layer=ACTIVATIONS[act]
    ), c


def _bottleneck(cin: int, c: int, shortcut: bool, g: int, e: float):
    return YoloBottleneck(cin, c, bool(shortcut), g, e), c


def _irv2(cin: int, c: int, t: float, s: int):
    return IRv2(cin, c, s, t, norm_layer=_BN), c


def _irv3(cin: int, k: int, t: float, c: int, use_se: bool, use_hs: bool, s: int):
    _multiple_of_8(cin)
    exp = InvertedResidualConfig.adjust_channels(cin * t, 1.0)
    cfg = InvertedResidualConfig(cin, k, exp, c, bool(use_se), "HS" if use_hs else "RE", s, 1, 1.0)
    return IRv3(cfg, _BN), cfg.out_channels


def _mbconv(cin: int, t: float, c: int, s: int, k: int):
    _multiple_of_8(cin)
    return MBConv(MBConvConfig(t, k, s, cin, c, 1), 0.0, _BN), c


def _fire(cin: int, squeeze: int, expand1x1: int, expand3x3: int):
    return Fire(cin, squeeze, expand1x1, expand3x3), expand1x1 + expand3x3


def _shuffle(cin: int, c: int, s: int):
    return ShuffleUnit(cin, c, s), c


def _pool(cls: type[nn.Module], cin: int, k: int, s: int, p: int):
    if 2 * p > k:  # torch checks this only at the first forward pass
        raise ValueError(f"padding p={p} must be at most half the kernel size k={k}")
    return cls(k, s, p), cin


def _linear(cin: int, c: int, act: str | None):
    lin = nn.Linear(cin, c)
    act_cls = ACTIVATIONS[act] if act is not None else None
    return (nn.Sequential(lin, act_cls()) if act_cls else lin), c


def _pool_args() -> tuple[Arg, ...]:
    return Arg("k", COUNT), Arg("s", STRIDE, SameAs("k")), Arg("p", PADDING, 0)


_S12 = (1, 2)  # torchvision's inverted residuals accept only these strides
#: every YAML module, its arguments in the order a YAML entry gives them
MODULES: dict[str, ModuleSpec] = {
    spec.name: spec
    for spec in [
        ModuleSpec(
            "Conv",
            (
                Arg("c", CHANNELS),
                Arg("k", COUNT, 1),
                Arg("s", STRIDE, 1),
                Arg("p", PADDING, None),
                Arg("g", COUNT, 1),
                Arg("act", ACT, "ReLU"),
            ),
            _conv,
        ),
        ModuleSpec(
            "DWConv",
            (Arg("c", CHANNELS), Arg("k", COUNT, 3), Arg("s", STRIDE, 1), Arg("act", ACT, "ReLU")),
            _dwconv,
        ),
        ModuleSpec(
            "Bottleneck",
            (
                Arg("c", CHANNELS),
                Arg("shortcut", FLAG, True),
                Arg("g", COUNT, 1),
                Arg("e", RATIO, 0.5),
            ),
            _bottleneck,
        ),
        ModuleSpec(
            "InvertedResidualv2",
            (Arg("c", CHANNELS), Arg("t", RATIO), Arg("s", STRIDE, choices=_S12)),
            _irv2,
        ),
        ModuleSpec(
            "InvertedResidualv3",
            (
                Arg("k", COUNT),
                Arg("t", RATIO),
                Arg("c", CHANNELS),
                Arg("use_se", FLAG),
                Arg("use_hs", FLAG),
                Arg("s", STRIDE, choices=_S12),
            ),
            _irv3,
        ),
        ModuleSpec(
            "MBConv",
            (Arg("t", RATIO), Arg("c", CHANNELS), Arg("s", STRIDE, choices=_S12), Arg("k", COUNT)),
            _mbconv,
        ),
        ModuleSpec(
            "Fire",
            (Arg("squeeze", CHANNELS), Arg("expand1x1", CHANNELS), Arg("expand3x3", CHANNELS)),
            _fire,
        ),
        ModuleSpec(
            "ShuffleUnit", (Arg("c", CHANNELS), Arg("s", STRIDE, choices=(1, 2, 3))), _shuffle
        ),
        ModuleSpec("MaxPool", _pool_args(), partial(_pool, nn.MaxPool2d)),
        ModuleSpec("AvgPool", _pool_args(), partial(_pool, nn.AvgPool2d)),
        ModuleSpec("GlobalAvgPool", (), lambda cin: (nn.AdaptiveAvgPool2d(1), cin)),
        ModuleSpec("Flatten", (), lambda cin: (Flatten(), cin)),
        ModuleSpec("Linear", (Arg("c", COUNT), Arg("act", ACT, None)), _linear),
    ]
}


def did_you_mean(name: Any, known: Mapping[str, Any]) -> str:
    """`` (did you mean X?)`` for a near miss (case, a typo), else ``""``."""
    if not isinstance(name, str):
        return ""
    close = [k for k in known if k.lower() == name.lower()] or difflib.get_close_matches(
        name, list(known), n=1, cutoff=0.75
    )
    return f" (did you mean {close[0]}?)" if close else ""


def module_spec(name: Any) -> ModuleSpec:
    """The table row of a module, or :class:`ArgError` with the close match."""
    if isinstance(name, str) and name in MODULES:
        return MODULES[name]
    raise ArgError(
        None, f"unknown module {name!r}{did_you_mean(name, MODULES)}; known: {sorted(MODULES)}"
    )


def parse_args(module: str, args: Sequence | None) -> dict[str, Any]:
    """Named values of a YAML argument list, defaults filled in and every value checked."""
    spec = module_spec(module)
    args = [] if args is None else args
    if not isinstance(args, (list, tuple)):
        raise ArgError(module, f"arguments must be a list {list(spec.names)}, got {args!r}")
    if not spec.required <= len(args) <= len(spec.args):
        raise ArgError(
            module,
            f"expected {spec.required}..{len(spec.args)} arguments "
            f"{list(spec.names)}, got {list(args)}",
        )
    values: dict[str, Any] = {}
    for i, arg in enumerate(spec.args):
        value = args[i] if i < len(args) else None
        if value is None:
            if arg.default is REQUIRED:
                raise ArgError(module, f"argument '{arg.name}' is required, got null")
            value = arg.default
        else:
            arg.check(module, value)
        values[arg.name] = value
    for arg in spec.args:
        if isinstance(arg.default, SameAs) and isinstance(values[arg.name], SameAs):
            values[arg.name] = values[arg.default.name]
    return values


def yaml_args(module: str, **values: Any) -> list:
    """The positional YAML list of named values, checked: what a generated entry writes.

    An argument left out before one that is given is written as its default (``null`` when
    the default is computed), and trailing ones are left out, so
    ``yaml_args("Conv", c=16, k=3, s=2, act="ReLU") == [16, 3, 2, None, 1, "ReLU"]``.
    """
    spec = module_spec(module)
    unknown = [k for k in values if k not in spec.names]
    if unknown:
        raise ArgError(module, f"unknown argument(s) {unknown}; expected {list(spec.names)}")
    missing = [a.name for a in spec.args[: spec.required] if a.name not in values]
    if missing:
        raise ArgError(module, f"missing required argument(s) {missing}")
    last = max((i for i, name in enumerate(spec.names) if name in values), default=-1)
    out = [
        values[a.name]
        if a.name in values
        else (None if isinstance(a.default, SameAs) else a.default)
        for a in spec.args[: last + 1]
    ]
    parse_args(module, out)
    return out


def stride_of(module: str, args: Sequence | None) -> int:
    """The stride of an entry's first repeat, read from its YAML arguments (1 for modules
    without a stride: Fire, Bottleneck, the head)."""
    spec = module_spec(module)
    values = parse_args(module, args)
    return values[spec.stride] if spec.stride else 1


def scale_channels(module: str, values: Mapping[str, Any], width: float) -> dict[str, Any]:
    """``values`` with channel arguments times ``width``, rounded to a multiple of 8 (as
    torchvision's ``_make_divisible``; also when ``width`` is 1)."""
    channels = module_spec(module).channels
    return {k: _make_divisible(v * width, 8) if k in channels else v for k, v in values.items()}


def build_block(
    name: str, cin: int, values: Mapping[str, Any], first: bool = True
) -> tuple[nn.Module, int]:
    """``(module, out channels)`` from named values (see :func:`parse_args`); a repeat after
    the ``first`` uses stride 1, so only an entry's first instance downsamples."""
    spec = module_spec(name)
    if spec.stride and not first:
        values = {**values, spec.stride: 1}
    return spec.build(cin, **values)
