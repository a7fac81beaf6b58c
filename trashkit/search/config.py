"""``SearchConfig``: what to search, how long each trial trains, and where the study lives.

Every field is checked for its type and range when the config is made, with a message that
names the field, exactly like a training run's parameters (:mod:`trashkit.train.config`): a
typo such as ``objective=flops`` must fail in the first second, not optimise something else.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: the modules a search slot may choose ("none": the slot is left out). Not to be confused
#: with :data:`trashkit.models.blocks.MODULES`, the table of every module a YAML may use.
SPACE_MODULES = (
    "none",
    "Conv",
    "DWConv",
    "InvertedResidualv2",
    "InvertedResidualv3",
    "MBConv",
    "Fire",
    "Bottleneck",
)
OBJECTIVES = ("macs", "latency")

#: Chapter 6's presets. "class" keeps the parameters cell's values (the classroom defaults);
#: "full" the settings of its Reference results on real data: the proxy measurement of
#: ``benchmarks/search_proxy.py`` (6 architectures, 6 and 30 epochs) and a search with the
#: settings of ``benchmarks/search_trashnet.py`` (60 trials x 6 epochs under 10M MACs at
#: 96-128 px), both on the protocol's split seed 0 (10% validation, 20% test).
PRESETS: dict[str, dict] = {
    "class": {},
    "full": {
        "n_trials": 60,
        "epochs": 6,
        "budget": 10_000_000,
        "image_sizes": [96, 112, 128],
        "space_samples": 150,
        "proxy_archs": 6,
        "proxy_epochs": [6, 30],
        "supernet_size": 64,
        "supernet_epochs": 30,
        "subnets": 60,
        "standalone": 6,
    },
}
#: the split of every run under the "full" preset (benchmarks/protocol.py, split seed 0)
FULL_SPLIT = {"split_seed": 0, "val_fraction": 0.1, "test_fraction": 0.2}


def apply_preset(preset: str, given: set[str], values: dict) -> dict:
    """``values`` (a chapter's parameters) with ``PRESETS[preset]`` replacing every value
    that was not set explicitly (``given``: the names papermill set). The "full" preset needs
    real data: it refuses the synthetic default."""
    if preset not in PRESETS:
        close = difflib.get_close_matches(str(preset), PRESETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"preset={preset!r} is not one of {list(PRESETS)}{hint}")
    out = dict(values)
    out.update({k: v for k, v in PRESETS[preset].items() if k not in given and k in values})
    if preset == "full" and out.get("data") == "default":
        raise ValueError(
            "preset 'full' reproduces the Reference results on TrashNet: pass "
            "-p data ../shared/datasets/trashnet (or your own labelled folder)"
        )
    return out


SAMPLERS = ("tpe", "nsga2")


@dataclass
class SearchConfig:
    """What to search, how long each trial trains, and where the study lives."""

    data: str = "default"
    val_fraction: float = 0.2  # the trials' validation share (image folders)
    test_fraction: float = 0.0  # held back from every trial (scored only afterwards)
    split_seed: int = 0
    n_trials: int = 20
    epochs: int = 3  # per trial (the chapter-4 recipe, shortened)
    objective: str = "macs"  # second objective: "macs" or "latency" (batch-1 CPU ms)
    budget: float | None = None  # max MACs (or ms); over-budget trials are never trained
    slots: int = 5
    max_stride2: int = 5  # stride-2 stages allowed, the stem included
    image_sizes: tuple[int, ...] = (96, 112, 128, 156)
    channels: tuple[int, int] = (16, 128)  # base width of the first / last slot
    prune_f1: float = 0.0  # prune a trial whose F1 after half its epochs is below
    sampler: str = "tpe"  # "tpe" or "nsga2"
    storage: str | None = None  # None: sqlite:///<output_dir>/study.db
    study_name: str = "trashkit"
    seed: int = 0
    workers: int | None = None  # data-loader workers per trial
    heartbeat_interval: int = 5  # seconds between a running trial's heartbeats
    grace_period: int = 20  # a trial silent this long belongs to a dead worker
    connect_timeout: int = 10  # seconds to reach a database server before giving up

    def __post_init__(self) -> None:
        for name, (ok, expected) in RULES.items():
            value = getattr(self, name)
            if not ok(value):
                hint = _did_you_mean(value, name)
                raise ValueError(
                    f"search parameter {name}={value!r} is invalid: expected {expected}{hint}"
                )
        self.image_sizes = tuple(self.image_sizes)
        self.channels = tuple(self.channels)

    @classmethod
    def from_dict(cls, d: dict) -> SearchConfig:
        """Build from a dict; a misspelled key is an error that suggests the right one."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown search parameter {key!r}{hint}; valid: {names}")
        return cls(**d)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _ints(v: Any, n: int | None = None, low: int = 1) -> bool:
    return (
        isinstance(v, (list, tuple))
        and len(v) > 0
        and (n is None or len(v) == n)
        and all(_int(x) and x >= low for x in v)
    )


def _did_you_mean(value: Any, name: str) -> str:
    choices = {"objective": OBJECTIVES, "sampler": SAMPLERS}.get(name)
    if not choices or not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


#: field -> (check, what the error says is expected)
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "data": (lambda v: isinstance(v, str) and v.strip() != "", "a data source"),
    "val_fraction": (lambda v: _num(v) and 0 < v < 1, "a fraction between 0 and 1"),
    "test_fraction": (lambda v: _num(v) and 0 <= v < 1, "a fraction in [0, 1)"),
    "split_seed": (lambda v: _int(v) and 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "n_trials": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "epochs": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "objective": (lambda v: v in OBJECTIVES, f"one of {list(OBJECTIVES)}"),
    "budget": (lambda v: v is None or (_num(v) and v > 0), "a positive number or None"),
    "slots": (lambda v: _int(v) and 1 <= v <= 20, "an integer in 1..20"),
    "max_stride2": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "image_sizes": (lambda v: _ints(v, low=16), "a list of integers >= 16, e.g. [32] or [96, 128]"),
    "channels": (
        lambda v: _ints(v, 2, low=8) and v[0] <= v[1],
        "a pair [first, last] of integers >= 8 with first <= last",
    ),
    "prune_f1": (lambda v: _num(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "sampler": (lambda v: v in SAMPLERS, f"one of {list(SAMPLERS)}"),
    "storage": (lambda v: v is None or isinstance(v, str), "a database URL or None"),
    "study_name": (lambda v: isinstance(v, str) and v != "", "a non-empty name"),
    "seed": (lambda v: _int(v) and 0 <= v < 2**32, "an integer in [0, 2**32)"),
    "workers": (lambda v: v is None or (_int(v) and v >= 0), "an integer >= 0 or None"),
    "heartbeat_interval": (lambda v: _int(v) and v >= 1, "an integer >= 1 (seconds)"),
    "grace_period": (lambda v: _int(v) and v >= 1, "an integer >= 1 (seconds)"),
    "connect_timeout": (lambda v: _int(v) and v >= 1, "an integer >= 1 (seconds)"),
}
