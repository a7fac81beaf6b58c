"""A backbone YAML with a bad top-level value or argument is refused when it is read, with a
message that names the file, the line, the module and the argument (issue 10, item 7).

Before the module table each of these either built a network silently (zero or negative
width, negative depth, ``true`` or ``16.5`` channels, a negative expansion), built one that
failed only at its first forward pass (``input_channel: 0``, negative or oversized padding,
an InvertedResidualv3 on 3 channels), or failed with an error that did not name the
argument (an unknown activation, stride 3, a string padding) or with a raw TypeError."""

from __future__ import annotations

import pytest
import torch

from trashkit.models import YamlConfigError, build_yaml_model

HEAD = "input_channel: 3\nbackbone:\n"
CONV = "  - [1, Conv, [16, 3, 2]]\n"


def _refused(tmp_path, text: str) -> str:
    """The message of the YamlConfigError that building ``text`` raises."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(YamlConfigError) as info:
        build_yaml_model(path)
    return str(info.value)


@pytest.mark.parametrize(
    "top, message",
    [
        ("width_multiple: 0", "bad.yaml:1: width_multiple must be a positive number, got 0"),
        ("width_multiple: -0.5", "bad.yaml:1: width_multiple must be a positive number, got -0.5"),
        ("width_multiple: true", "bad.yaml:1: width_multiple must be a positive number, got True"),
        (
            "width_multiple: '0.5'",
            "bad.yaml:1: width_multiple must be a positive number, got '0.5'",
        ),
        ("depth_multiple: -1.0", "bad.yaml:1: depth_multiple must be a positive number, got -1.0"),
        ("input_channel: 0", "bad.yaml:1: input_channel must be a positive integer, got 0"),
        ("input_channel: 3.0", "bad.yaml:1: input_channel must be a positive integer, got 3.0"),
        (
            "widht_multiple: 1",
            "bad.yaml:1: unknown top-level key 'widht_multiple' (did you mean width_multiple?)",
        ),
    ],
)
def test_top_level_values_are_checked_with_their_line(tmp_path, top, message):
    assert message in _refused(tmp_path, f"{top}\nbackbone:\n{CONV}")


def test_top_level_line_is_that_of_the_key(tmp_path):
    text = "# a comment\ninput_channel: 3\n\nwidth_multiple: 0\nbackbone:\n" + CONV
    assert _refused(tmp_path, text).startswith(f"{tmp_path / 'bad.yaml'}:4: width_multiple")


def test_backbone_must_be_a_non_empty_list(tmp_path):
    assert "bad.yaml:2: backbone must be a non-empty list" in _refused(
        tmp_path, "input_channel: 3\nbackbone: []\n"
    )
    assert "'backbone' is missing" in _refused(tmp_path, "input_channel: 3\n")


@pytest.mark.parametrize(
    "entry, message",
    [
        # a bool where a number is wanted
        (
            "[1, Conv, [true, 3]]",
            "Conv: argument 'c' must be a positive number of channels (an integer), got True",
        ),
        ("[true, Conv, [16, 3]]", "Conv: repeat must be a positive integer, got True"),
        # floats where integers are required
        (
            "[1, Conv, [16.5, 3]]",
            "Conv: argument 'c' must be a positive number of channels (an integer), got 16.5",
        ),
        ("[1, DWConv, [16, 3.0]]", "DWConv: argument 'k' must be a positive integer, got 3.0"),
        ("[1, Conv, [16, 3, 1.5]]", "Conv: argument 's' must be a positive integer, got 1.5"),
        # strings
        ("[1, Conv, [16, 3, 1, '1']]", "Conv: argument 'p' must be an integer >= 0, got '1'"),
        (
            "[1, Bottleneck, [16, true, 1, '0.5']]",
            "Bottleneck: argument 'e' must be a positive number, got '0.5'",
        ),
        (
            "[1, Conv, 16]",
            "Conv: arguments must be a list ['c', 'k', 's', 'p', 'g', 'act'], got 16",
        ),
        # zero or negative numbers
        (
            "[1, Bottleneck, [16, true, 1, -0.5]]",
            "Bottleneck: argument 'e' must be a positive number, got -0.5",
        ),
        ("[1, Conv, [16, 3, 1, -1]]", "Conv: argument 'p' must be an integer >= 0, got -1"),
        ("[1, MaxPool, [3, 2, -1]]", "MaxPool: argument 'p' must be an integer >= 0, got -1"),
        (
            "[1, InvertedResidualv3, [3, 4, 16, 2, 0, 1]]",
            "InvertedResidualv3: argument 'use_se' must be 0, 1, true or false, got 2",
        ),
        # values the module does not accept
        (
            "[1, InvertedResidualv2, [16, 4, 3]]",
            "InvertedResidualv2: argument 's' must be one of [1, 2], got 3",
        ),
        (
            "[1, Conv, [16, 3, 1, null, 1, Relu]]",
            "Conv: argument 'act' must be an activation, one of",
        ),
        ("[1, Fire, [16, null, 32]]", "Fire: argument 'expand1x1' is required, got null"),
    ],
)
def test_arguments_are_checked_naming_line_module_and_argument(tmp_path, entry, message):
    got = _refused(tmp_path, f"{HEAD}{CONV}  - {entry}\n")
    assert f"bad.yaml:4: backbone[1] {message}" in got


def test_unknown_activation_suggests_the_close_name(tmp_path):
    got = _refused(tmp_path, f"{HEAD}  - [1, Conv, [16, 3, 1, null, 1, hardswish]]\n")
    assert "got 'hardswish' (did you mean Hardswish?)" in got


@pytest.mark.parametrize(
    "entry, cin, message",
    [
        # these built and failed only at the first forward pass
        ("[1, MaxPool, [3, 2, 2]]", 16, "padding p=2 must be at most half the kernel size k=3"),
        (
            "[1, InvertedResidualv3, [3, 4, 16, 0, 0, 1]]",
            3,
            "in channels must be a multiple of 8 (torchvision rounds them), got 3",
        ),
        ("[1, MBConv, [4, 16, 1, 3]]", 12, "in channels must be a multiple of 8"),
    ],
)
def test_what_failed_at_forward_time_fails_at_build(tmp_path, entry, cin, message):
    got = _refused(tmp_path, f"input_channel: {cin}\nbackbone:\n  - {entry}\n")
    assert "bad.yaml:3: backbone[0] " in got and message in got


def test_valid_edge_values_still_build(tmp_path):
    """The checks refuse nothing the shipped configs and templates use."""
    path = tmp_path / "ok.yaml"
    path.write_text(
        "input_channel: 1\nwidth_multiple: 0.25\ndepth_multiple: 0.5\n"
        "name: edge\ninput_size: [32, 32]\nbackbone:\n"
        "  - [1, Conv, [16, 3, 2, 0, 1, Identity]]\n"
        "  - [1, InvertedResidualv3, [3, 4.5, 16, true, false, 1]]\n"
        "  - [1, Bottleneck, [16, 0, 1, 1]]\n"
        "  - [1, MaxPool, [2, null, 1]]\n"
        "  - [1, GlobalAvgPool, null]\n  - [1, Flatten, []]\n"
        "  - [1, Linear, [4, null]]\n"
    )
    assert build_yaml_model(path)(torch.zeros(1, 1, 32, 32)).shape == (1, 4)
