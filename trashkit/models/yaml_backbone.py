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

Every error names the file, the line, the module and the argument at fault.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torchvision.models._utils import _make_divisible

from .blocks import SIGNATURES, build_block

TOP_KEYS = {"input_channel", "depth_multiple", "width_multiple", "backbone", "name",
            "description", "input_size"}
#: argument positions that are strides (the first repeat keeps them, later ones use 1)
STRIDE_ARG = {"Conv": 2, "DWConv": 2, "InvertedResidualv2": 2, "InvertedResidualv3": 5,
              "MBConv": 2, "ShuffleUnit": 1, "MaxPool": 1, "AvgPool": 1}


class YamlConfigError(ValueError):
    """A mistake in a backbone YAML; the message says where."""


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


def _lines(text: str) -> list[int]:
    """1-based line number of each backbone entry (for error messages)."""
    node = yaml.compose(text)
    for key, value in node.value if node is not None else []:
        if key.value == "backbone" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def load_config(path_or_text: str | Path | dict) -> tuple[dict, list[int], str]:
    """Read a config from a file, a YAML string or a dict: ``(config, lines, origin)``."""
    if isinstance(path_or_text, dict):
        return path_or_text, [], "<dict>"
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
    rows = [yaml.safe_dump(entry, default_flow_style=True, width=10**6).strip()
            for entry in cfg.get("backbone", [])]
    return text + "backbone:\n" + "".join(f"  - {row}\n" for row in rows)


def build_yaml_model(config: str | Path | dict, num_classes: int | None = None) -> YamlNet:
    """Build a :class:`YamlNet`; ``num_classes`` replaces the last Linear's output size."""
    cfg, lines, origin = load_config(config)
    unknown = set(cfg) - TOP_KEYS
    if unknown:
        raise YamlConfigError(f"{origin}: unknown top-level key(s) {sorted(unknown)}; "
                              f"expected {sorted(TOP_KEYS)}")
    if not isinstance(cfg.get("backbone"), list) or not cfg["backbone"]:
        raise YamlConfigError(f"{origin}: 'backbone' must be a non-empty list of "
                              "[repeat, Module, args]")
    width = float(cfg.get("width_multiple", 1.0))
    depth = float(cfg.get("depth_multiple", 1.0))
    cin = int(cfg.get("input_channel", 3))
    entries = cfg["backbone"]
    last_linear = max((i for i, e in enumerate(entries)
                       if isinstance(e, list) and len(e) == 3 and e[1] == "Linear"), default=None)
    layers: list[nn.Module] = []
    entry_of: list[int] = []
    for i, entry in enumerate(entries):
        where = f"{origin}:{lines[i] if i < len(lines) else '?'}: backbone[{i}]"
        if not (isinstance(entry, list) and len(entry) == 3):
            raise YamlConfigError(f"{where}: expected [repeat, Module, args], got {entry!r}")
        repeat, name, args = entry
        if name not in SIGNATURES:
            close = [k for k in SIGNATURES if k.lower() == str(name).lower()]
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise YamlConfigError(f"{where}: unknown module {name!r}{hint}; known: "
                                  f"{sorted(SIGNATURES)}")
        if not isinstance(repeat, int) or repeat < 1:
            raise YamlConfigError(f"{where} {name}: repeat must be a positive integer, "
                                  f"got {repeat!r}")
        names, required, channel_idx = SIGNATURES[name]
        args = list(args or [])
        if len(args) < required or len(args) > len(names):
            raise YamlConfigError(f"{where} {name}: expected {required}..{len(names)} "
                                  f"arguments {list(names)}, got {args}")
        for j, v in enumerate(args):
            if names[j] in ("c", "k", "s", "t", "squeeze", "expand1x1", "expand3x3", "g") and \
                    v is not None and (not isinstance(v, (int, float)) or v <= 0):
                raise YamlConfigError(f"{where} {name}: argument '{names[j]}' must be a "
                                      f"positive number, got {v!r}")
        for j in channel_idx:
            args[j] = _make_divisible(args[j] * width, 8)
        if name == "Linear" and i == last_linear and num_classes is not None:
            args[0] = num_classes
        n = max(1, round(repeat * depth)) if repeat > 1 else 1
        for r in range(n):
            try:
                module, cout = build_block(name, cin, args, None if r == 0 else 1)
            except (ValueError, TypeError, RuntimeError, AssertionError) as exc:
                raise YamlConfigError(f"{where} {name} (repeat {r + 1}/{n}, in channels {cin}):"
                                      f" {exc}") from None
            layers.append(module)
            entry_of.append(i)
            cin = cout
    return YamlNet(layers, cfg, entry_of)
