"""Our own per-layer counter: run the model once and price every layer with :mod:`.formulas`.

Leaf modules (convolutions, linear, BN, activations, pools) are priced from their forward
hooks. Operations that live *between* modules - the residual ``x + y``, the squeeze-excite
``scale * x``, ``torch.cat`` and the ``contiguous()`` that materialises a channel shuffle -
are caught with a ``TorchFunctionMode`` and charged to the module that called them. That is
exactly the part that hook-only counters miss, which chapter 2 makes visible.
"""

from __future__ import annotations

import warnings

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from . import formulas as fm

ACT_MODULES = {
    nn.ReLU: "ReLU",
    nn.ReLU6: "ReLU6",
    nn.Hardswish: "Hardswish",
    nn.Hardsigmoid: "Hardsigmoid",
    nn.SiLU: "SiLU",
    nn.Sigmoid: "Sigmoid",
    nn.LeakyReLU: "LeakyReLU",
    nn.PReLU: "PReLU",
    nn.ELU: "ELU",
    nn.Tanh: "Tanh",
    nn.GELU: "GELU",
}
ACT_FUNCS = {
    F.relu: "ReLU",
    F.relu6: "ReLU6",
    F.hardswish: "Hardswish",
    F.hardsigmoid: "Hardsigmoid",
    F.silu: "SiLU",
    torch.sigmoid: "Sigmoid",
    F.sigmoid: "Sigmoid",
    torch.relu: "ReLU",
    F.gelu: "GELU",
    torch.tanh: "Tanh",
    F.tanh: "Tanh",
}
ADD = {
    torch.add,
    torch.Tensor.add,
    torch.Tensor.add_,
    torch.Tensor.__add__,
    torch.Tensor.__iadd__,
    torch.Tensor.__radd__,
}
MUL = {
    torch.mul,
    torch.Tensor.mul,
    torch.Tensor.mul_,
    torch.Tensor.__mul__,
    torch.Tensor.__imul__,
    torch.Tensor.__rmul__,
}
FREE = (nn.Dropout, nn.Identity, nn.Flatten)
COLUMNS = [
    "name",
    "type",
    "category",
    "out_shape",
    "params",
    "macs",
    "bias_macs",
    "flops",
    "mem",
    "in_numel",
    "out_numel",
]


def _shape(t) -> tuple[int, ...]:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else ()


def _pool_window(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return max(1, (x.shape[-2] // y.shape[-2]) * (x.shape[-1] // y.shape[-1]))
    k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * 2
    return k[0] * k[1]


def module_cost(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[fm.Cost, str] | None:
    """Price one leaf module from its actual input and output; None if we do not know it."""
    if isinstance(m, nn.Conv2d):
        _, _, h, w = x.shape
        return fm.conv2d(
            m.in_channels,
            m.out_channels,
            h,
            w,
            m.kernel_size,
            m.stride,
            m.padding if isinstance(m.padding, tuple) else (0, 0),
            m.dilation,
            m.groups,
            m.bias is not None,
            x.shape[0],
        ), "conv"
    if isinstance(m, nn.Linear):
        batch = x.numel() // m.in_features
        return fm.linear(m.in_features, m.out_features, m.bias is not None, batch), "linear"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return fm.batchnorm(_shape(x), m.affine), "batchnorm"
    for cls, kind in ACT_MODULES.items():
        if type(m) is cls:
            if kind == "GELU" and getattr(m, "approximate", "none") == "tanh":
                kind = "GELU-tanh"
            return fm.activation(kind, _shape(x)), "relu-family" if "ReLU" in kind or kind in (
                "PReLU",
                "ELU",
            ) else "activation"
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        kind = "max" if "Max" in type(m).__name__ else "avg"
        return fm.pool2d(kind, _shape(x), tuple(y.shape[-2:]), _pool_window(m, x, y)), "pool"
    if isinstance(m, nn.ChannelShuffle):
        return fm.data_movement("shuffle", _shape(y)), "shuffle"
    if isinstance(m, FREE):
        return fm.Cost(_shape(y)), "free"
    return None


class _Recorder(TorchFunctionMode):
    """Catches element-wise ops, concatenation and shuffles between leaf modules."""

    def __init__(self, counter: _Counter):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        c = self.counter
        if c.leaf_depth == 0 and isinstance(out, torch.Tensor):
            shape = tuple(out.shape)
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            full = sum(1 for a in tensors if a.numel() == out.numel()) or 1
            if func in ADD and len(args) > 1:
                c.add(fm.elementwise("add", shape, full), "add", "residual-add")
            elif func in MUL and len(args) > 1:
                c.add(fm.elementwise("mul", shape, full), "mul", "se-multiply")
            elif func is torch.cat:
                c.add(fm.data_movement("cat", shape), "cat", "concat")
            elif func is torch.Tensor.contiguous and not args[0].is_contiguous():
                c.add(fm.data_movement("shuffle", shape), "contiguous", "shuffle")
            elif func in ACT_FUNCS:
                kind = ACT_FUNCS[func]
                if kind == "GELU" and kwargs.get("approximate", "none") == "tanh":
                    kind = "GELU-tanh"
                c.add(fm.activation(kind, shape), kind, "activation")
            elif (
                func in (F.adaptive_avg_pool2d, torch.mean, torch.Tensor.mean)
                and args[0].dim() == 4
            ):
                x = args[0]
                c.add(
                    fm.pool2d(
                        "avg",
                        tuple(x.shape),
                        tuple(shape[-2:]) if out.dim() == 4 else (1, 1),
                        x.shape[-2]
                        * x.shape[-1]
                        // max(1, (shape[-2] * shape[-1]) if out.dim() == 4 else 1),
                    ),
                    "mean",
                    "pool",
                )
        return out


class _Counter:
    def __init__(self, model: nn.Module):
        self.rows: list[dict] = []
        self.stack: list[str] = []
        self.leaf_depth = 0
        self.unknown: list[str] = []
        self.names = {m: n for n, m in model.named_modules()}

    def add(
        self, cost: fm.Cost, op: str, category: str, name: str | None = None, in_numel: int = 0
    ):
        self.rows.append(
            {
                "name": name or (self.stack[-1] if self.stack else "") + f":{op}",
                "type": op,
                "category": category,
                "out_shape": cost.out_shape,
                "params": cost.params,
                "macs": cost.macs,
                "bias_macs": 0,
                "flops": cost.flops,
                "mem": cost.mem,
                "in_numel": in_numel,
                "out_numel": fm._numel(cost.out_shape),
            }
        )

    def pre(self, m, inputs):
        self.stack.append(self.names[m])
        if not list(m.children()):
            self.leaf_depth += 1

    def post(self, m, inputs, output):
        self.stack.pop()
        if list(m.children()):
            return
        self.leaf_depth -= 1
        x = inputs[0] if inputs else None
        if not isinstance(x, torch.Tensor) or not isinstance(output, torch.Tensor):
            return
        priced = module_cost(m, x, output)
        if priced is None:
            own = sum(p.numel() for p in m.parameters(recurse=False))
            if own:
                self.unknown.append(f"{self.names[m]} ({type(m).__name__})")
            priced = (fm.Cost(tuple(output.shape), own), "unknown")
        cost, category = priced
        self.add(cost, type(m).__name__, category, self.names[m], x.numel())
        if category in ("conv", "linear") and getattr(m, "bias", None) is not None:
            self.rows[-1]["bias_macs"] = output.numel()


def count_layers(
    model: nn.Module, input_size: tuple[int, ...] = (3, 224, 224), batch: int = 1
) -> pd.DataFrame:
    """One row per priced layer or op, in execution order; ``df.attrs['total']`` sums them.

    Columns: name, type, category (conv, linear, batchnorm, relu-family, activation, pool,
    residual-add, se-multiply, concat, shuffle, free, unknown), out_shape, params, macs,
    bias_macs, flops, mem (elements), in_numel, out_numel. Modules with parameters that we
    cannot price are listed in ``df.attrs['unknown']`` and warned about, never silently 0.
    """
    counter = _Counter(model)
    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(counter.pre))
        handles.append(m.register_forward_hook(counter.post))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters(), None)
        x = torch.zeros(
            (batch, *input_size),
            dtype=p.dtype if p is not None else None,
            device=p.device if p is not None else None,
        )
        with torch.no_grad(), _Recorder(counter):
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    df = pd.DataFrame(counter.rows, columns=COLUMNS)
    df.attrs["total"] = {k: int(df[k].sum()) for k in ("macs", "flops", "mem")}
    df.attrs["total"]["params"] = sum(p.numel() for p in model.parameters())
    df.attrs["unknown"] = counter.unknown
    if counter.unknown:
        warnings.warn(
            f"layers with parameters the analytic counter cannot price: {counter.unknown}",
            stacklevel=2,
        )
    return df


def by_category(df: pd.DataFrame) -> pd.DataFrame:
    """MACs, FLOPs and memory access per layer category, with shares of the total."""
    g = df.groupby("category")[["macs", "flops", "mem", "params"]].sum()
    g["macs %"] = (100 * g.macs / max(1, g.macs.sum())).round(1)
    g["mem %"] = (100 * g.mem / max(1, g.mem.sum())).round(1)
    return g.sort_values("macs", ascending=False)
