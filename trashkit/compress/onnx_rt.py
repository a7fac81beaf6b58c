"""ONNX export, ONNX Runtime inference and int8 static quantization with calibration."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn


def _new_file(path: Path, write) -> Path:
    """Call ``write(tmp)`` then move the result to ``path``, which must not exist: an earlier
    export is never overwritten (FileExistsError), a crash leaves no half-written file."""
    if path.exists():
        raise FileExistsError(f"{path} already exists; export to a new file name")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.link(tmp, path)  # fails if path appeared meanwhile: never replaces it
    finally:
        tmp.unlink(missing_ok=True)
    return path


def export_onnx(model: nn.Module, image_size: int, path: str | Path, opset: int = 17) -> Path:
    """TorchScript-based export (dynamic batch) of ``model`` into a new file ``path`` (an
    existing file is refused, never overwritten). The model itself is moved to the CPU and
    switched to eval mode (no copy: batch norm and dropout must export in inference form)."""
    model = model.cpu().eval()
    x = torch.zeros(1, 3, image_size, image_size)
    return _new_file(Path(path), lambda tmp: _export(model, x, tmp, opset))


def _export(model: nn.Module, x: torch.Tensor, path: Path, opset: int) -> None:
    torch.onnx.export(
        model,
        (x,),
        str(path),
        dynamo=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=opset,
    )


class OrtModel:
    """An ONNX Runtime session that behaves like a model: ``__call__(tensor) -> tensor``."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # no busy-waiting between runs: a spinning ORT pool steals the cores from whatever
        # runs next (PyTorch in a side-by-side timing, the robot's other processes)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = threads
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"input": x.detach().cpu().numpy().astype(np.float32)})
        return torch.from_numpy(out[0])


def quantize_int8(
    onnx_path: str | Path, calibration: torch.Tensor, out_path: str | Path, per_channel: bool = True
) -> Path:
    """Static int8 quantization (QDQ, x86 / AVX2-VNNI kernels) calibrated on real images,
    into a new file ``out_path`` (never overwritten).

    ``calibration`` is a normalised float batch of *training* images (never test data).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, batch: torch.Tensor):
            self.items = iter([{"input": b[None].numpy().astype(np.float32)} for b in batch])

        def get_next(self):
            return next(self.items, None)

    def write(tmp: Path) -> None:
        pre = tmp.with_name(tmp.name + ".pre.onnx")
        try:
            quant_pre_process(str(onnx_path), str(pre))
            quantize_static(
                str(pre),
                str(tmp),
                Reader(calibration),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
            )
        finally:
            pre.unlink(missing_ok=True)

    return _new_file(Path(out_path), write)


def export_example(
    model: nn.Module, example: torch.Tensor, path: str | Path, opset: int = 17
) -> Path:
    """:func:`export_onnx` for any input shape: ``example`` is one input batch (its first
    dimension is exported as dynamic); the file ``path`` must not exist yet."""
    model = model.cpu().eval()
    return _new_file(Path(path), lambda tmp: _export(model, example.cpu(), tmp, opset))


def graph_ops(path: str | Path, optimized: bool = False) -> dict[str, int]:
    """How many nodes of each operator type an ONNX file holds (most frequent first); with
    ``optimized`` the graph ONNX Runtime actually runs, after its fusions (basic and extended
    optimisations, the level that fuses QuantizeLinear / DequantizeLinear pairs into int8
    operators).

    Why: a static int8 model in the QDQ format is the float graph with QuantizeLinear /
    DequantizeLinear pairs around every quantized tensor; ONNX Runtime fuses the pairs it has
    int8 kernels for, and whatever is left runs as extra element-wise work."""
    import tempfile

    import onnx

    if optimized:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
            ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            nodes = onnx.load(opts.optimized_model_filepath).graph.node
    else:
        nodes = onnx.load(str(path)).graph.node
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def conv_stack(channels: int, depth: int = 2) -> nn.Module:
    """``depth`` dense 3x3 convolutions of ``channels`` channels with ReLUs: a layer whose
    arithmetic dwarfs its per-operator overhead once ``channels`` is large."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers).eval()


def int8_layer_study(
    channels: list[int], folder: str | Path, size: int = 28, rounds: int = 20, threads: int = 1
):
    """ONNX Runtime fp32 against static int8 on :func:`conv_stack` of each width, batch 1,
    ``threads`` threads, the two timed in turns (:func:`trashkit.complexity.interleaved_latency`).

    One row per width: MACs, fp32 and int8 median ms and the int8 speed-up. Calibration uses
    random inputs (the layer is untrained: only the timing is of interest here)."""
    import pandas as pd

    from ..complexity import interleaved_latency, official_macs

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for c in channels:
        torch.manual_seed(0)
        net, x = conv_stack(c), torch.randn(1, c, size, size)
        fp32 = export_example(net, x, folder / f"conv{c}.onnx")
        int8 = quantize_int8(fp32, torch.randn(8, c, size, size), folder / f"conv{c}.int8.onnx")
        timed = interleaved_latency(
            {"fp32": (OrtModel(fp32, threads), x), "int8": (OrtModel(int8, threads), x)},
            rounds=rounds,
        ).set_index("model")
        rows.append(
            {
                "channels": c,
                "MACs": official_macs(net, (c, size, size)),
                "fp32 ms": timed.median_ms["fp32"],
                "int8 ms": timed.median_ms["int8"],
                "int8 speed-up": timed.speedup["int8"],
            }
        )
    return pd.DataFrame(rows).set_index("channels")
