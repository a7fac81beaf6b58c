"""Our own per-layer counter: run the model once and price every layer with :mod:`.formulas`.

Leaf modules (convolutions, linear, BN, activations, pools) are priced from their forward
hooks. Operations that live *between* modules - the residual ``x + y``, the squeeze-excite
``scale * x``, ``torch.cat`` and the ``contiguous()`` that materialises a channel shuffle -
are caught with a ``TorchFunctionMode`` and charged to the module that called them. That is
exactly the part that hook-only counters miss, which chapter 2 makes visible.

Transformers are priced too: ``nn.MultiheadAttention`` as one unit (projections, the Q K^T
and A V products, softmax: :func:`.formulas.attention`), matrix products, ``F.linear`` and
``F.scaled_dot_product_attention`` written in a ``forward``, softmax, layer and group norm.
What the counter cannot price is never a silent 0: a leaf module it does not know (with or
without parameters), an arithmetic function it has no formula for, and a parameter handed to
such a function are all named in ``df.attrs["unknown"]`` and in a warning.
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
FREE = (nn.Dropout, nn.Identity, nn.Flatten, nn.Unflatten)
#: leaf modules that move or relabel elements without arithmetic (by class name, so torchvision's
#: own helpers need no import): priced 0, never reported as unknown
ZERO_COST = {
    "Permute",
    "StochasticDepth",
    "ZeroPad2d",
    "ConstantPad2d",
    "Dropout2d",
    "WindowPartition",
    "WindowDepartition",
    "SwapAxes",
}
MATMUL = {
    torch.matmul,
    torch.Tensor.matmul,
    torch.Tensor.__matmul__,
    torch.bmm,
    torch.Tensor.bmm,
    torch.mm,
    torch.Tensor.mm,
}
SOFTMAX = {F.softmax, torch.softmax, torch.Tensor.softmax}
NORMS = {torch.norm, torch.Tensor.norm, torch.linalg.vector_norm, F.normalize}
#: arithmetic with no formula here: a call between modules is named, never priced 0 in silence
UNPRICED = {
    torch.einsum,  # priced when it has two operands (einsum_cost)
    torch.addmm,
    torch.baddbmm,
    torch.addbmm,
    torch.tensordot,
    F.conv1d,
    F.conv3d,
    F.conv_transpose1d,
    F.conv_transpose2d,
    F.conv_transpose3d,
    F.bilinear,
    F.group_norm,
    F.instance_norm,
    F.batch_norm,
    F.interpolate,
    F.multi_head_attention_forward,
}
#: functions that may take a parameter without doing arithmetic with it (a lookup, a view)
VIEWS = {
    "__getitem__",
    "expand",
    "expand_as",
    "view",
    "reshape",
    "permute",
    "transpose",
    "flatten",
    "unsqueeze",
    "squeeze",
    "contiguous",
    "to",
    "float",
    "double",
    "half",
    "type",
    "type_as",
    "clone",
    "detach",
    "index_select",
    "gather",
    "repeat",
    "size",
    "dim",
    "numel",
    "__get__",
    "shape",
}
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
    if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.Softmax)):
        return _norm_cost(m, x, y)
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
    if isinstance(m, FREE) or type(m).__name__ in ZERO_COST:
        return fm.Cost(_shape(y)), "free"
    return None


def _last_axis(shape: tuple[int, ...], dim: int) -> tuple[int, ...]:
    """``shape`` with axis ``dim`` moved last (a softmax costs the same per row on any axis)."""
    if dim in (-1, len(shape) - 1):
        return shape
    return (*shape[:dim], *shape[dim + 1 :], shape[dim])


def _norm_cost(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[fm.Cost, str]:
    """Layer norm, group norm and softmax modules."""
    if isinstance(m, nn.LayerNorm):
        n = fm._numel(m.normalized_shape)
        return fm.layernorm(_shape(x), n, m.weight is not None), "layernorm"
    if isinstance(m, nn.GroupNorm):
        shape = _shape(x)
        n = fm._numel(shape[1:]) // m.num_groups
        return fm.layernorm(shape, n, m.affine, 2 * m.num_channels if m.affine else 0), "layernorm"
    return fm.softmax(_last_axis(_shape(y), m.dim if m.dim is not None else -1)), "softmax"


def einsum_cost(equation: str, operands: list[torch.Tensor], out: torch.Tensor) -> fm.Cost | None:
    """A two-operand ``torch.einsum``: every output element sums products over the letters
    that do not appear in the output, so MACs = the product of every letter's size (None for
    another number of operands or an ellipsis)."""
    spec = equation.replace(" ", "")
    if "..." in spec or "->" not in spec or len(operands) != 2:
        return None
    ins, result = spec.split("->")
    sizes: dict[str, int] = {}
    for letters, t in zip(ins.split(","), operands, strict=True):
        sizes.update(zip(letters, t.shape, strict=True))
    k = fm._numel([v for c, v in sizes.items() if c not in result])
    n = out.numel()
    mem = sum(t.numel() for t in operands) + n
    return fm.Cost(tuple(out.shape), 0, n * k, n * (2 * k - 1), mem)


def _norm_function_cost(func, args, kwargs, out) -> list[tuple[fm.Cost, str, str, int]]:
    """An L2 norm (n squares, n - 1 additions, a square root per row of n: n MACs, 2n FLOPs)
    or ``F.normalize`` (the norm, then n divisions: n MACs, 3n FLOPs per row); other p-norms
    have no formula here."""
    x = args[0]
    p = kwargs.get("p", kwargs.get("ord", args[1] if len(args) > 1 else 2))
    if not isinstance(x, torch.Tensor) or p not in (2, 2.0, "fro", None):
        return []
    n = x.numel()
    per = 3 if func is F.normalize else 2
    cost = fm.Cost(tuple(out.shape), 0, n, per * n, n + out.numel())
    return [(cost, getattr(func, "__name__", "norm"), "normalize", 0)]


def attention_costs(m: nn.MultiheadAttention, args: tuple, kwargs: dict) -> dict[str, fm.Cost]:
    """Price one call of ``nn.MultiheadAttention`` from its query and key tensors."""
    q = args[0] if args else kwargs["query"]
    k = args[1] if len(args) > 1 else kwargs.get("key", q)
    seq = 1 if (m.batch_first and q.dim() == 3) else 0
    batch = q.shape[1 - seq] if q.dim() == 3 else 1
    return fm.attention(
        q.shape[seq],
        m.embed_dim,
        m.num_heads,
        k.shape[seq],
        m.kdim,
        m.vdim,
        m.in_proj_bias is not None,
        batch,
    )


def function_costs(func, args: tuple, kwargs: dict, out) -> list[tuple[fm.Cost, str, str, int]]:
    """(cost, op, category, bias MACs) of a transformer's function written in a ``forward``:
    matrix products, ``F.linear``, ``F.conv2d``, softmax, layer norm and scaled dot-product
    attention. Empty when ``func`` is none of them."""
    if func in MATMUL:
        a, b = args[0], args[1]
        k = a.shape[-1]
        batch = out.numel() // max(1, out.shape[-1] * (out.shape[-2] if out.dim() > 1 else 1))
        m = out.shape[-2] if out.dim() > 1 else 1
        return [(fm.matmul(m, k, out.shape[-1], batch), "matmul", "matmul", 0)]
    if func is F.linear:
        w, b = args[1], args[2] if len(args) > 2 else kwargs.get("bias")
        rows = out.numel() // w.shape[0]
        cost = fm.linear(w.shape[1], w.shape[0], b is not None, rows)
        return [(cost, "linear", "linear", out.numel() if b is not None else 0)]
    if func is F.conv2d:
        x, w = args[0], args[1]
        b = args[2] if len(args) > 2 else kwargs.get("bias")
        k, n = w[0].numel(), out.numel()  # dot-product length, outputs
        extra = n if b is not None else 0
        mem = x.numel() + w.numel() + n
        cost = fm.Cost(tuple(out.shape), 0, n * k + extra, n * (2 * k - 1) + extra, mem)
        return [(cost, "conv2d", "conv", extra)]
    if func in SOFTMAX:
        dim = args[1] if len(args) > 1 else kwargs.get("dim", -1)
        return [(fm.softmax(_last_axis(tuple(out.shape), dim)), "softmax", "softmax", 0)]
    if func in NORMS:
        return _norm_function_cost(func, args, kwargs, out)
    if func is torch.einsum:
        operands = (
            list(args[1]) if len(args) == 2 and isinstance(args[1], list | tuple) else args[1:]
        )
        cost = einsum_cost(args[0], list(operands), out)
        return [(cost, "einsum", "matmul", 0)] if cost is not None else []
    if func is F.layer_norm:
        n = fm._numel(args[1])
        affine = (len(args) > 2 and args[2] is not None) or kwargs.get("weight") is not None
        return [(fm.layernorm(tuple(out.shape), n, affine, 0), "layer_norm", "layernorm", 0)]
    if func is F.scaled_dot_product_attention:
        q, k = args[0], args[1]
        heads = fm._numel(q.shape[:-2])
        L, S, d = q.shape[-2], k.shape[-2], q.shape[-1]
        return [
            (fm.elementwise("mul", tuple(q.shape), inputs=1), "sdpa:scale", "scale", 0),
            (fm.matmul(L, d, S, heads), "sdpa:scores", "matmul", 0),
            (fm.softmax((heads, L, S)), "sdpa:softmax", "softmax", 0),
            (fm.matmul(L, S, d, heads), "sdpa:context", "matmul", 0),
        ]
    return []


class _Recorder(TorchFunctionMode):
    """Catches element-wise ops, concatenation, shuffles and a transformer's functions between
    leaf modules; names the arithmetic it has no formula for."""

    def __init__(self, counter: _Counter):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        c = self.counter
        if c.leaf_depth == 0 and isinstance(out, torch.Tensor):
            priced = function_costs(func, args, kwargs, out) or self._elementwise(
                func, args, kwargs, out
            )
            for cost, op, category, bias in priced:
                c.add(cost, op, category)
                c.rows[-1]["bias_macs"] = bias
            if not priced:
                c.check_unpriced(func, args)
        return out

    def _elementwise(self, func, args, kwargs, out) -> list[tuple[fm.Cost, str, str, int]]:
        shape = tuple(out.shape)
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        full = sum(1 for a in tensors if a.numel() == out.numel()) or 1
        if func in ADD and len(args) > 1:
            return [(fm.elementwise("add", shape, full), "add", "residual-add", 0)]
        if func in MUL and len(args) > 1:
            return [(fm.elementwise("mul", shape, full), "mul", "se-multiply", 0)]
        if func is torch.cat:
            return [(fm.data_movement("cat", shape), "cat", "concat", 0)]
        if func is torch.Tensor.contiguous and not args[0].is_contiguous():
            return [(fm.data_movement("shuffle", shape), "contiguous", "shuffle", 0)]
        if func in ACT_FUNCS:
            kind = ACT_FUNCS[func]
            if kind == "GELU" and kwargs.get("approximate", "none") == "tanh":
                kind = "GELU-tanh"
            return [(fm.activation(kind, shape), kind, "activation", 0)]
        if func in (F.adaptive_avg_pool2d, torch.mean, torch.Tensor.mean) and args[0].dim() == 4:
            x = args[0]
            out_hw = tuple(shape[-2:]) if out.dim() == 4 else (1, 1)
            window = x.shape[-2] * x.shape[-1] // max(1, out_hw[0] * out_hw[1])
            return [(fm.pool2d("avg", tuple(x.shape), out_hw, window), "mean", "pool", 0)]
        return []


class _Counter:
    def __init__(self, model: nn.Module):
        self.rows: list[dict] = []
        self.stack: list[str] = []
        self.leaf_depth = 0
        self.unknown: list[str] = []
        self.names = {m: n for n, m in model.named_modules()}
        self.params = {id(p) for p in model.parameters()}

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

    def name_unknown(self, what: str) -> None:
        if what not in self.unknown:
            self.unknown.append(what)

    def check_unpriced(self, func, args) -> None:
        """Name an arithmetic function without a formula, or one that was handed a parameter
        (a weight used in arithmetic we do not price); views and lookups are fine."""
        fname = getattr(func, "__name__", str(func))
        where = self.stack[-1] if self.stack else "(model)"
        if func in UNPRICED:
            self.name_unknown(f"{where} ({fname}: no formula)")
        elif fname not in VIEWS and any(
            isinstance(a, nn.Parameter) and id(a) in self.params for a in args
        ):
            self.name_unknown(f"{where} ({fname} on a parameter: no formula)")

    @staticmethod
    def _opaque(m: nn.Module) -> bool:
        """Modules priced as one unit (their insides are not looked at)."""
        return isinstance(m, nn.MultiheadAttention)

    def _is_leaf(self, m: nn.Module) -> bool:
        return not list(m.children()) or self._opaque(m)

    def pre(self, m, inputs):
        self.stack.append(self.names[m])
        if self._is_leaf(m):
            self.leaf_depth += 1

    def post(self, m, args, kwargs, output):
        self.stack.pop()
        if not self._is_leaf(m):
            return
        self.leaf_depth -= 1
        if self.leaf_depth > 0:  # inside a unit priced as a whole (attention)
            return
        if self._opaque(m):
            for step, cost in attention_costs(m, args, kwargs).items():
                category = {"scale": "scale", "softmax": "softmax"}.get(step, "matmul")
                category = "linear" if "projection" in step else category
                self.add(cost, step, category, f"{self.names[m]}:{step}")
                if category == "linear" and m.in_proj_bias is not None:
                    self.rows[-1]["bias_macs"] = fm._numel(cost.out_shape)
            return
        self._price_leaf(m, args[0] if args else None, output)

    def _price_leaf(self, m: nn.Module, x, output) -> None:
        if not isinstance(x, torch.Tensor) or not isinstance(output, torch.Tensor):
            return
        priced = module_cost(m, x, output)
        if priced is None:
            own = sum(p.numel() for p in m.parameters(recurse=False))
            self.name_unknown(f"{self.names[m]} ({type(m).__name__})")
            priced = (fm.Cost(tuple(output.shape), own), "unknown")
        cost, category = priced
        self.add(cost, type(m).__name__, category, self.names[m], x.numel())
        if category in ("conv", "linear") and getattr(m, "bias", None) is not None:
            self.rows[-1]["bias_macs"] = output.numel()


def count_layers(
    model: nn.Module, input_size: tuple[int, ...] = (3, 224, 224), batch: int = 1
) -> pd.DataFrame:
    """One row per priced layer or op, in execution order; ``df.attrs['total']`` sums them.

    Columns: name, type, category (conv, linear, matmul, batchnorm, layernorm, normalize,
    relu-family, activation, softmax, scale, pool, residual-add, se-multiply, concat, shuffle, free,
    unknown), out_shape, params, macs, bias_macs, flops, mem (elements), in_numel, out_numel.
    What we cannot price (a leaf module we do not know, an arithmetic function without a
    formula, a parameter used in one) is listed in ``df.attrs['unknown']`` and warned about,
    never silently 0.
    """
    counter = _Counter(model)
    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(counter.pre))
        handles.append(m.register_forward_hook(counter.post, with_kwargs=True))
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
            f"modules and functions the analytic counter cannot price (counted as 0): "
            f"{counter.unknown}",
            stacklevel=2,
        )
    return df


def by_category(df: pd.DataFrame) -> pd.DataFrame:
    """MACs, FLOPs and memory access per layer category, with shares of the total."""
    g = df.groupby("category")[["macs", "flops", "mem", "params"]].sum()
    g["macs %"] = (100 * g.macs / max(1, g.macs.sum())).round(1)
    g["mem %"] = (100 * g.mem / max(1, g.mem.sum())).round(1)
    return g.sort_values("macs", ascending=False)


def peak_activation(df: pd.DataFrame, bytes_per_element: int = 4) -> dict:
    """The module whose input and output together are the largest (both must be held while it
    runs): the peak activation memory of a plain chain (:func:`.formulas.peak_activation`),
    a lower bound when skip connections keep another tensor alive. Returns its name, type,
    input and output elements, their sum and the bytes at ``bytes_per_element``."""
    rows = df[df.in_numel > 0]
    if rows.empty:
        raise ValueError("no module with an input in this table")
    both = rows.in_numel + rows.out_numel
    r = rows.loc[both.idxmax()]
    n = int(r.in_numel + r.out_numel)
    return {
        "name": r["name"],
        "type": r["type"],
        "input": int(r.in_numel),
        "output": int(r.out_numel),
        "elements": n,
        "bytes": n * bytes_per_element,
    }


def multiply_adds(df: pd.DataFrame) -> int:
    """The multiply-adds of the convolutions, linear layers and matrix products of a
    :func:`count_layers` table, biases left out: what torchvision's published operation
    counts (``weights.meta["_ops"]``, its "GFLOPS") and ``FlopCounterMode`` / 2 count."""
    rows = df[df.category.isin(["conv", "linear", "matmul"])]
    return int((rows.macs - rows.bias_macs).sum())
