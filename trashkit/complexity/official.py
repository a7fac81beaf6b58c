"""The competition's MACs count (ptflops), and every other counter side by side.

The competition counted with ptflops' module hooks and passed the ReLU family in
``ignore_modules``. Those releases (0.6.x, 2021) had no functional-op counting and no backend
choice; ptflops 0.7 added both, and its default backend has changed between releases. So we
name everything explicitly: ``backend="pytorch"`` and ``count_functional=False`` reproduce the
competition's numbers on today's ptflops.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pandas as pd
import torch
from torch import nn

from .analytic import count_layers

RELU_FAMILY = [nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6]


def ptflops_count(
    model: nn.Module,
    input_size: tuple[int, ...],
    backend: str = "pytorch",
    count_functional: bool = False,
    ignore_relu: bool = True,
) -> tuple[int, int]:
    """``(MACs, params)`` from ptflops with every setting explicit (batch 1)."""
    import copy

    from ptflops import get_model_complexity_info

    extra = {"count_functional": count_functional} if backend == "pytorch" else {}
    # ptflops binds helper methods onto the model it counts: count a copy, so the caller's
    # model stays picklable and untouched
    model = copy.deepcopy(model)
    was_training = model.training
    macs, params = get_model_complexity_info(
        model,
        tuple(input_size),
        as_strings=False,
        print_per_layer_stat=False,
        verbose=False,
        ignore_modules=list(RELU_FAMILY) if ignore_relu else [],
        backend=backend,
        backend_specific_config=extra,
        ost=io.StringIO(),
    )
    model.train(was_training)
    if macs is None:
        raise RuntimeError(f"ptflops ({backend}) could not count {type(model).__name__}")
    return int(macs), int(params)


def official_macs(model: nn.Module, input_size: tuple[int, ...] | int = 156) -> int:
    """The competition's MACs: ptflops, pytorch backend, no functional ops, ReLU family
    ignored, input ``(3, H, W)``, batch 1. Every chapter that reports MACs calls this."""
    if isinstance(input_size, int):
        input_size = (3, input_size, input_size)
    return ptflops_count(model, input_size, "pytorch", False, True)[0]


def flopcounter_macs(model: nn.Module, input_size: tuple[int, ...]) -> int:
    """torch's own ``FlopCounterMode`` (counts FLOPs = 2 x MACs of matmuls and convs)."""
    from torch.utils.flop_counter import FlopCounterMode

    p = next(model.parameters())
    x = torch.zeros((1, *input_size), dtype=p.dtype, device=p.device)
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    model.train(was_training)
    return fc.get_total_flops() // 2


def _predictions(df: pd.DataFrame) -> dict[str, tuple[int, str]]:
    """What each counter *should* report, predicted from our per-layer table by its rules."""
    cat = df.groupby("category")

    def s(col: str, *cats: str) -> int:
        return int(sum(cat[col].sum().get(c, 0) for c in cats))

    convlin = s("macs", "conv", "linear")
    bias = s("bias_macs", "conv", "linear")
    bn = int((2 * df[df.category == "batchnorm"].in_numel).sum())
    pool_in = int(df[(df.category == "pool") & (df.type != "mean")].in_numel.sum())
    pool_fn = pool_in  # F.max_pool2d & co. are patched; x.mean() is not
    relu = int(df[df.category == "relu-family"].in_numel.sum())
    silu = int(df[df.type == "SiLU"].in_numel.sum())
    official = convlin + bn + pool_in
    return {
        "analytic (ours)": (
            s("macs", *df.category.unique()),
            (
                "every layer: conv/linear incl. bias, BN (1/elem), activations' "
                "multiplies, pools, SE multiply"
            ),
        ),
        "ptflops pytorch, no functional, ReLU ignored (OFFICIAL)": (
            official,
            (
                "conv+linear incl. bias + BN counted 2/elem + every pooling module "
                "counted at its INPUT size; Hardswish/Hardsigmoid/SiLU and the SE "
                "multiply / residual add are invisible"
            ),
        ),
        "ptflops pytorch, no functional, ReLU counted": (
            official + relu,
            "as official + 1 per ReLU/ReLU6 element",
        ),
        "ptflops pytorch, functional (0.7 default)": (
            official + 2 * relu + pool_fn + silu,
            (
                "module hooks AND F.* patches both fire: every ReLU counted twice, every "
                "pooling module twice, SiLU once via F.silu; Hardswish still invisible, and "
                "no SE multiply or residual add (x * s is Tensor.__mul__, not patched)"
            ),
        ),
        "ptflops aten": (
            convlin,
            ("only aten.convolution / addmm / mm: conv+linear incl. bias, nothing else"),
        ),
        "torch FlopCounterMode / 2": (convlin - bias, "conv+linear matmuls only, no bias"),
    }


def compare_counters(model: nn.Module, input_size: tuple[int, ...]) -> pd.DataFrame:
    """Every counter on one model, beside the value our table predicts for it.

    ``matches`` is True where the counter's rules, applied to our analytic per-layer table,
    reproduce its number exactly: the difference between counters is then fully explained by
    which layer types each one sees (the ``explanation`` column).
    """
    df = count_layers(model, input_size)
    pred = _predictions(df)
    runs: dict[str, Callable[[], int]] = {
        "analytic (ours)": lambda: df.attrs["total"]["macs"],
        "ptflops pytorch, no functional, ReLU ignored (OFFICIAL)": lambda: ptflops_count(
            model, input_size, "pytorch", False, True
        )[0],
        "ptflops pytorch, no functional, ReLU counted": lambda: ptflops_count(
            model, input_size, "pytorch", False, False
        )[0],
        "ptflops pytorch, functional (0.7 default)": lambda: ptflops_count(
            model, input_size, "pytorch", True, False
        )[0],
        "ptflops aten": lambda: ptflops_count(model, input_size, "aten", False, False)[0],
        "torch FlopCounterMode / 2": lambda: flopcounter_macs(model, input_size),
    }
    rows = []
    for name, run in runs.items():
        got = run()
        expect, why = pred[name]
        rows.append(
            {
                "counter": name,
                "MACs": got,
                "predicted from our table": expect,
                "matches": got == expect,
                "explanation": why,
            }
        )
    return pd.DataFrame(rows).set_index("counter")


def resolution_split(model: nn.Module, size: int) -> dict:
    """The official MACs at input side ``size`` in two parts. ``fixed``: the convolutions and
    linear layers whose cost does not depend on the input size (they see a 1x1 map or a
    vector: squeeze-excite's fully-connected layers, the classifier), found as the layers that
    cost the same at ``size`` and ``2 * size``; ``scaling``: the rest, which grows with the
    area of the feature maps. ``layers`` lists the fixed layers. Why: a network's MACs ratio
    between two input sides is not (side ratio)^2 but ``macs_at`` of this split."""
    small = count_layers(model, (3, size, size))
    large = count_layers(model, (3, 2 * size, 2 * size))
    same = small.macs.to_numpy() == large.macs.to_numpy()
    rows = small[same & small.category.isin(["conv", "linear"]).to_numpy()]
    total = official_macs(model, size)
    fixed = int(rows.macs.sum())
    return {
        "size": size,
        "total": total,
        "fixed": fixed,
        "scaling": total - fixed,
        "layers": rows[["name", "type", "out_shape", "macs"]].reset_index(drop=True),
    }


def macs_at(split: dict, side: int) -> float:
    """The official MACs at input side ``side`` predicted from a :func:`resolution_split`:
    ``fixed + scaling * (side / size)^2``, exact when the network's strides divide both
    sides (otherwise a stride rounds a map's size up and adds a little)."""
    return split["fixed"] + split["scaling"] * (side / split["size"]) ** 2
