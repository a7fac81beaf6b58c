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
    """TorchScript-based export (dynamic batch) of an eval-mode CPU copy of ``model`` into a
    new file ``path`` (an existing file is refused, never overwritten)."""
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
