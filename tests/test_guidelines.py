"""Each guideline experiment's variants really hold FLOPs equal; builds and verdicts work."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from trashkit.complexity import guidelines as gl


@pytest.mark.parametrize("name", list(gl.EXPERIMENTS))
def test_variants_have_equal_conv_flops(name):
    variants = gl.EXPERIMENTS[name](gl.DEFAULT_WIDTH[name])
    costs = gl.variant_costs(variants)
    macs = costs["conv MACs"]
    # every variant within 1.2% of the first row's FLOPs (the paper's own tables: up to 5%)
    assert ((macs / macs.iloc[0] - 1).abs() < 0.012).all(), macs
    assert len(costs) == len(next(iter(gl.PAPER[name].values())))
    # and the variable under test (memory access) really differs
    assert costs["mem (elements)"].nunique() > 1 or name == "G4"


def test_g4_differs_only_in_elementwise_work():
    costs = gl.variant_costs(gl.g4_variants(32))
    assert costs["conv MACs"].nunique() == 1
    ew = costs["elementwise FLOPs"].tolist()
    assert ew[0] > ew[1] > ew[3] == 0 and ew[2] > 0


def test_g1_paper_formula_minimum_at_equal_width():
    # MAC of one 1x1 conv, hw(c1 + c2) + c1 c2, at equal FLOPs is smallest for c1 == c2
    costs = gl.variant_costs(gl.g1_variants(64))
    assert costs["mem (elements)"].is_monotonic_increasing


@pytest.mark.parametrize("name", list(gl.EXPERIMENTS))
def test_blocks_run_with_expected_shapes(name):
    for v in gl.EXPERIMENTS[name](16):
        model = v.build()
        y = model(torch.zeros(1, v.in_channels, 12, 12))
        assert y.shape == (1, v.in_channels, 12, 12)
        assert len(model) == gl.BLOCKS


def _fake(name, speeds):
    labels = [f"v{i}" for i in range(len(speeds))]
    df = pd.DataFrame({"relative speed": speeds}, index=labels)
    df.attrs["experiment"] = name
    return df


def test_verdicts_follow_the_numbers():
    assert gl.verdict(_fake("G1", [1, 0.9, 0.7, 0.5]))[0] == "holds"
    assert gl.verdict(_fake("G1", [1, 1.2, 0.7, 0.9]))[0] == "partly"
    assert gl.verdict(_fake("G2", [1, 1.2, 1.3, 1.4]))[0] == "does not hold"
    assert gl.verdict(_fake("G3", [1, 0.8, 0.7, 0.9, 0.6]))[0] == "holds"
    assert gl.verdict(_fake("G3", [1, 1.0, 1.01, 0.99, 1.0]))[0] == "does not hold"
    assert gl.verdict(_fake("G4", [1, 1.1, 1.05, 1.2]))[0] == "holds"
    assert gl.verdict(_fake("G4", [1, 1.0, 1.01, 0.99]))[0] == "does not hold"


def test_quick_experiment_runs_and_carries_paper_columns():
    df = gl.run_experiment("G2", width=16, runs=2, warmup=1)
    assert {"median ms", "relative speed", "paper GPU x1 (rel.)"} <= set(df.columns)
    assert df["relative speed"].iloc[0] == 1.0
    assert df["paper GPU x1 (rel.)"].tolist() == [1.0, 0.7, 0.42, 0.26]
