"""Multiply-adds of an ONNX graph: Conv, Gemm and MatMul, from the shapes inference gives.

Why only these three: they are where a classifier's arithmetic is, and their multiply-adds
follow from the shapes alone. This is *not* the official count (ptflops on the PyTorch
modules, :func:`trashkit.complexity.official_macs`), and on the same network the two differ
in known ways, which the tests check exactly on exported checkpoints:

* batch norm: the official count charges 2 per element of every BatchNorm; an exported
  network in eval mode has each batch norm folded into the convolution before it, so the
  ONNX graph has no batch norm to count;
* that folding gives a bias-free convolution a bias: +1 per output element here;
* pooling: the official count charges every pooling module its input size; pools do no
  multiply-adds and are not counted here (nor are activations, adds, or the SE multiply,
  which the official count does not see either).
"""

from __future__ import annotations

import math

import onnx

from .onnx_checks import at_input_size


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Static shape of every named tensor after inference (initializers included)."""
    out: dict[str, list[int]] = {t.name: list(t.dims) for t in model.graph.initializer}
    g = model.graph
    for info in list(g.input) + list(g.value_info) + list(g.output):
        dims = info.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            out[info.name] = [d.dim_value for d in dims]
    return out


def _shape(shapes: dict, name: str, node: onnx.NodeProto) -> list[int]:
    if name not in shapes:
        raise ValueError(f"{node.op_type} node {node.name!r}: shape of {name!r} unknown")
    return shapes[name]


def _has_bias(node: onnx.NodeProto) -> bool:
    return len(node.input) > 2 and node.input[2] != ""


def node_macs(node: onnx.NodeProto, shapes: dict) -> int:
    """Multiply-adds of one Conv / Gemm / MatMul node (0 for any other operator); a bias
    counts one per output element, as the official count does."""
    if node.op_type not in ("Conv", "Gemm", "MatMul"):
        return 0
    out = math.prod(_shape(shapes, node.output[0], node))
    if node.op_type == "Conv":
        weight = _shape(shapes, node.input[1], node)  # Cout x Cin/groups x kH x kW
        return out * math.prod(weight[1:]) + (out if _has_bias(node) else 0)
    a = _shape(shapes, node.input[0], node)
    trans_a = any(at.name == "transA" and at.i for at in node.attribute)
    k = a[-2] if (node.op_type == "Gemm" and trans_a) else a[-1]
    bias = out if node.op_type == "Gemm" and _has_bias(node) else 0
    return out * k + bias


def onnx_macs(model: onnx.ModelProto, image_size: int) -> dict:
    """``{"total": MACs at batch 1, "by_op": {op: MACs}}`` at ``image_size`` x ``image_size``."""
    inferred = at_input_size(model, image_size)
    shapes = _shapes(inferred)
    by_op: dict[str, int] = {}
    for node in inferred.graph.node:
        n = node_macs(node, shapes)
        if n:
            by_op[node.op_type] = by_op.get(node.op_type, 0) + n
    return {"total": sum(by_op.values()), "by_op": by_op}
