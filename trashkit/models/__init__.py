"""Models: lightweight families, the competition's YAML backbone description, pretrained weights.

``build_model(spec)`` accepts a family name (``"mobilenetv3"``, ``"shufflenetv2"``,
``"efficientnet_lite0"``), a family with knobs (``"mobilenetv3:width=0.5,depth=0.5"``), a
shipped config name (``"mbv3_reduced"``) or a path to your own YAML; ``"arcface:<spec>"`` puts
the ArcFace metric-learning head on any of them.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .efficientnet_lite import LITE0, efficientnet_lite0
from .families import FAMILIES, mobilenetv3, shufflenetv2
from .yaml_backbone import (
    YamlConfigError,
    YamlNet,
    architecture_table,
    build_yaml_model,
    dump_config,
    load_config,
)

CONFIG_DIR = Path(__file__).with_name("configs")
#: families and the knobs each accepts (EfficientNet-Lite0 only ``stages``, how many of its
#: seven stages to keep: its ImageNet weights fix every layer's shape)
KNOBS: dict[str, tuple[str, ...]] = {
    "mobilenetv3": ("width", "depth"),
    "shufflenetv2": ("width", "depth"),
    "efficientnet_lite0": ("stages",),
}
BUILDERS = {**FAMILIES, "efficientnet_lite0": efficientnet_lite0}
#: knob values beyond this build networks no chapter needs (and a stranger's checkpoint could
#: ask for millions of layers): refused with a message
MAX_KNOB = 4.0
#: knobs with a ceiling of their own (EfficientNet-Lite0 has seven stages)
KNOB_MAX = {"stages": float(len(LITE0))}


def shipped_configs() -> dict[str, Path]:
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def _knobs(spec: str, family: str, knobs: str) -> dict[str, float]:
    """``width=0.5,depth=0.5`` -> ``{"width": 0.5, "depth": 0.5}``, each name and value checked."""
    out = {}
    for item in filter(None, knobs.split(",")):
        k, _, v = item.partition("=")
        if k not in KNOBS[family]:
            raise ValueError(
                f"model spec {spec!r}: unknown knob {k!r} for {family} "
                f"(knobs: {', '.join(KNOBS[family]) or 'none'})"
            )
        try:
            value = float(v)
        except ValueError:
            raise ValueError(f"model spec {spec!r}: {k}={v!r} is not a number") from None
        top = KNOB_MAX.get(k, MAX_KNOB)
        if not 0 < value <= top:
            raise ValueError(f"model spec {spec!r}: {k}={v} must be in (0, {top:g}]")
        out[k] = value
    return out


def is_yaml_spec(spec: str | Path) -> bool:
    """True when ``spec`` names a YAML file rather than a family or a shipped config."""
    s = str(spec).removeprefix("arcface:")
    name = s.partition(":")[0]
    return name not in BUILDERS and s not in shipped_configs()


def build_model(spec: str | Path, num_classes: int, config: dict | None = None) -> nn.Module:
    """Build any model trashkit knows from a one-line spec (see module docstring).

    ``config``: the parsed YAML of a spec that names a YAML file, used instead of reading the
    file (a checkpoint carries its YAML, so it never needs the path it was trained with)."""
    spec_s = str(spec)
    if spec_s.startswith("arcface:"):
        from .arcface import ArcFaceNet

        inner = build_model(spec_s[len("arcface:") :], num_classes, config)
        return ArcFaceNet(inner, num_classes)
    name, _, knobs = spec_s.partition(":")
    if name in BUILDERS:
        return BUILDERS[name](num_classes=num_classes, **_knobs(spec_s, name, knobs))
    configs = shipped_configs()
    if spec_s in configs:
        return build_yaml_model(configs[spec_s], num_classes)
    if config is not None:
        return build_yaml_model(config, num_classes)
    if spec_s.endswith((".yaml", ".yml")) or Path(spec_s).is_file():
        return build_yaml_model(spec_s, num_classes)
    raise ValueError(
        f"unknown model {spec_s!r}: use a family {sorted(BUILDERS)} (optionally "
        f"'name:width=..,depth=..'), a shipped config {sorted(configs)}, or a "
        "path to a YAML file"
    )


__all__ = [
    "architecture_table",
    "build_model",
    "is_yaml_spec",
    "dump_config",
    "shipped_configs",
    "mobilenetv3",
    "shufflenetv2",
    "efficientnet_lite0",
    "FAMILIES",
    "KNOBS",
    "build_yaml_model",
    "load_config",
    "YamlNet",
    "YamlConfigError",
    "CONFIG_DIR",
]
