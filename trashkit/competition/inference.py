"""What runs inside the model process: predictions, MACs and the per-image time of one model.

It gets the test images only (uint8 ``N x 3 x S x S``, decoded exactly as in training by
:func:`trashkit.data.decode_resized`) and returns one predicted class per image; it never sees
a label, and it never decides a score. The MACs of a checkpoint are the official count
(:func:`trashkit.complexity.official_macs`); of an ONNX file, :func:`.macs_onnx.onnx_macs`.

Time (submit-time edition): every model, checkpoint or ONNX, runs in ONNX Runtime on the
same fixed number of threads, batch 1, one call per image after a short warm-up; the time is
the mean over all test images, and the predictions scored are those of the timed calls (one
model, one forward pass per image). A checkpoint is exported with trashkit's own
:func:`trashkit.compress.onnx_rt.export_onnx` first, so it is measured the same way.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

WARMUP = 10


def ort_session(path: str | Path, threads: int):
    """An ONNX Runtime CPU session on exactly ``threads`` threads, no spinning between calls."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _normalised(images: np.ndarray, i: int, j: int) -> np.ndarray:
    import torch

    from ..data import normalize_batch

    return normalize_batch(torch.from_numpy(np.ascontiguousarray(images[i:j]))).numpy()


def ort_predict(session, images: np.ndarray) -> tuple[np.ndarray, float]:
    """One call per image: ``(predicted class per image, mean seconds per image)``."""
    name = session.get_inputs()[0].name
    for i in range(min(WARMUP, len(images))):
        session.run(None, {name: _normalised(images, i, i + 1)})
    pred = np.empty(len(images), dtype=np.int64)
    total = 0.0
    for i in range(len(images)):
        x = _normalised(images, i, i + 1)
        t0 = time.perf_counter()
        logits = session.run(None, {name: x})[0]
        total += time.perf_counter() - t0
        pred[i] = int(np.asarray(logits).reshape(-1).argmax())
    return pred, total / max(1, len(images))


def run_checkpoint(path: str, images: np.ndarray, threads: int, timed: bool, out: Path) -> dict:
    """A trashkit checkpoint: official MACs, and predictions (timed in ONNX Runtime when the
    edition scores time, else PyTorch in batches as chapter 5 predicts)."""
    import torch

    from ..checkpoint import load_checkpoint
    from ..complexity import check_countable, official_macs
    from ..metrics import predict

    ckpt = load_checkpoint(path)
    net = ckpt.build_model("cpu")
    check_countable(net)
    macs = official_macs(net, ckpt.image_size)
    seconds = None
    if timed:
        from ..compress.onnx_rt import export_onnx

        exported = export_onnx(net, ckpt.image_size, out / "exported.onnx")
        pred, seconds = ort_predict(ort_session(exported, threads), images)
    else:
        batches = (
            (torch.from_numpy(np.ascontiguousarray(images[i : i + 64])), None)
            for i in range(0, len(images), 64)
        )
        pred = predict(net, batches).pred
    return {"pred": pred, "macs": macs, "seconds_per_image": seconds, "classes": ckpt.classes}


def run_onnx(path: str, images: np.ndarray, threads: int, size: int, classes: list) -> dict:
    """An ONNX file: graph MACs (Conv, Gemm, MatMul) and timed batch-1 predictions."""
    import onnx

    from .macs_onnx import onnx_macs

    macs = onnx_macs(onnx.load_model(path, load_external_data=False), size)["total"]
    pred, seconds = ort_predict(ort_session(path, threads), images)
    return {"pred": pred, "macs": macs, "seconds_per_image": seconds, "classes": list(classes)}


def run_job(job: dict) -> dict:
    """One job description (what :mod:`.runner` sends) -> its raw result."""
    images = np.load(job["images"], mmap_mode="r")
    out = Path(job["out"])
    if job["kind"] == "checkpoint":
        res = run_checkpoint(job["model"], images, job["threads"], job["timed"], out)
    else:
        res = run_onnx(job["model"], images, job["threads"], job["image_size"], job["classes"])
    res["pred"] = np.asarray(res["pred"]).astype(int).tolist()
    res["n"] = len(images)
    return res
