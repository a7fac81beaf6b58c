"""ONNX submissions: what is checked before anything runs, and the graph at the input size.

An ONNX file is data, but a runtime may still be told to read other files (external data),
load code (custom operator domains, model-local functions) or loop for ever (``Loop``,
``If``, ``Scan``). So a submission must be one self-contained file, use only operators of
the standard domain on :data:`ALLOWED_OPS`, pass ``onnx.checker``, and pass strict shape
inference at the competition's input size, which also fixes every shape :mod:`.macs_onnx`
needs. Input: float32 ``N x 3 x S x S`` (RGB, normalised like trashkit's pipeline); output:
one logit per class of the rules, in the rules' order.
"""

from __future__ import annotations

import copy
import json

import onnx
from onnx import TensorProto

from .errors import Refused
from .rules import Rules

#: standard-domain operators a small image classifier needs (QDQ int8 included); nothing that
#: loops, branches, reads files or calls custom code
ALLOWED_OPS = frozenset(
    """Abs Add AveragePool BatchNormalization Cast Clip Concat Constant ConstantOfShape Conv
    DequantizeLinear Div Dropout Elu Equal Erf Exp Expand Flatten Gather Gemm GlobalAveragePool
    GlobalMaxPool HardSigmoid HardSwish Identity LeakyRelu LogSoftmax MatMul Max MaxPool Mean Min
    Mul Neg Pad Pow PRelu QuantizeLinear Reciprocal ReduceMax ReduceMean ReduceSum Relu Reshape
    Resize Selu Shape Sigmoid Slice Softmax Softplus Split Sqrt Squeeze Sub Sum Tanh Tile
    Transpose Unsqueeze Where""".split()
)
CONTROL_FLOW = ("Loop", "If", "Scan")
STANDARD_DOMAINS = ("", "ai.onnx")


def _tensors(model: onnx.ModelProto):
    """Every tensor stored in the graph: initializers and Constant nodes' values."""
    yield from model.graph.initializer
    for sparse in model.graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t
            yield from attr.tensors


def check_contents(model: onnx.ModelProto) -> None:
    """One file, standard operators only, no control flow, no local functions."""
    for t in _tensors(model):
        if t.data_location == TensorProto.EXTERNAL or len(t.external_data):
            raise Refused(
                f"tensor {t.name!r} keeps its data in an external file; export everything "
                "into the one .onnx file (onnx.save(..., save_as_external_data=False))"
            )
    if len(model.functions):
        raise Refused("the file defines its own functions (custom operators); not allowed")
    for opset in model.opset_import:
        if opset.domain not in STANDARD_DOMAINS:
            raise Refused(
                f"operator domain {opset.domain!r} is not the standard ONNX domain; custom "
                "operators cannot run on the server"
            )
    for node in model.graph.node:
        if node.domain not in STANDARD_DOMAINS:
            raise Refused(f"node {node.name!r} uses custom operator {node.domain}.{node.op_type}")
        if node.op_type in CONTROL_FLOW:
            raise Refused(
                f"node {node.name!r} is a {node.op_type} (control flow); one forward pass "
                "without loops or branches is required"
            )
        if node.op_type not in ALLOWED_OPS:
            raise Refused(
                f"operator {node.op_type} (node {node.name!r}) is not on the server's "
                f"allow-list: {' '.join(sorted(ALLOWED_OPS))}"
            )


def _input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    """The one real input (graph inputs that are not initializers)."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise Refused(
            f"the model must have one input and one output, found {len(inputs)} and "
            f"{len(model.graph.output)}"
        )
    return inputs[0]


def input_size(model: onnx.ModelProto, rules: Rules) -> int:
    """The square input side the model declares (or the rules' size for a dynamic one)."""
    inp = _input(model)
    tensor = inp.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if tensor.elem_type != TensorProto.FLOAT or len(dims) != 4 or dims[1] not in (3, None):
        raise Refused(
            f"input {inp.name!r} must be float32 N x 3 x S x S, got "
            f"{onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)} {dims}"
        )
    h, w = dims[2], dims[3]
    if h is None and w is None and rules.input_size is not None:
        return rules.input_size
    if h is None or w is None or h != w:
        raise Refused(
            f"input {inp.name!r} must be square with a fixed size (or dynamic when the rules "
            f"fix input_size), got height {h} and width {w}"
        )
    problem = rules.size_problem(h)
    if problem:
        raise Refused(f"ONNX input size: {problem}")
    return h


def at_input_size(model: onnx.ModelProto, size: int) -> onnx.ModelProto:
    """A copy with input ``1 x 3 x size x size`` and every shape inferred strictly."""
    fixed = copy.deepcopy(model)
    dims = _input(fixed).type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, 3, size, size)):
        dim.ClearField("dim_param")
        dim.dim_value = value
    del fixed.graph.value_info[:]
    try:
        return onnx.shape_inference.infer_shapes(
            fixed, check_type=True, strict_mode=True, data_prop=True
        )
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise Refused(f"shape inference at {size} x {size} px failed: {first}") from None


def check_output(model: onnx.ModelProto, rules: Rules) -> None:
    """The output must be one logit per class of the rules (batch 1 after inference)."""
    out = model.graph.output[0].type.tensor_type.shape.dim
    dims = [d.dim_value if d.HasField("dim_value") else None for d in out]
    if dims != [1, len(rules.classes)]:
        raise Refused(
            f"the output must be 1 x {len(rules.classes)} logits (one per class: "
            f"{', '.join(rules.classes)}), shape inference gives {dims}"
        )
    meta = {p.key: p.value for p in model.metadata_props}
    if "classes" in meta:
        try:
            named = json.loads(meta["classes"])
        except json.JSONDecodeError:
            named = [c.strip() for c in meta["classes"].split(",")]
        if list(named) != list(rules.classes):
            raise Refused(
                f"the file's metadata names classes {named}; the output must follow the "
                f"rules' order {rules.classes}"
            )


def load_onnx(data: bytes) -> onnx.ModelProto:
    """Parse an ONNX file from bytes (never from a path: no external data can be pulled)."""
    try:
        return onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises its own DecodeError and friends
        raise Refused(f"not a readable ONNX file ({type(exc).__name__})") from None


def check_onnx(data: bytes, rules: Rules) -> int:
    """Every ONNX check, cheapest first; returns the input size the model is scored at."""
    model = load_onnx(data)
    check_contents(model)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise Refused(f"onnx.checker refused the file: {first}") from None
    size = input_size(model, rules)
    check_output(at_input_size(model, size), rules)
    return size
