"""Every YAML module builds with the expected output shape; scaling rules; clear errors."""

from __future__ import annotations

import pytest
import torch

from trashkit.complexity import find_escapes, official_macs
from trashkit.models import (
    YamlConfigError,
    build_model,
    build_yaml_model,
    dump_config,
    load_config,
    mobilenetv3,
    shipped_configs,
    shufflenetv2,
)


def net(backbone, width=1.0, depth=1.0, cin=3):
    return build_yaml_model(
        {
            "input_channel": cin,
            "width_multiple": width,
            "depth_multiple": depth,
            "backbone": backbone,
        }
    )


@pytest.mark.parametrize(
    "entry, cin, out_shape",
    [
        ([1, "Conv", [16, 3, 2]], 3, (2, 16, 16, 16)),
        ([1, "Conv", [16, 3, 1, None, 1, "Hardswish"]], 3, (2, 16, 32, 32)),
        ([1, "DWConv", [16, 3, 2]], 16, (2, 16, 16, 16)),
        ([1, "Bottleneck", [16]], 16, (2, 16, 32, 32)),
        ([1, "InvertedResidualv2", [24, 6, 2]], 16, (2, 24, 16, 16)),
        ([1, "InvertedResidualv3", [5, 4, 40, 1, 1, 2]], 16, (2, 40, 16, 16)),
        ([1, "MBConv", [6, 24, 2, 3]], 16, (2, 24, 16, 16)),
        ([1, "Fire", [16, 32, 32]], 16, (2, 64, 32, 32)),
        ([1, "ShuffleUnit", [48, 2]], 24, (2, 48, 16, 16)),
        ([1, "MaxPool", [3, 2, 1]], 16, (2, 16, 16, 16)),
        ([1, "AvgPool", [2]], 16, (2, 16, 16, 16)),
        ([1, "GlobalAvgPool", []], 16, (2, 16, 1, 1)),
    ],
)
def test_every_module_builds_with_expected_shape(entry, cin, out_shape):
    model = net([entry], cin=cin)
    assert model(torch.zeros(2, cin, 32, 32)).shape == out_shape
    assert find_escapes(model) == []


def test_flatten_and_linear_head():
    model = net([[1, "GlobalAvgPool", []], [1, "Flatten", []], [1, "Linear", [6]]], cin=8)
    assert model(torch.zeros(2, 8, 5, 5)).shape == (2, 6)
    model = build_yaml_model(
        {
            "backbone": [
                [1, "Conv", [8, 3, 2]],
                [1, "GlobalAvgPool", []],
                [1, "Flatten", []],
                [1, "Linear", [6]],
            ]
        },
        num_classes=4,
    )
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 4)


def test_width_depth_and_stride_on_first_repeat_only():
    model = net(
        [[1, "Conv", [16, 3, 1]], [3, "InvertedResidualv2", [20, 2, 2]]], width=0.5, depth=2.0
    )
    layers = list(model.layers)
    assert len(layers) == 1 + 6  # repeats 3 x depth 2
    assert layers[0].out_channels == 8  # 16 * 0.5
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 16, 16, 16)  # 20*0.5 -> 16 (x8)
    strides = [layer.stride for layer in layers[1:]]
    assert strides == [2, 1, 1, 1, 1, 1]
    assert len(net([[1, "Conv", [8, 3]], [4, "DWConv", [8, 3]]], depth=0.33).layers) == 2


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "input_channel: 3\nbackbone:\n  - [1, Conv, [16, 3, 2]]\n"
            "  - [1, InvertedResidualv3, [3, 4, -24, 0, 0, 1]]\n",
            r"bad.yaml:4: backbone\[1\] InvertedResidualv3: argument 'c' must be a positive number",
        ),
        (
            "backbone:\n  - [1, conv, [16]]\n",
            r"bad.yaml:2: .*unknown module 'conv' \(did you mean Conv\?\)",
        ),
        (
            "backbone:\n  - [1, Fire, [16, 32]]\n",
            r"Fire: expected 3..3 arguments \['squeeze', 'expand1x1', 'expand3x3'\]",
        ),
        (
            "backbone:\n  - [1, Conv, [16]]\n  - [2, ShuffleUnit, [48, 1]]\n",
            r":3: backbone\[1\] ShuffleUnit \(repeat 1/2, in channels 16\)",
        ),
        ("widht_multiple: 1\nbackbone:\n  - [1, Conv, [16]]\n", "widht_multiple"),
    ],
    ids=["argument", "unknown module", "argument count", "build", "top-level key"],
)
def test_errors_name_line_module_and_argument(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(YamlConfigError, match=message):
        build_yaml_model(bad)


def test_shipped_configs():
    configs = shipped_configs()
    assert {"mbv3_reduced", "shufflenetv2_like", "tiny"} <= set(configs)
    for name in configs:
        model = build_model(name, 6)
        assert model(torch.zeros(1, 3, 96, 96)).shape == (1, 6)
        assert find_escapes(model) == []
    params = sum(p.numel() for p in build_model("mbv3_reduced", 6).parameters())
    assert 250_000 <= params <= 350_000


def test_dump_config_one_entry_per_line_round_trips(tmp_path):
    for name, path in shipped_configs().items():
        cfg, _, _ = load_config(path)
        text = dump_config(cfg)
        assert load_config(text)[0] == cfg, name
        lines = text.splitlines()
        start = lines.index("backbone:")
        assert len(lines) - start - 1 == len(cfg["backbone"])  # one line per entry
    cfg = {
        "width_multiple": 0.5,
        "backbone": [
            [1, "Conv", [8, 3, 2, None, 1, "ReLU"]],
            [1, "GlobalAvgPool", []],
            [1, "Flatten", []],
            [1, "Linear", [6]],
        ],
    }
    assert "  - [1, Conv, [8, 3, 2, null, 1, ReLU]]" in dump_config(cfg)
    (tmp_path / "m.yaml").write_text(dump_config(cfg))
    assert build_yaml_model(tmp_path / "m.yaml", 6)(torch.zeros(1, 3, 32, 32)).shape == (1, 6)


@pytest.mark.slow
def test_families_and_knobs():
    assert official_macs(mobilenetv3(width=0.5), 96) < official_macs(mobilenetv3(), 96)
    assert sum(p.numel() for p in mobilenetv3(depth=0.5).parameters()) < sum(
        p.numel() for p in mobilenetv3().parameters()
    )
    from torchvision.models import shufflenet_v2_x0_5

    assert official_macs(shufflenetv2(0.5), 96) == official_macs(
        shufflenet_v2_x0_5(num_classes=6), 96
    )
    model = build_model("shufflenetv2:width=1.0,depth=0.5", 6)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 6)
    with pytest.raises(ValueError, match="unknown knob 'widht'"):
        build_model("mobilenetv3:widht=2", 6)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet9000", 6)
