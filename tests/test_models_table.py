"""The YAML modules' argument table (``trashkit.models.blocks.MODULES``) and what it drives:
parsing, writing back, strides, width scaling, the builder; plus a fingerprint of the networks
the shipped configs build, recorded before the table replaced the positional if-chain."""

from __future__ import annotations

import ast
import inspect

import pytest
import torch

from trashkit.models import blocks, build_model, build_yaml_model, families, yaml_backbone
from trashkit.models.blocks import (
    MODULES,
    ArgError,
    build_block,
    module_spec,
    parse_args,
    scale_channels,
    stride_of,
    yaml_args,
)

#: a valid argument list of every module, its input channels and its stride
EXAMPLES = {
    "Conv": ([16, 3, 2, None, 1, "Hardswish"], 3, 2),
    "DWConv": ([16, 3, 2], 16, 2),
    "Bottleneck": ([16, False, 2, 0.25], 16, 1),
    "InvertedResidualv2": ([24, 6, 2], 16, 2),
    "InvertedResidualv3": ([5, 4, 40, 1, 1, 2], 16, 2),
    "MBConv": ([6, 24, 2, 3], 16, 2),
    "Fire": ([16, 32, 32], 16, 1),
    "ShuffleUnit": ([48, 2], 24, 2),
    "MaxPool": ([3, 2, 1], 16, 2),
    "AvgPool": ([2], 16, 2),
    "GlobalAvgPool": ([], 16, 1),
    "Flatten": ([], 16, 1),
    "Linear": ([6, "ReLU"], 16, 1),
}

#: every module with every argument given, several repeats, on a 128x128 input
ZOO = [
    [1, "Conv", [16, 3, 2, None, 1, "Hardswish"]],
    [1, "Conv", [16, 3, 1, 1, 2, "SiLU"]],
    [1, "Conv", [24]],
    [2, "DWConv", [24, 5, 2, "ReLU6"]],
    [1, "DWConv", [32]],
    [2, "Bottleneck", [32, False, 2, 0.25]],
    [1, "Bottleneck", [32]],
    [2, "InvertedResidualv2", [40, 6, 2]],
    [2, "InvertedResidualv3", [5, 4.5, 48, 1, 1, 2]],
    [1, "InvertedResidualv3", [3, 3, 48, 0, 0, 1]],
    [2, "MBConv", [4, 56, 1, 3]],
    [1, "Fire", [16, 32, 32]],
    [1, "MaxPool", [3, 2, 1]],
    [1, "AvgPool", [2]],
    [2, "ShuffleUnit", [64, 2]],
    [1, "Conv", [128, 1, 1, None, None, "Identity"]],
    [1, "GlobalAvgPool", []],
    [1, "Flatten", []],
    [1, "Linear", [32, "Hardswish"]],
    [1, "Linear", [6]],
]

#: (parameters, sum, position-weighted sum, absolute sum) of the eval-mode output for
#: ``torch.manual_seed(0)`` before building and ``torch.manual_seed(1)`` before drawing the
#: input; recorded with the positional builder of commit 9719e98, before the table
FINGERPRINTS = {
    ("mbv3_reduced", 96): (312326, 0.046241, 0.432228, 0.350024),
    ("shufflenetv2_like", 96): (347942, 0.011793, 0.057281, 0.254741),
    ("tiny", 96): (13534, 0.87688, 6.254691, 1.067833),
    ("zoo 1.0 1.0", 128): (247944, -0.935155, -5.891716, 1.311507),
    ("zoo 0.75 2.0", 128): (311822, -0.288392, -2.963233, 1.053382),
    ("zoo 1.25 0.5", 128): (209770, -0.295733, -1.020217, 1.607903),
}


def _fingerprint(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if name.startswith("zoo"):
        _, width, depth = name.split()
        return build_yaml_model(
            {"width_multiple": float(width), "depth_multiple": float(depth), "backbone": ZOO}
        )
    return build_model(name, 6)


@pytest.mark.parametrize("name, size", list(FINGERPRINTS))
def test_same_networks_as_before_the_table(name, size):
    model = _fingerprint(name)
    torch.manual_seed(1)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        y = model.eval()(x)
    weights = torch.arange(1, y.numel() + 1, dtype=y.dtype).view_as(y)
    got = (
        sum(p.numel() for p in model.parameters()),
        y.sum().item(),
        (y * weights).sum().item(),
        y.abs().sum().item(),
    )
    params, *sums = FINGERPRINTS[(name, size)]
    assert got[0] == params
    assert got[1:] == pytest.approx(sums, rel=1e-4, abs=1e-5)


def test_every_module_has_a_row_and_an_example():
    assert set(EXAMPLES) == set(MODULES)
    assert [s.name for s in MODULES.values()] == list(MODULES)


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_round_trip_through_names(name):
    args, _, stride = EXAMPLES[name]
    values = parse_args(name, args)
    assert list(values) == list(module_spec(name).names)
    assert parse_args(name, yaml_args(name, **values)) == values
    assert stride_of(name, args) == stride


def test_rows_say_which_arguments_are_channels_and_stride():
    v3 = module_spec("InvertedResidualv3")
    assert v3.names == ("k", "t", "c", "use_se", "use_hs", "s")
    assert (v3.required, v3.channels, v3.stride) == (6, ("c",), "s")
    assert module_spec("Fire").channels == ("squeeze", "expand1x1", "expand3x3")
    assert module_spec("Fire").stride is None and module_spec("Bottleneck").stride is None
    assert module_spec("Linear").channels == ()  # the class count is never scaled
    assert (module_spec("Conv").required, module_spec("Conv").stride) == (1, "s")


def test_parse_fills_defaults_by_name():
    assert parse_args("Conv", [16, 3, 2, None, 1, "Hardswish"]) == {
        "c": 16,
        "k": 3,
        "s": 2,
        "p": None,
        "g": 1,
        "act": "Hardswish",
    }
    assert parse_args("Conv", [16]) == {"c": 16, "k": 1, "s": 1, "p": None, "g": 1, "act": "ReLU"}
    assert parse_args("MaxPool", [3]) == {"k": 3, "s": 3, "p": 0}  # stride defaults to k
    assert parse_args("MaxPool", [3, None, 1]) == {"k": 3, "s": 3, "p": 1}
    assert parse_args("GlobalAvgPool", None) == {}


def test_yaml_args_writes_positions_the_search_wrote():
    assert yaml_args("InvertedResidualv3", k=3, t=4, c=24, use_se=0, use_hs=1, s=2) == [
        3,
        4,
        24,
        0,
        1,
        2,
    ]
    assert yaml_args("Conv", c=16, k=3, s=2, act="ReLU") == [16, 3, 2, None, 1, "ReLU"]
    assert yaml_args("MBConv", c=24, t=6, k=3, s=1) == [6, 24, 1, 3]
    assert yaml_args("MaxPool", k=3, p=1) == [3, None, 1]
    assert yaml_args("Bottleneck", c=32) == [32]
    assert yaml_args("Linear", c=9) == [9]


@pytest.mark.parametrize(
    "module, kwargs, message",
    [
        ("Conv", {"c": 16, "kernel": 3}, r"Conv: unknown argument\(s\) \['kernel'\]"),
        ("InvertedResidualv2", {"c": 16, "t": 2}, r"missing required argument\(s\) \['s'\]"),
        ("DWConv", {"c": 16, "s": 0}, r"DWConv: argument 's' must be a positive integer, got 0"),
        ("Convv", {"c": 16}, r"unknown module 'Convv' \(did you mean Conv\?\)"),
    ],
)
def test_yaml_args_refuses_what_would_not_parse(module, kwargs, message):
    with pytest.raises(ArgError, match=message):
        yaml_args(module, **kwargs)


@pytest.mark.parametrize("name", [n for n, spec in MODULES.items() if spec.stride])
def test_only_the_first_repeat_downsamples(name):
    args, cin, stride = EXAMPLES[name]
    args = [3, 2, 1] if name == "AvgPool" else args  # keeps the size at stride 1
    cin = args[0] if name == "ShuffleUnit" else cin  # stride 1 needs in == out channels
    model = build_yaml_model({"input_channel": cin, "backbone": [[3, name, args]]})
    assert stride == 2 and len(model.layers) == 3
    sizes = []
    x = torch.zeros(1, cin, 32, 32)
    for layer in model.layers:
        x = layer(x)
        sizes.append(x.shape[-1])
    assert sizes == [16, 16, 16]


def test_scale_channels_touches_only_channel_arguments():
    values = parse_args("Fire", [16, 32, 40])
    assert scale_channels("Fire", values, 0.5) == {"squeeze": 8, "expand1x1": 16, "expand3x3": 24}
    v3 = parse_args("InvertedResidualv3", [5, 4, 40, 1, 1, 2])
    assert scale_channels("InvertedResidualv3", v3, 2.0) == {**v3, "c": 80}
    assert scale_channels("Linear", {"c": 6, "act": None}, 0.5) == {"c": 6, "act": None}


def test_build_block_takes_named_values():
    module, cout = build_block("Fire", 16, parse_args("Fire", [16, 32, 32]))
    assert cout == 64 and module(torch.zeros(1, 16, 8, 8)).shape == (1, 64, 8, 8)
    conv, _ = build_block("Conv", 3, parse_args("Conv", [8, 3, 2]), first=False)
    assert conv[0].stride == (1, 1)


def test_sample_config_writes_through_the_table():
    pytest.importorskip("optuna")
    import optuna

    from trashkit.search import SearchConfig, sample_config

    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=3)
    )
    seen = set()
    for _ in range(30):
        try:
            model_cfg, _ = sample_config(study.ask(), SearchConfig(slots=4), n_classes=9)
        except optuna.TrialPruned:
            continue
        assert model_cfg["backbone"][-1] == [1, "Linear", [9]]
        for _, name, args in model_cfg["backbone"]:
            assert yaml_args(name, **parse_args(name, args))[: len(args)] == args
            seen.add(name)
    assert {"Conv", "Linear", "GlobalAvgPool"} < seen


def _long_functions(module) -> list[str]:
    tree = ast.parse(inspect.getsource(module))
    return [
        f"{module.__name__}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > 60
    ]


def test_model_builders_are_short():
    assert (
        _long_functions(blocks) + _long_functions(yaml_backbone) + _long_functions(families) == []
    )
    assert len(inspect.getsource(build_block).splitlines()) <= 15  # a lookup, not a chain
