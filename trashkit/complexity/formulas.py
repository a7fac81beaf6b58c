"""Hand-checkable cost formulas, one per layer type: the heart of chapter 2.

The counting rules (the same everywhere in trashkit; chapter 2 states them as a table):

* **FLOPs** count every elementary operation on one number: an addition, subtraction,
  multiplication, division or comparison (``max``/``min``) is 1 FLOP, and so is one
  evaluation of ``exp``, ``erf`` or ``tanh`` (really tens of instructions; counted once so the
  rule stays checkable by hand). A dot product of length n is n multiplications plus n - 1
  additions = 2n - 1 FLOPs.
* **MACs** (multiply-accumulates) count the *multiplications*: a multiply followed by an add
  into a running sum is one MAC, and a multiplication on its own (BN's scale, the SE scale,
  the two multiplies of hardswish, average pooling's 1/window) is one MAC too. Additions,
  comparisons, divisions and ``exp``/``erf``/``tanh`` count 0 MACs. One exception, taken from
  ptflops so our numbers line up with the competition's: a convolution's or linear layer's
  **bias** counts 1 MAC per output (and 1 FLOP).
* **mem** (memory access cost, ShuffleNet V2's "MAC" - renamed to avoid the clash) counts
  elements read and written: inputs + parameters + outputs. For a 1x1 convolution on an
  h x w map that is ``hw(c1 + c2) + c1 c2`` (:func:`mem_1x1`). Multiply by the element size
  for bytes.

Hence FLOPs = 2 MACs - (number of dot products) for a bias-free convolution or linear layer:
"MACs ~ FLOPs / 2" holds when the dot products are long, not for a 3x3 matrix-vector product
(9 MACs, 15 FLOPs). Every function returns a :class:`Cost`; batch multiplies MACs, FLOPs and
activations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cost:
    """The cost of one layer for one forward pass."""

    out_shape: tuple[int, ...]
    params: int = 0
    macs: int = 0
    flops: int = 0
    mem: int = 0
    note: str = field(default="", compare=False)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _pair(v: int | tuple) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis (PyTorch's formula)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv2d(
    cin: int,
    cout: int,
    h: int,
    w: int,
    kernel: int | tuple = 3,
    stride: int | tuple = 1,
    padding: int | tuple = 0,
    dilation: int | tuple = 1,
    groups: int = 1,
    bias: bool = False,
    batch: int = 1,
) -> Cost:
    """Standard, depthwise (groups = cin) or group convolution.

    Each output element is a dot product of length ``K = cin/groups * kh * kw``:
    MACs = outputs * K (+ outputs for a bias), FLOPs = outputs * (2K - 1) (+ outputs).
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel, stride, padding, dilation))
    if cin % groups or cout % groups:
        raise ValueError(f"groups={groups} must divide cin={cin} and cout={cout}")
    ho, wo = conv_out(h, kh, sh, ph, dh), conv_out(w, kw, sw, pw, dw)
    k = cin // groups * kh * kw
    outputs = batch * cout * ho * wo
    params = cout * k + (cout if bias else 0)
    return Cost(
        (batch, cout, ho, wo),
        params,
        outputs * k + (outputs if bias else 0),
        outputs * (2 * k - 1) + (outputs if bias else 0),
        batch * cin * h * w + params + outputs,
    )


def linear(fin: int, fout: int, bias: bool = True, batch: int = 1) -> Cost:
    """A fully connected layer: a dot product of length ``fin`` per output."""
    outputs = batch * fout
    params = fin * fout + (fout if bias else 0)
    return Cost(
        (batch, fout),
        params,
        outputs * fin + (outputs if bias else 0),
        outputs * (2 * fin - 1) + (outputs if bias else 0),
        batch * fin + params + outputs,
    )


def matvec(rows: int, cols: int) -> Cost:
    """A ``rows x cols`` matrix times a ``cols``-vector: the first worked example."""
    return Cost((rows,), 0, rows * cols, rows * (2 * cols - 1), rows * cols + cols + rows)


def dot(n: int) -> Cost:
    """A dot product of length n: n MACs, n multiplications + (n - 1) additions."""
    return Cost((), 0, n, 2 * n - 1, 2 * n + 1)


def batchnorm(shape: tuple[int, ...], affine: bool = True) -> Cost:
    """Inference-time BN folds to one scale and one shift per element, y = a*x + b:
    1 MAC, 2 FLOPs. (ptflops, and so the official count, charges 2 MACs per element.)"""
    n = _numel(shape)
    c = shape[1]
    params = 2 * c if affine else 0
    return Cost(tuple(shape), params, n, 2 * n, 2 * n + 4 * c)


#: Element-wise activations: (formula, the operations one element costs). MACs per element =
#: the number of "mul"; FLOPs per element = the number of operations. Both are derived from
#: this one list, so the chapter's table and the counts cannot disagree.
ACTIVATION_OPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ReLU": ("max(x, 0)", ("cmp",)),
    "ReLU6": ("min(max(x, 0), 6)", ("cmp", "cmp")),
    "LeakyReLU": ("x if x > 0 else a*x", ("cmp", "mul")),
    "PReLU": ("x if x > 0 else a*x (a learned)", ("cmp", "mul")),
    "ELU": ("x if x > 0 else a*(exp(x) - 1)", ("cmp", "exp", "sub", "mul")),
    "Sigmoid": ("1 / (1 + exp(-x))", ("exp", "add", "div")),
    "Hardsigmoid": ("relu6(x + 3) * (1/6)", ("add", "cmp", "cmp", "mul")),
    "Hardswish": ("x * relu6(x + 3) * (1/6)", ("add", "cmp", "cmp", "mul", "mul")),
    "SiLU": ("x * sigmoid(x)", ("exp", "add", "div", "mul")),
    "Tanh": ("tanh(x)", ("tanh",)),
    "GELU": ("x * 0.5 * (1 + erf(x * (1/sqrt 2)))", ("mul", "erf", "add", "mul", "mul")),
    "GELU-tanh": (
        "0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))",
        ("mul", "mul", "mul", "add", "mul", "tanh", "add", "mul", "mul"),
    ),
}

#: (MACs per element, FLOPs per element, formula) of each activation, from ACTIVATION_OPS
ACTIVATIONS: dict[str, tuple[int, int, str]] = {
    kind: (ops.count("mul"), len(ops), f"{how}: {', '.join(ops)}")
    for kind, (how, ops) in ACTIVATION_OPS.items()
}


def activation(kind: str, shape: tuple[int, ...]) -> Cost:
    """An element-wise non-linearity; see :data:`ACTIVATION_OPS` for the per-element counts."""
    if kind not in ACTIVATIONS:
        raise KeyError(f"unknown activation {kind!r}; known: {sorted(ACTIVATIONS)}")
    m, f, how = ACTIVATIONS[kind]
    n = _numel(shape)
    return Cost(tuple(shape), 0, m * n, f * n, 2 * n, how)


def pool2d(kind: str, shape: tuple[int, ...], out_hw: tuple[int, int], window: int) -> Cost:
    """Max or average pooling with ``window`` inputs per output.

    Max: window - 1 comparisons per output, no MACs. Average: window - 1 additions and one
    multiply by 1/window per output (1 MAC). Global average pooling is window = H * W.
    """
    b, c = shape[0], shape[1]
    outputs = b * c * out_hw[0] * out_hw[1]
    macs = outputs if kind == "avg" else 0
    flops = outputs * (window - 1) + (outputs if kind == "avg" else 0)
    return Cost((b, c, *out_hw), 0, macs, flops, _numel(shape) + outputs)


def elementwise(kind: str, shape: tuple[int, ...], inputs: int = 2) -> Cost:
    """Residual add (0 MACs, 1 FLOP per element) or multiply (the SE scale: 1 MAC each).

    Memory: every input is read once and the result written once; a broadcast input (the SE
    vector) is small, so pass ``inputs`` = the number of full-size inputs.
    """
    n = _numel(shape)
    per = 1 if kind == "mul" else 0
    return Cost(tuple(shape), 0, per * n, n, inputs * n + n)


def data_movement(kind: str, shape: tuple[int, ...]) -> Cost:
    """Concatenation or channel shuffle: no arithmetic at all, but every element moves."""
    n = _numel(shape)
    return Cost(tuple(shape), 0, 0, 0, 2 * n, f"{kind}: reads and writes every element")


def squeeze_excite(c: int, squeeze: int, h: int, w: int, batch: int = 1) -> dict[str, Cost]:
    """The SE block of MobileNetV3 (torchvision): pool -> 1x1 conv -> ReLU -> 1x1 conv ->
    Hardsigmoid -> channel-wise multiply. Returned per step so the reader can add it up."""
    shape = (batch, c, h, w)
    return {
        "avgpool": pool2d("avg", shape, (1, 1), h * w),
        "fc1": conv2d(c, squeeze, 1, 1, 1, bias=True, batch=batch),
        "relu": activation("ReLU", (batch, squeeze, 1, 1)),
        "fc2": conv2d(squeeze, c, 1, 1, 1, bias=True, batch=batch),
        "hardsigmoid": activation("Hardsigmoid", (batch, c, 1, 1)),
        "scale": elementwise("mul", shape, inputs=1),
    }


def total(costs) -> Cost:
    """Sum of several costs (out_shape of the last)."""
    costs = list(costs.values()) if isinstance(costs, dict) else list(costs)
    return Cost(
        costs[-1].out_shape,
        sum(c.params for c in costs),
        sum(c.macs for c in costs),
        sum(c.flops for c in costs),
        sum(c.mem for c in costs),
    )


def mem_1x1(h: int, w: int, c1: int, c2: int, groups: int = 1) -> int:
    """ShuffleNet V2's memory access cost of a 1x1 convolution, batch 1, no bias:
    read the input (hw c1), write the output (hw c2), read the weights (c1 c2 / g)."""
    return h * w * (c1 + c2) + c1 * c2 // groups


def mem_lower_bound(h: int, w: int, flops: float) -> float:
    """The paper's bound for a 1x1 conv with ``flops`` = B = hw c1 c2 multiply-adds:
    MAC >= 2 sqrt(hw B) + B / (hw), reached when c1 = c2 (AM-GM on c1 + c2)."""
    return 2 * math.sqrt(h * w * flops) + flops / (h * w)


# --- transformers: matrix products, softmax, layer norm, attention ---------------------------


def matmul(m: int, k: int, n: int, batch: int = 1) -> Cost:
    """``batch`` products of an ``m x k`` by a ``k x n`` matrix: every one of the m n outputs
    is a dot product of length k (k MACs, 2k - 1 FLOPs); mem reads both and writes the result."""
    outputs = batch * m * n
    return Cost(
        (batch, m, n), 0, outputs * k, outputs * (2 * k - 1), batch * (m * k + k * n + m * n)
    )


def softmax(shape: tuple[int, ...]) -> Cost:
    """Softmax over the last axis of length n, computed the stable way: the row's max (n - 1
    comparisons), x - max (n), exp (n), their sum (n - 1 additions), one division each (n):
    5n - 2 FLOPs per row and 0 MACs (no multiplication)."""
    n, rows = int(shape[-1]), _numel(shape[:-1])
    return Cost(tuple(shape), 0, 0, rows * (5 * n - 2), 2 * rows * n)


def layernorm(
    shape: tuple[int, ...], n: int, affine: bool = True, params: int | None = None
) -> Cost:
    """Layer norm over groups of ``n`` elements (the last axis for ``nn.LayerNorm``; one group
    of C/G channels x H x W for ``nn.GroupNorm``). Unlike batch norm it cannot be folded: its
    statistics are computed for every input. Per group of n:

    mean       n - 1 additions, 1 multiply by 1/n           1 MAC,      n FLOPs
    centre     x - mean                                     0 MACs,     n FLOPs
    variance   n squares, n - 1 additions, 1 multiply       n + 1 MACs, 2n FLOPs
    1/std      + eps, sqrt, 1 / ...                         0 MACs,     3 FLOPs
    normalise  centred x times 1/std                        n MACs,     n FLOPs
    affine     gamma * x + beta (if affine)                 n MACs,     2n FLOPs

    = 3n + 2 MACs and 7n + 3 FLOPs per group with the affine step (2n + 2 and 5n + 3 without).
    ``params`` defaults to layer norm's 2n (gamma and beta); group norm passes its 2C.
    """
    total_n = _numel(shape)
    groups = total_n // n
    macs = groups * (2 * n + 2 + (n if affine else 0))
    flops = groups * (5 * n + 3 + (2 * n if affine else 0))
    params = (2 * n if affine else 0) if params is None else params
    return Cost(tuple(shape), params, macs, flops, 2 * total_n + params)


def attention(
    tokens: int,
    dim: int,
    heads: int,
    kv_tokens: int | None = None,
    kdim: int | None = None,
    vdim: int | None = None,
    bias: bool = True,
    batch: int = 1,
) -> dict[str, Cost]:
    """Multi-head attention (``nn.MultiheadAttention``), step by step.

    ``tokens`` queries attend to ``kv_tokens`` keys (self-attention: the same); ``dim`` is the
    embedding E, split into ``heads`` heads of d = E / heads. The projections are linear
    layers on every token; the scores Q K^T are one L x d by d x S product per head (L S E
    MACs over all heads), the context softmax(.) V one L x S by S x d product per head (L S E
    MACs again); the queries are scaled by 1/sqrt(d) (1 MAC each).
    """
    if dim % heads:
        raise ValueError(f"heads={heads} must divide the embedding dim={dim}")
    s = tokens if kv_tokens is None else kv_tokens
    d = dim // heads
    b = batch
    return {
        "q projection": linear(dim, dim, bias, b * tokens),
        "k projection": linear(kdim or dim, dim, bias, b * s),
        "v projection": linear(vdim or dim, dim, bias, b * s),
        "scale": elementwise("mul", (b, tokens, dim), inputs=1),
        "scores QK^T": matmul(tokens, d, s, b * heads),
        "softmax": softmax((b * heads, tokens, s)),
        "context AV": matmul(tokens, s, d, b * heads),
        "out projection": linear(dim, dim, bias, b * tokens),
    }


# --- where a layer sits on the roofline, and the activation memory it needs ------------------


def arithmetic_intensity(cost: Cost, bytes_per_element: int = 4) -> float:
    """MACs per byte moved (``cost.mem`` elements of ``bytes_per_element`` bytes each)."""
    return cost.macs / max(1, cost.mem * bytes_per_element)


def roofline(intensity: float, peak: float, bandwidth: float) -> float:
    """The roofline model: the MAC rate a layer of ``intensity`` MACs/byte can reach on a
    machine that does at most ``peak`` MACs/s and moves at most ``bandwidth`` bytes/s:
    min(peak, intensity x bandwidth). Below the ridge point peak / bandwidth the layer is
    memory-bound, above it compute-bound."""
    return min(peak, intensity * bandwidth)


def peak_activation(shapes: list[tuple[int, ...]]) -> tuple[int, int]:
    """Peak activation memory of a plain chain of layers, in elements: layer i reads
    ``shapes[i]`` and writes ``shapes[i + 1]``, and both must be held while it runs, so the
    peak is max_i (|x_i| + |x_{i+1}|). Returns (peak, index of the layer that reaches it).
    With skip connections a saved tensor is alive too: then this is a lower bound."""
    sizes = [_numel(s) for s in shapes]
    pairs = [sizes[i] + sizes[i + 1] for i in range(len(sizes) - 1)]
    i = max(range(len(pairs)), key=pairs.__getitem__)
    return pairs[i], i
