"""Affine (asymmetric) int8 quantization of one tensor, written out so a chapter can check it.

ONNX Runtime's static quantization (:func:`trashkit.compress.quantize_int8`) stores every
activation as ``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` and reads it back as
``x_hat = (q - zero_point) * scale``, with ``scale`` and ``zero_point`` chosen from the range
``[lo, hi]`` seen on calibration images. The functions here follow the same rules as ONNX
Runtime's ``quant_utils.compute_scale_zp`` (the range always includes 0, NumPy rounding), so
the toy computed by hand in chapter 7 is the formula the deployed model uses.
"""

from __future__ import annotations

import numpy as np

UINT8 = (0, 255)  # ONNX Runtime's activations (QUInt8)
INT8 = (-128, 127)  # its weights (QInt8)


def affine_params(lo: float, hi: float, qmin: int = 0, qmax: int = 255) -> tuple[float, int]:
    """``(scale, zero_point)`` that map the real range ``[lo, hi]`` onto ``[qmin, qmax]``.

    Why the range is widened to include 0: zero (padding, ReLU outputs) must be represented
    exactly, as the integer ``zero_point``.
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / (qmax - qmin)
    if scale == 0.0:
        return 1.0, 0
    return scale, int(np.clip(np.round(qmin - lo / scale), qmin, qmax))


def quantize(x, scale: float, zero_point: int, qmin: int = 0, qmax: int = 255) -> np.ndarray:
    """Integers ``clamp(round(x / scale) + zero_point, qmin, qmax)``."""
    return np.clip(np.round(np.asarray(x, np.float64) / scale) + zero_point, qmin, qmax).astype(
        np.int64
    )


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    """Back to real numbers: ``(q - zero_point) * scale``."""
    return (np.asarray(q, np.int64) - zero_point) * scale


def round_trip(x, qmin: int = 0, qmax: int = 255) -> dict:
    """Quantize one tensor with its own range and read it back; the worst error is at most
    ``scale / 2`` inside the range (rounding to the nearest step)."""
    x = np.asarray(x, np.float64)
    scale, zp = affine_params(x.min(), x.max(), qmin, qmax)
    q = quantize(x, scale, zp, qmin, qmax)
    back = dequantize(q, scale, zp)
    return {
        "scale": scale,
        "zero_point": zp,
        "q": q,
        "dequantized": back,
        "max_error": float(np.abs(back - x).max()),
    }
