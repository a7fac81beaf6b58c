"""Wall-clock latency that can be trusted: warm-up, many runs, median and p90, threads named.

Every figure carries the device, torch version and thread count it was measured with,
because a latency without them cannot be compared with anything.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass
from collections.abc import Callable

import pandas as pd
import torch
from torch import nn


@dataclass
class Latency:
    median_ms: float
    p90_ms: float
    mean_ms: float
    batch: int
    throughput: float  # images per second at this batch size
    runs: int
    device: str
    threads: int
    torch: str

    def __str__(self) -> str:
        return (
            f"batch {self.batch}: median {self.median_ms:.2f} ms, p90 {self.p90_ms:.2f} ms, "
            f"{self.throughput:.0f} img/s [{self.device}, torch {self.torch}, "
            f"{self.threads} threads, {self.runs} runs]"
        )


def percentile(sorted_ms: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of sorted timings, nearest rank: one definition for every
    latency trashkit reports (p90 = the time 9 runs in 10 stay under)."""
    if not sorted_ms:
        raise ValueError("percentile of no timings")
    return sorted_ms[min(len(sorted_ms) - 1, int(round(q * (len(sorted_ms) - 1))))]


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu {platform.machine()} ({torch.get_num_threads()} threads)"


def measure_latency(
    model: nn.Module | Callable,
    input_size: tuple[int, ...] = (3, 156, 156),
    batch: int = 1,
    warmup: int = 10,
    runs: int = 50,
    threads: int | None = None,
    device: str | torch.device = "cpu",
    min_seconds: float = 0.0,
) -> Latency:
    """Time ``model`` on zeros of ``(batch, *input_size)`` in eval mode without gradients.

    ``model`` is an ``nn.Module`` or any callable on a tensor (an ONNX Runtime session
    wrapper is timed exactly like PyTorch). CUDA timings use CUDA events (GPU time, no host
    jitter) after a synchronise; CPU timings use ``perf_counter``. ``threads`` sets
    ``torch.set_num_threads`` for the measurement and restores it after. ``min_seconds``
    keeps timing past ``runs`` for very fast models.
    """
    device = torch.device(device)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    used_threads = torch.get_num_threads()
    is_module = isinstance(model, nn.Module)
    was_training = is_module and model.training
    if is_module:
        model.eval().to(device)
    x = torch.zeros((batch, *input_size), device=device)
    try:
        times = _time_runs(model, x, warmup, runs, min_seconds)
    finally:
        torch.set_num_threads(old_threads)
        if is_module:
            model.train(was_training)
    times.sort()
    med = statistics.median(times)
    return Latency(
        med,
        percentile(times, 0.9),
        statistics.fmean(times),
        batch,
        batch * 1000 / med,
        len(times),
        device_name(device) if device.type == "cuda" else f"cpu {platform.machine()}",
        used_threads,
        torch.__version__,
    )


def _time_runs(
    model: Callable, x: torch.Tensor, warmup: int, runs: int, min_seconds: float
) -> list[float]:
    """Milliseconds of each timed call, after ``warmup`` untimed ones."""
    cuda = x.device.type == "cuda"
    times: list[float] = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        if cuda:
            torch.cuda.synchronize(x.device)
        start_all = time.perf_counter()
        while len(times) < runs or time.perf_counter() - start_all < min_seconds:
            if cuda:
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
                model(x)
                e.record()
                torch.cuda.synchronize(x.device)
                times.append(s.elapsed_time(e))
            else:
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1000)
    return times


def interleaved_latency(
    models: dict[str, tuple], rounds: int = 300, warmup: int = 10
) -> pd.DataFrame:
    """Time several models side by side, CPU batch 1: ``models`` maps a name to
    ``(callable, input tensor)``; every round runs each once in turn.

    Why interleave: on a shared machine the load drifts over seconds; timing model A for a
    minute and then model B compares two different machines. Taking turns exposes every
    model to the same noise, so their *ratio* is trustworthy even when the absolute ms is not.
    Returns one row per model: median and p90 ms and the speed-up over the first model.
    """
    if not models:
        raise ValueError("interleaved_latency: no models given")
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for _ in range(warmup):
            for fn, x in models.values():
                fn(x)
        for _ in range(rounds):
            for name, (fn, x) in models.items():
                t0 = time.perf_counter()
                fn(x)
                times[name].append((time.perf_counter() - t0) * 1000)
    base = statistics.median(next(iter(times.values())))
    rows = []
    for name, t in times.items():
        t.sort()
        med = statistics.median(t)
        rows.append(
            {
                "model": name,
                "median_ms": med,
                "p90_ms": percentile(t, 0.9),
                "speedup": base / med,
                "rounds": rounds,
            }
        )
    return pd.DataFrame(rows)
