"""The analytic counter against hand counts, ptflops, and the guard and latency instruments."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm
from torchvision.ops import SqueezeExcitation

from trashkit.complexity import (
    check_countable,
    compare_counters,
    count_layers,
    find_escapes,
    interleaved_latency,
    measure_latency,
    official_macs,
    ptflops_count,
)
from trashkit.complexity import formulas as fm


def total(module, size, key="macs"):
    return count_layers(module, size).attrs["total"][key]


def row(module, size):
    df = count_layers(module, size)
    assert len(df) == 1, df
    return df.iloc[0]


# --- hand-countable cases, one per layer type --------------------------------------------


@pytest.mark.parametrize(
    "kw, size, hand_macs, hand_out",
    [
        # plain 3x3, no padding: 8x8 -> 6x6
        (
            {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "bias": False},
            (2, 8, 8),
            4 * 6 * 6 * 2 * 9,
            (1, 4, 6, 6),
        ),
        # padding 1 keeps 8x8
        (
            {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": 1, "bias": False},
            (2, 8, 8),
            4 * 8 * 8 * 2 * 9,
            (1, 4, 8, 8),
        ),
        # stride 2 + padding 1: 8x8 -> 4x4
        (
            {
                "in_channels": 2,
                "out_channels": 4,
                "kernel_size": 3,
                "stride": 2,
                "padding": 1,
                "bias": False,
            },
            (2, 8, 8),
            4 * 4 * 4 * 2 * 9,
            (1, 4, 4, 4),
        ),
        # dilation 2 (effective 5x5), no padding: 8x8 -> 4x4
        (
            {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "dilation": 2, "bias": False},
            (2, 8, 8),
            4 * 4 * 4 * 2 * 9,
            (1, 4, 4, 4),
        ),
        # bias: one more MAC per output
        (
            {"in_channels": 2, "out_channels": 4, "kernel_size": 1, "bias": True},
            (2, 5, 5),
            4 * 5 * 5 * (2 + 1),
            (1, 4, 5, 5),
        ),
        # groups=2: each output sees half the inputs
        (
            {
                "in_channels": 4,
                "out_channels": 6,
                "kernel_size": 3,
                "padding": 1,
                "groups": 2,
                "bias": False,
            },
            (4, 6, 6),
            6 * 6 * 6 * 2 * 9,
            (1, 6, 6, 6),
        ),
        # depthwise
        (
            {
                "in_channels": 5,
                "out_channels": 5,
                "kernel_size": 3,
                "padding": 1,
                "groups": 5,
                "bias": False,
            },
            (5, 7, 7),
            5 * 7 * 7 * 9,
            (1, 5, 7, 7),
        ),
        # rectangular kernel and stride
        (
            {
                "in_channels": 1,
                "out_channels": 1,
                "kernel_size": (1, 3),
                "stride": (2, 1),
                "bias": False,
            },
            (1, 6, 6),
            1 * 3 * 4 * 3,
            (1, 1, 3, 4),
        ),
    ],
)
def test_conv_hand_counts(kw, size, hand_macs, hand_out):
    conv = nn.Conv2d(**kw)
    r = row(conv, size)
    assert r.macs == hand_macs and r.out_shape == hand_out
    assert r.params == sum(p.numel() for p in conv.parameters())
    k = kw["in_channels"] // kw.get("groups", 1) * (conv.kernel_size[0] * conv.kernel_size[1])
    outputs = 1
    for s in hand_out:
        outputs *= s
    assert r.flops == outputs * (2 * k - 1) + (outputs if kw.get("bias") else 0)
    assert r.mem == 1 * size[0] * size[1] * size[2] + r.params + outputs


def test_matvec_dot_linear():
    r = row(nn.Linear(3, 3, bias=False), (3,))
    assert (r.macs, r.flops) == (9, 15)
    r = row(nn.Linear(10, 1, bias=False), (10,))
    assert (r.macs, r.flops) == (10, 19)
    r = row(nn.Linear(7, 5), (7,))
    assert (r.macs, r.flops, r.params) == (5 * 7 + 5, 5 * 13 + 5, 40)
    assert fm.matvec(3, 3).macs == 9 and fm.dot(4).flops == 7


def test_batchnorm_activations_pools():
    shape = (3, 4, 4)
    n = 48
    assert (row(nn.BatchNorm2d(3), shape).macs, row(nn.BatchNorm2d(3), shape).flops) == (n, 2 * n)
    expected = {
        nn.ReLU(): (0, n),
        nn.ReLU6(): (0, 2 * n),
        nn.Hardswish(): (2 * n, 5 * n),
        nn.Hardsigmoid(): (n, 4 * n),
        nn.SiLU(): (n, 4 * n),
        nn.Sigmoid(): (0, 3 * n),
    }
    for mod, (m, f) in expected.items():
        r = row(mod, shape)
        assert (r.macs, r.flops) == (m, f), type(mod).__name__
        assert r.mem == 2 * n
    r = row(nn.MaxPool2d(2), shape)  # 3x2x2 outputs, 3 comparisons each
    assert (r.macs, r.flops, r.out_shape) == (0, 12 * 3, (1, 3, 2, 2))
    r = row(nn.AvgPool2d(2), shape)  # 3 adds + 1 multiply per output
    assert (r.macs, r.flops) == (12, 12 * 4)
    r = row(nn.AdaptiveAvgPool2d(1), shape)  # global: 15 adds + 1 multiply per channel
    assert (r.macs, r.flops) == (3, 3 * 16)
    r = row(nn.MaxPool2d(3, stride=2, padding=1), (2, 8, 8))
    assert r.out_shape == (1, 2, 4, 4) and r.flops == 32 * 8


def test_activation_counts_follow_the_stated_rule():
    """MACs = the multiplications, FLOPs = every operation, both from one list per activation
    (the table chapter 2 prints): the text and the numbers cannot drift apart."""
    for kind, (_how, ops) in fm.ACTIVATION_OPS.items():
        assert fm.ACTIVATIONS[kind][:2] == (ops.count("mul"), len(ops)), kind
        assert set(ops) <= {"add", "sub", "mul", "div", "cmp", "exp", "erf", "tanh"}, kind
    shape, n = (2, 3, 3), 18
    assert (row(nn.Tanh(), shape).macs, row(nn.Tanh(), shape).flops) == (0, n)
    assert (row(nn.GELU(), shape).macs, row(nn.GELU(), shape).flops) == (3 * n, 5 * n)
    r = row(nn.GELU(approximate="tanh"), shape)
    assert (r.macs, r.flops) == (6 * n, 9 * n)
    # the rule in words, checked on hardswish: add, 2 comparisons, 2 multiplies
    assert fm.ACTIVATION_OPS["Hardswish"][1] == ("add", "cmp", "cmp", "mul", "mul")


def test_macs_and_flops_of_dot_products():
    # FLOPs = 2 MACs - (number of dot products) without bias: "MACs ~ FLOPs / 2" only for
    # long dot products; the 3x3 matrix-vector product is 9 MACs, 15 FLOPs (not 6 MACs)
    for rows, cols in [(3, 3), (1, 1), (64, 576)]:
        c = fm.matvec(rows, cols)
        assert c.flops == 2 * c.macs - rows
    assert (fm.matvec(3, 3).macs, fm.matvec(3, 3).flops) == (9, 15)
    conv = fm.conv2d(64, 64, 8, 8, 3, padding=1)
    assert conv.flops == 2 * conv.macs - 64 * 8 * 8
    assert abs(conv.macs / (conv.flops / 2) - 1) < 0.002


def test_memory_access_of_a_1x1_conv_and_its_bound():
    # the paper's MAC is our conv2d mem for a bias-free 1x1 conv, batch 1
    for h, w, c1, c2, g in [
        (2, 2, 2, 2, 1),
        (3, 1, 2, 5, 1),
        (56, 56, 36, 432, 1),
        (7, 7, 8, 16, 4),
    ]:
        assert fm.mem_1x1(h, w, c1, c2, g) == fm.conv2d(c1, c2, h, w, 1, groups=g).mem
    assert fm.mem_1x1(2, 2, 2, 2) == 20 == fm.mem_lower_bound(2, 2, 16)  # equality at c1 = c2
    assert fm.mem_1x1(2, 2, 1, 4) == 24 > fm.mem_lower_bound(2, 2, 16)
    assert fm.mem_1x1(56, 56, 128, 128) == 819200 == fm.mem_lower_bound(56, 56, 3136 * 128**2)
    assert fm.mem_1x1(56, 56, 36, 432) == 1483200


def test_squeeze_excite_and_residual_and_shuffle_are_seen():
    c, h = 16, 5
    se = SqueezeExcitation(c, 4, scale_activation=nn.Hardsigmoid)
    df = count_layers(se, (c, h, h))
    mul = df[df.category == "se-multiply"]
    assert len(mul) == 1 and mul.macs.iloc[0] == c * h * h
    assert df.attrs["total"]["macs"] == fm.total(fm.squeeze_excite(c, 4, h, h)).macs

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1, bias=False)

        def forward(self, x):
            y = self.conv(x)
            y += x
            return torch.cat([y, x], 1)

    df = count_layers(Res(), (4, 3, 3))
    assert df.category.tolist() == ["conv", "residual-add", "concat"]
    add = df.iloc[1]
    assert (add.macs, add.flops, add.mem) == (0, 36, 3 * 36)
    assert (df.iloc[2].macs, df.iloc[2].mem) == (0, 2 * 72)
    sdf = count_layers(tvm.shufflenet_v2_x0_5(num_classes=6), (3, 64, 64))
    assert (sdf.category == "shuffle").sum() == 16  # one per ShuffleNetV2 unit


def test_global_mean_written_in_forward_is_seen():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Identity()

        def forward(self, x):
            return self.body(x).mean([2, 3])  # ShuffleNetV2's global pool: Tensor.mean

    df = count_layers(Net(), (4, 3, 3))
    r = df[df.category == "pool"].iloc[0]
    assert (r.type, r.macs, r.flops, r.out_shape) == ("mean", 4, 4 * 9, (1, 4, 1, 1))


def test_unknown_parametrised_layer_is_reported():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x * self.w.view(1, 3, 1, 1)

    with pytest.warns(UserWarning, match="cannot price"):
        df = count_layers(nn.Sequential(Odd()), (3, 2, 2))
    assert df.attrs["unknown"] == ["0 (Odd)"]


# --- agreement with ptflops ---------------------------------------------------------------


@pytest.mark.parametrize(
    "build", [tvm.mobilenet_v3_small, tvm.shufflenet_v2_x0_5], ids=lambda f: f.__name__
)
@pytest.mark.parametrize("size", [224, 156])
def test_conv_linear_agree_with_ptflops_aten(build, size):
    model = build(num_classes=6)
    df = count_layers(model, (3, size, size))
    ours = int(df[df.category.isin(["conv", "linear"])].macs.sum())
    aten, _ = ptflops_count(model, (3, size, size), backend="aten", ignore_relu=False)
    assert ours == aten


@pytest.mark.parametrize(
    "build",
    [tvm.mobilenet_v3_small, tvm.shufflenet_v2_x0_5, tvm.mnasnet0_5],
    ids=lambda f: f.__name__,
)
def test_every_counter_is_explained_by_our_table(build):
    cmp = compare_counters(build(num_classes=6), (3, 96, 96))
    assert cmp.matches.all(), cmp[["MACs", "predicted from our table"]]
    assert cmp.MACs.nunique() >= 4  # the counters really do disagree


def test_official_macs_settings():
    m = tvm.mobilenet_v3_small(num_classes=6)
    assert official_macs(m, 156) == official_macs(m, (3, 156, 156))
    assert official_macs(m, 156) < official_macs(m, 224)
    with_relu, _ = ptflops_count(m, (3, 156, 156), "pytorch", False, ignore_relu=False)
    assert official_macs(m, 156) < with_relu  # ReLU family really ignored


# --- the guard ----------------------------------------------------------------------------


class DodgingConv(nn.Conv2d):
    """Planted: computes a convolution the official counter never sees."""

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


class DodgingLinear(nn.Linear):
    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


def test_guard_finds_planted_hook_dodgers():
    model = nn.Sequential(
        DodgingConv(3, 8, 3),
        nn.ReLU(),
        nn.Conv2d(8, 8, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        DodgingLinear(8, 6),
    )
    escapes = find_escapes(model)
    assert [(e.name, e.cls) for e in escapes] == [("0", "DodgingConv"), ("5", "DodgingLinear")]
    assert "F.conv2d" in escapes[0].reason and "F.linear" in escapes[1].reason
    with pytest.raises(ValueError, match="DodgingConv"):
        check_countable(model)
    # and the escape is real: the official count misses the dodging conv's MACs
    honest = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.ReLU(),
        nn.Conv2d(8, 8, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 6),
    )
    assert official_macs(model, 16) < official_macs(honest, 16)


def test_guard_passes_torchvision_models():
    for build in (tvm.mobilenet_v3_small, tvm.shufflenet_v2_x0_5, tvm.mobilenet_v2):
        assert find_escapes(build(num_classes=6)) == []
        check_countable(build(num_classes=6))


# --- latency ------------------------------------------------------------------------------


def test_latency_reports_context_and_order():
    lat = measure_latency(nn.Conv2d(3, 4, 3), (3, 16, 16), runs=7, warmup=1, threads=1)
    assert lat.runs == 7 and lat.threads == 1 and lat.batch == 1
    assert 0 < lat.median_ms <= lat.p90_ms
    assert lat.torch == torch.__version__ and "cpu" in lat.device
    text = str(lat)
    assert "threads" in text and "torch" in text and "median" in text
    lat8 = measure_latency(nn.Conv2d(3, 4, 3), (3, 16, 16), batch=8, runs=3, warmup=1)
    assert lat8.batch == 8 and lat8.throughput == pytest.approx(8000 / lat8.median_ms)


def test_interleaved_latency_takes_turns_and_ranks():
    calls: list[str] = []

    def model(name, work):
        def run(x):
            calls.append(name)
            return sum(torch.mm(x, x) for _ in range(work))

        return run

    x = torch.ones(64, 64)
    df = interleaved_latency(
        {"heavy": (model("heavy", 30), x), "light": (model("light", 1), x)}, rounds=20, warmup=2
    )
    assert calls[:4] == ["heavy", "light", "light", "heavy"]  # turns (the first rotating)
    assert len(calls) == 2 * (20 + 2)
    assert list(df.model) == ["heavy", "light"] and (df.rounds == 20).all()
    assert df.speedup.iloc[0] == 1.0 and df.speedup.iloc[1] > 3  # 30x the work
    assert (df.median_ms <= df.p90_ms).all()
    with pytest.raises(ValueError, match="no models"):
        interleaved_latency({})


def test_official_count_leaves_the_model_untouched_and_picklable():
    import io

    m = tvm.mobilenet_v3_small(num_classes=6)
    before = set(vars(m))
    official_macs(m, 64)
    assert set(vars(m)) == before
    torch.save(m, io.BytesIO())


# --- MACs vs latency: correlation per input size ----------------------------------------


def test_correlation_per_size_is_not_inflated_by_pooling():
    import pandas as pd

    from trashkit.complexity.study import correlation_by_size, slower_than_macs_suggest

    # MACs rank the three models backwards at every size, yet pooling the sizes shows a
    # strong positive trend (bigger inputs cost more MACs and more time)
    rows = []
    for size, scale in [(112, 1), (156, 3), (224, 9)]:
        for name, macs, ms in [("a", 10, 3.0), ("b", 20, 2.0), ("c", 30, 1.0)]:
            rows.append(
                {
                    "model": name,
                    "size": size,
                    "MACs (M)": macs * scale,
                    "latency ms": ms * scale * 10,
                    "lo ms": 0,
                    "hi ms": 0,
                }
            )
    df = pd.DataFrame(rows)
    corr = correlation_by_size(df)
    assert list(corr.index) == ["112", "156", "224", "pooled 112+156+224"]
    assert (corr["spearman rho"].iloc[:3] == -1).all()
    assert corr["spearman rho"].iloc[3] > 0.5
    df["ms per 100M MACs"] = 100 * df["latency ms"] / df["MACs (M)"]
    df["vs size median"] = df["ms per 100M MACs"] / df.groupby("size")[
        "ms per 100M MACs"
    ].transform("median")
    top = slower_than_macs_suggest(df, 156, top=1)
    assert top.model.tolist() == ["a"] and top["vs size median"].iloc[0] == 3.0


def test_latency_study_repeats_and_ranges():
    from trashkit.complexity.study import correlation_by_size, latency_study

    df = latency_study(
        ["squeezenet1_1", "mobilenet_v3_small w0.5", "shufflenet_v2_x0_5"],
        sizes=(32,),
        runs=2,
        warmup=1,
        repeats=2,
        progress=False,
    )
    assert len(df) == 3 and df.attrs["repeats"] == 2
    assert (df["lo ms"] <= df["latency ms"]).all() and (df["latency ms"] <= df["hi ms"]).all()
    assert (df["vs size median"] > 0).all()
    assert "32" in correlation_by_size(df).index


# --- transformers: attention, layer norm, softmax; what the counter cannot price ----------


class SelfAttention(nn.Module):
    """ViT's call: the same tokens as query, key and value."""

    def __init__(self, dim=4, heads=2, bias=True):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, bias=bias, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


def test_attention_by_hand():
    # 2 tokens of 4 numbers, 2 heads of width 2, with biases
    hand = {
        "q projection": 2 * 4 * 4 + 2 * 4,
        "k projection": 40,
        "v projection": 40,
        "scale": 2 * 4,
        "scores QK^T": 2 * 2 * 4,  # L^2 E
        "softmax": 0,
        "context AV": 2 * 2 * 4,
        "out projection": 40,
    }
    parts = fm.attention(2, 4, 2)
    assert {k: v.macs for k, v in parts.items()} == hand
    assert parts["softmax"].flops == 2 * 2 * (5 * 2 - 2)  # heads x rows x (5n - 2)
    assert total(SelfAttention(), (2, 4)) == sum(hand.values()) == 200
    # batch_first=False (sequence, batch, dim) and cross-attention: 3 queries, 5 keys, batch 2

    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 4, bias=False)

        def forward(self, x):
            x = x[0]  # (5, 2, 8)
            return self.attn(x[:3], x, x)[0]

    want = fm.total(fm.attention(3, 8, 4, kv_tokens=5, bias=False, batch=2)).macs
    assert total(Cross(), (5, 2, 8)) == want
    with pytest.raises(ValueError, match="must divide"):
        fm.attention(2, 5, 2)


def test_layernorm_softmax_matmul_by_hand():
    # layer norm over n = 4, two tokens: 3n + 2 MACs, 7n + 3 FLOPs per token
    r = row(nn.LayerNorm(4), (2, 4))
    assert (r.macs, r.flops, r.category) == (2 * 14, 2 * 31, "layernorm")
    r = row(nn.LayerNorm(4, elementwise_affine=False), (2, 4))
    assert (r.macs, r.flops) == (2 * 10, 2 * 23)
    r = row(nn.GroupNorm(2, 4), (4, 3, 3))  # 2 groups of 2 x 9 = 18 elements
    assert (r.macs, r.params) == (2 * (3 * 18 + 2), 8)
    r = row(nn.Softmax(dim=1), (3, 5))  # 5 rows of 3 along dim 1: 5n - 2 FLOPs each
    assert (r.macs, r.flops) == (0, 5 * (5 * 3 - 2))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Identity()  # not a leaf: what its forward calls is priced

        def forward(self, x):  # functions written in a forward, between modules
            s = x @ x.transpose(-2, -1)  # (1, 3, 4) x (1, 4, 3): 9 outputs x 4
            return torch.softmax(s, -1), torch.einsum("bij,bjk->bik", s, x)

    df = count_layers(Net(), (3, 4))
    df = df[df.category != "free"]
    assert df.category.tolist() == ["matmul", "softmax", "matmul"]
    assert df.macs.tolist() == [9 * 4, 0, 12 * 3]
    assert fm.matmul(3, 4, 3).flops == 9 * 7


def test_functional_linear_and_attention_are_priced():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 4)  # its weight used through F.linear, as Swin does

        def forward(self, x):
            q = F.linear(x, self.proj.weight, self.proj.bias)
            return F.scaled_dot_product_attention(q, q, q)

    df = count_layers(Functional(), (3, 4))
    lin = df[df.category == "linear"].iloc[0]
    assert (lin.macs, lin.bias_macs) == (3 * 4 * 4 + 12, 12)
    assert df[df.category == "matmul"].macs.tolist() == [3 * 3 * 4, 3 * 3 * 4]
    assert df.attrs["unknown"] == []


def test_l2_norms_are_priced():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Linear(4, 3, bias=False)

        def forward(self, x):  # ArcFace's cosines: unit embeddings against unit centres
            e = F.normalize(x, dim=1)  # per row of n: n squares, n - 1 adds, sqrt, n divisions
            return self.w(e) / self.w.weight.float().norm(dim=1)

    df = count_layers(Net(), (4,))
    norms = df[df.category == "normalize"]
    assert norms.macs.tolist() == [4, 12] and norms.flops.tolist() == [12, 24]
    assert df.attrs["unknown"] == []


def test_what_cannot_be_priced_is_named():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Identity()
            self.w = nn.Parameter(torch.ones(4, 4))

        def forward(self, x):
            y = torch.addmm(x[0], x, self.w)  # arithmetic without a formula here
            return self.inner(y)

    class Upsample(nn.Module):  # a parameter-free leaf we do not know
        def forward(self, x):
            return x.repeat(1, 2)

    with pytest.warns(UserWarning, match="cannot price"):
        df = count_layers(nn.Sequential(Odd(), Upsample()), (4,))
    assert df.attrs["unknown"] == ["0 (addmm: no formula)", "1 (Upsample)"]
    with pytest.warns(UserWarning, match="einsum: no formula"):  # three operands: not priced
        count_layers(_Einsum3(), (2, 2))


class _Einsum3(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Identity()

    def forward(self, x):
        x = self.body(x)[0]
        return torch.einsum("ij,jk,kl->il", x, x, x)


@pytest.mark.parametrize(
    "name",
    [
        "mobilenet_v3_small",
        "shufflenet_v2_x0_5",
        "resnet18",
        "efficientnet_b0",
        "mnasnet0_5",
        "vit_b_16",
        "swin_t",
    ],
)
def test_analytic_counter_matches_torchvision_published_counts(name):
    """torchvision's weights carry ``meta["_ops"]`` ("GFLOPS" in its docs): multiply-adds of
    convolutions and matrix products, no bias, at the weights' crop size, rounded to 3
    decimals. Our bias-free conv + linear + matmul MACs must match within 0.5% or half a unit
    of that rounding, whichever is larger; and nothing may be left unpriced. (ViT-B/16 and
    Swin-T: before attention was priced the counter reported about 2/3 of their count.)"""
    from trashkit.complexity.analytic import multiply_adds

    weights = tvm.get_model_weights(name).DEFAULT
    crop = weights.transforms().crop_size[0]
    df = count_layers(tvm.get_model(name, weights=None).eval(), (3, crop, crop))
    ours, published = multiply_adds(df) / 1e9, weights.meta["_ops"]
    assert abs(ours - published) <= max(0.005 * published, 0.0005), (ours, published)
    assert df.attrs["unknown"] == []
    assert df.attrs["total"]["macs"] >= multiply_adds(df)  # the full count adds BN, etc.


# --- the roofline and peak activation -----------------------------------------------------


def test_arithmetic_intensity_and_roofline_by_hand():
    c = fm.conv2d(2, 2, 2, 2, 1)  # 16 MACs; mem 8 in + 4 weights + 8 out = 20 elements
    assert (c.macs, c.mem) == (16, 20)
    assert fm.arithmetic_intensity(c) == 16 / 80
    assert fm.roofline(0.2, peak=100e9, bandwidth=20e9) == pytest.approx(4e9)
    assert fm.roofline(50, peak=100e9, bandwidth=20e9) == 100e9  # past the ridge (5)


def test_roofline_table_sums_the_larger_of_two_times():
    from trashkit.complexity.study import roofline_table

    df = count_layers(nn.Sequential(nn.Conv2d(2, 2, 1, bias=False), nn.ReLU()), (2, 2, 2))
    t = roofline_table(df, peak=100.0, bandwidth=20.0)  # ridge at 5 MACs/byte
    conv, relu = t.iloc[0], t.iloc[1]
    assert conv["bytes"] == 80 and conv["MACs/byte"] == 0.2 and conv["bound"] == "memory"
    assert conv["roofline us"] == pytest.approx(1e6 * 80 / 20)
    assert relu["compute us"] == 0 and relu["roofline us"] == pytest.approx(1e6 * 16 * 4 / 20)
    assert t.attrs["roofline us"] == pytest.approx(1e6 * (80 + 64) / 20)
    assert t.attrs["MACs-only us"] == pytest.approx(1e6 * 16 / 100)


def test_machine_roofline_reports_positive_roofs():
    from trashkit.complexity.study import machine_roofline

    r = machine_roofline(threads=1, size=64, megabytes=1, cache_megabytes=0.25, runs=2)
    assert r["peak MACs/s"] > 0 and r["bandwidth bytes/s"] > 0 and r["threads"] == 1
    assert r["ridge MACs/byte"] == pytest.approx(r["peak MACs/s"] / r["bandwidth bytes/s"])


def test_peak_activation_of_a_chain_by_hand():
    from trashkit.complexity.analytic import peak_activation

    # 3x8x8 -> conv 3->4 (pad 1) -> 4x8x8 -> max-pool 2 -> 4x4x4 -> flatten -> linear 64->6
    shapes = [(3, 8, 8), (4, 8, 8), (4, 4, 4), (64,), (6,)]
    assert fm.peak_activation(shapes) == (192 + 256, 0)
    chain = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.Flatten())
    chain.append(nn.Linear(64, 6))
    peak = peak_activation(count_layers(chain, (3, 8, 8)))
    assert (peak["name"], peak["elements"], peak["bytes"]) == ("0", 448, 448 * 4)
