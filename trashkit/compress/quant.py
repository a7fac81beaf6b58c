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


# --- integer-only arithmetic (Jacob et al., CVPR 2018): what an int8 kernel computes ---------


def quantize_multiplier(m: float, bits: int = 31) -> tuple[int, int]:
    """A real multiplier ``0 < m < 1`` as an integer ``m0`` and a right shift: ``m ~ m0 /
    2**shift`` with ``2**(bits-1) <= m0 < 2**bits`` (31 bits: an int32 register).

    Why: an integer-only kernel cannot multiply by the real ``s_x * s_w / s_y``; it multiplies
    the int32 accumulator by ``m0`` and shifts right. Normalising ``m0`` into the top half of
    its range keeps ``bits`` significant bits, whatever the size of ``m``.
    """
    if not 0.0 < m < 1.0:
        raise ValueError(f"multiplier {m} must lie in (0, 1): scale the output range instead")
    n = 0
    while m * 2**n < 0.5:  # doublings that bring m into [0.5, 1)
        n += 1
    m0 = round(m * 2 ** (n + bits))
    if m0 == 2**bits:  # m rounded up to the next power of two
        m0, n = m0 // 2, n - 1
    return int(m0), bits + n


def requantize(
    acc, m0: int, shift: int, zero_point: int = 0, qmin: int = 0, qmax: int = 255
) -> np.ndarray:
    """An int32 accumulator to the output's integers with integer operations only:
    ``clamp(zero_point + (acc * m0 + 2**(shift-1)) >> shift)`` (round half up)."""
    acc = np.asarray(acc, np.int64)
    scaled = (acc * m0 + (1 << (shift - 1))) >> shift  # the product fits in 64 bits
    return np.clip(scaled + zero_point, qmin, qmax).astype(np.int64)


def integer_linear(
    q_x,
    x_zero: int,
    q_w,
    q_bias,
    m0: int,
    shift: int,
    y_zero: int = 0,
    qmin: int = 0,
    qmax: int = 255,
) -> tuple[np.ndarray, np.ndarray]:
    """``y = W x + b`` with integers only: ``acc = sum_k (q_x[k] - x_zero) * q_w[j, k] +
    q_bias[j]`` in int32 (weights symmetric, zero point 0; the bias stored at scale ``s_x *
    s_w``), then :func:`requantize`. Returns ``(accumulators, output integers)``."""
    q_w = np.atleast_2d(np.asarray(q_w, np.int64))
    acc = q_w @ (np.asarray(q_x, np.int64) - x_zero) + np.asarray(q_bias, np.int64)
    if np.abs(acc).max(initial=0) >= 2**31:
        raise OverflowError("the accumulator left int32: fewer or smaller inputs per output")
    return acc, requantize(acc, m0, shift, y_zero, qmin, qmax)
