"""Models: two lightweight families and the competition's YAML backbone description.

``build_model(spec)`` accepts a family name (``"mobilenetv3"``, ``"shufflenetv2"``), a
family with knobs (``"mobilenetv3:width=0.5,depth=0.5"``), a shipped config name
(``"mbv3_reduced"``) or a path to your own YAML; ``"arcface:<spec>"`` puts the ArcFace
metric-learning head on any of them.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .families import FAMILIES, mobilenetv3, shufflenetv2
from .yaml_backbone import YamlConfigError, YamlNet, build_yaml_model, dump_config, load_config

CONFIG_DIR = Path(__file__).with_name("configs")


def shipped_configs() -> dict[str, Path]:
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def build_model(spec: str | Path, num_classes: int) -> nn.Module:
    """Build any model trashkit knows from a one-line spec (see module docstring)."""
    spec_s = str(spec)
    if spec_s.startswith("arcface:"):
        from .arcface import ArcFaceNet

        return ArcFaceNet(build_model(spec_s[len("arcface:") :], num_classes), num_classes)
    name, _, knobs = spec_s.partition(":")
    if name in FAMILIES:
        kwargs = {}
        for item in filter(None, knobs.split(",")):
            k, _, v = item.partition("=")
            if k not in ("width", "depth"):
                raise ValueError(f"model spec {spec_s!r}: unknown knob {k!r} (width, depth)")
            kwargs[k] = float(v)
        return FAMILIES[name](num_classes=num_classes, **kwargs)
    configs = shipped_configs()
    if spec_s in configs:
        return build_yaml_model(configs[spec_s], num_classes)
    if spec_s.endswith((".yaml", ".yml")) or Path(spec_s).is_file():
        return build_yaml_model(spec_s, num_classes)
    raise ValueError(
        f"unknown model {spec_s!r}: use a family {sorted(FAMILIES)} (optionally "
        f"'name:width=..,depth=..'), a shipped config {sorted(configs)}, or a "
        "path to a YAML file"
    )


__all__ = [
    "build_model",
    "dump_config",
    "shipped_configs",
    "mobilenetv3",
    "shufflenetv2",
    "FAMILIES",
    "build_yaml_model",
    "load_config",
    "YamlNet",
    "YamlConfigError",
    "CONFIG_DIR",
]
