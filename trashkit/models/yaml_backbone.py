"""The competition's YAML backbone description: ``[[repeat, Module, args], ...]``.

::

    input_channel: 3
    depth_multiple: 1.0     # repeats > 1 are scaled by this (at least 1)
    width_multiple: 1.0     # channel arguments are scaled and rounded to a multiple of 8
    backbone:
      - [1, Conv, [16, 3, 2, null, 1, Hardswish]]
      - [2, InvertedResidualv3, [3, 4, 24, 0, 0, 2]]   # stride 2 on the first repeat only
      - [1, GlobalAvgPool, []]
      - [1, Flatten, []]
      - [1, Linear, [6]]

What each module's arguments are (names, defaults, which are channels, which is the stride)
is the table ``blocks.MODULES``; this module reads the file, checks the top-level keys
(``TOP_KEYS``) and every entry against that table before building anything, and stacks the
modules. Every error names the file, the line, the module and the argument at fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from torch import nn

from ..complexity import count_layers

from .blocks import (
    COUNT,
    RATIO,
    ArgError,
    Kind,
    build_block,
    did_you_mean,
    is_int,
    parse_args,
    scale_channels,
)

#: what each top-level key must hold (all optional but ``backbone``)
TOP_KEYS: dict[str, Kind] = {
    "input_channel": COUNT,
    "depth_multiple": RATIO,
    "width_multiple": RATIO,
    "backbone": Kind(
        "backbone",
        "a non-empty list of [repeat, Module, args]",
        lambda v: isinstance(v, (list, tuple)) and len(v) > 0,
    ),
    "name": Kind("text", "a string", lambda v: v is None or isinstance(v, str)),
    "description": Kind("text", "a string", lambda v: v is None or isinstance(v, str)),
    "input_size": Kind(
        "input_size",
        "a positive integer or a list of them",
        lambda v: (
            COUNT.check(v)
            or (isinstance(v, list) and len(v) > 0 and all(COUNT.check(x) for x in v))
        ),
    ),
}


class YamlConfigError(ValueError):
    """A mistake in a backbone YAML; the message says where."""


#: the most layer instances one backbone may build (repeats after ``depth_multiple``): the
#: largest shipped config has 20; a file asking for millions is a mistake or an attack
MAX_INSTANCES = 1000


class YamlNet(nn.Module):
    """A plain stack of the described modules (``self.layers``), with the config kept and,
    for each layer, the index of the backbone entry it came from (``entry_of``; an entry with
    repeats gives several layers)."""

    def __init__(self, layers: list[nn.Module], config: dict, entry_of: list[int] | None = None):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        self.config = config
        self.entry_of = entry_of if entry_of is not None else list(range(len(layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@dataclass(frozen=True)
class Lines:
    """1-based line numbers of each top-level key and each backbone entry, for messages
    (``"?"`` when the config came as a dict)."""

    keys: dict[str, int] = field(default_factory=dict)
    entries: list[int] = field(default_factory=list)

    def key(self, name: Any) -> str:
        return str(self.keys.get(str(name), "?"))

    def entry(self, i: int) -> str:
        return str(self.entries[i]) if i < len(self.entries) else "?"


def _lines(text: str) -> Lines:
    """Where each top-level key and backbone entry of ``text`` starts."""
    node = yaml.compose(text)
    lines = Lines()
    for key, value in node.value if isinstance(node, yaml.MappingNode) else []:
        lines.keys[str(key.value)] = key.start_mark.line + 1
        if key.value == "backbone" and isinstance(value, yaml.SequenceNode):
            lines.entries[:] = [item.start_mark.line + 1 for item in value.value]
    return lines


def load_config(path_or_text: str | Path | dict) -> tuple[dict, Lines, str]:
    """Read a config from a file, a YAML string or a dict: ``(config, lines, origin)``."""
    if isinstance(path_or_text, dict):
        return path_or_text, Lines(), "<dict>"
    p = Path(path_or_text)
    looks_like_text = isinstance(path_or_text, str) and "\n" in path_or_text
    if not looks_like_text and (p.suffix in (".yaml", ".yml") or p.is_file()):
        if not p.is_file():
            raise FileNotFoundError(f"model config {p} does not exist")
        text, origin = p.read_text(), str(p)
    else:
        text, origin = str(path_or_text), "<yaml>"
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise YamlConfigError(f"{origin}: not valid YAML ({exc})") from None
    if not isinstance(cfg, dict):
        raise YamlConfigError(f"{origin}: expected a mapping with a 'backbone' list")
    return cfg, _lines(text), origin


def dump_config(cfg: dict) -> str:
    """YAML text of a config with one backbone entry per line, ``- [1, Conv, [16, 3, 2]]``,
    the way the competition wrote them. Why: ``yaml.safe_dump`` alone spreads every entry
    over a dozen lines, and a searched architecture should be readable at a glance."""
    head = {k: v for k, v in cfg.items() if k != "backbone"}
    text = yaml.safe_dump(head, sort_keys=False) if head else ""
    rows = [
        yaml.safe_dump(entry, default_flow_style=True, width=10**6).strip()
        for entry in cfg.get("backbone", [])
    ]
    return text + "backbone:\n" + "".join(f"  - {row}\n" for row in rows)


@dataclass(frozen=True)
class _Entry:
    """One checked backbone entry: where it is, its module, its instances after
    ``depth_multiple`` and its named arguments after ``width_multiple``."""

    where: str
    name: str
    n: int
    values: dict[str, Any]


def _check_top(cfg: dict, lines: Lines, origin: str) -> tuple[int, float, float]:
    """``(input_channel, width_multiple, depth_multiple)`` once every top-level key is known
    and holds what it must. Why here: a zero width or channel count used to build and fail
    only at the first forward pass, far from the line at fault."""
    for key, value in cfg.items():
        at = f"{origin}:{lines.key(key)}"
        if key not in TOP_KEYS:
            raise YamlConfigError(
                f"{at}: unknown top-level key {key!r}"
                f"{did_you_mean(key, TOP_KEYS)}; expected {sorted(TOP_KEYS)}"
            )
        if not TOP_KEYS[key].check(value):
            raise YamlConfigError(f"{at}: {key} must be {TOP_KEYS[key].wants}, got {value!r}")
    if "backbone" not in cfg:
        raise YamlConfigError(f"{origin}: 'backbone' is missing: {TOP_KEYS['backbone'].wants}")
    return (
        cfg.get("input_channel", 3),
        float(cfg.get("width_multiple", 1.0)),
        float(cfg.get("depth_multiple", 1.0)),
    )


def _entry(entry: Any, where: str, width: float, depth: float) -> _Entry:
    """Check one ``[repeat, Module, args]`` against the module table and scale it."""
    if not (isinstance(entry, (list, tuple)) and len(entry) == 3):
        raise YamlConfigError(f"{where}: expected [repeat, Module, args], got {entry!r}")
    repeat, name, args = entry
    try:
        values = parse_args(name, args)
    except ArgError as exc:
        raise YamlConfigError(exc.at(where)) from None
    if not is_int(repeat) or repeat < 1:
        raise YamlConfigError(f"{where} {name}: repeat must be a positive integer, got {repeat!r}")
    n = max(1, round(repeat * depth)) if repeat > 1 else 1
    return _Entry(where, name, n, scale_channels(name, values, width))


def _instance(entry: _Entry, cin: int, r: int) -> tuple[nn.Module, int]:
    """Build repeat ``r`` of an entry; a failure names the entry, the repeat and ``cin``."""
    try:
        return build_block(entry.name, cin, entry.values, first=r == 0)
    except (ValueError, TypeError, RuntimeError, AssertionError) as exc:
        raise YamlConfigError(
            f"{entry.where} {entry.name} (repeat {r + 1}/{entry.n}, in channels {cin}): {exc}"
        ) from None


def build_yaml_model(config: str | Path | dict, num_classes: int | None = None) -> YamlNet:
    """Build a :class:`YamlNet`; ``num_classes`` replaces the last Linear's output size.

    Every entry is checked before any is built, so a bad argument is reported as such even
    when an earlier entry would also fail to build."""
    cfg, lines, origin = load_config(config)
    cin, width, depth = _check_top(cfg, lines, origin)
    entries = [
        _entry(e, f"{origin}:{lines.entry(i)}: backbone[{i}]", width, depth)
        for i, e in enumerate(cfg["backbone"])
    ]
    total = sum(e.n for e in entries)
    if total > MAX_INSTANCES:
        raise YamlConfigError(
            f"{origin}: the backbone builds {total} layers (repeats x depth_multiple); "
            f"at most {MAX_INSTANCES} are allowed"
        )
    linears = [e for e in entries if e.name == "Linear"]
    if linears and num_classes is not None:
        linears[-1].values["c"] = num_classes
    layers: list[nn.Module] = []
    entry_of: list[int] = []
    for i, entry in enumerate(entries):
        for r in range(entry.n):
            module, cin = _instance(entry, cin, r)
            layers.append(module)
            entry_of.append(i)
    return YamlNet(layers, cfg, entry_of)


def architecture_table(
    config: str | Path | dict, image_size: int, n_classes: int = 6
) -> pd.DataFrame:
    """One row per backbone line of a YAML config: the entry as written, its output shape,
    parameters, MACs (our analytic count) and share of the total.

    Why per *line* rather than per layer: a searched architecture is read and edited as YAML,
    and an entry with repeats builds several layers; this shows what each line costs.
    """
    model = build_yaml_model(config, n_classes)
    layers = count_layers(model, (3, image_size, image_size))
    layer_idx = layers.name.str.extract(r"^layers\.(\d+)")[0].astype(int)
    entry = layer_idx.map(lambda j: model.entry_of[j]).rename("entry")
    table = layers.groupby(entry).agg(
        out_shape=("out_shape", "last"), params=("params", "sum"), MACs=("macs", "sum")
    )
    backbone = model.config["backbone"]
    table.insert(0, "yaml", [str(backbone[e]) for e in table.index])
    table["MACs %"] = (100 * table.MACs / max(1, table.MACs.sum())).round(1)
    return table
