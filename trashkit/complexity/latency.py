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
    input_size: tuple[int, ...] | torch.Tensor = (3, 156, 156),
    batch: int = 1,
    warmup: int = 10,
    runs: int = 50,
    threads: int | None = None,
    device: str | torch.device = "cpu",
    min_seconds: float = 0.0,
) -> Latency:
    """Time ``model`` on zeros of ``(batch, *input_size)`` (or on ``input_size`` itself when
    it is a tensor) in eval mode without gradients.

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
    if isinstance(input_size, torch.Tensor):
        x = input_size.to(device)
    else:
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


def time_in_turns(
    models: dict[str, tuple[Callable, tuple[int, ...] | torch.Tensor]],
    repeats: int,
    runs: int = 20,
    warmup: int = 5,
    batch: int = 1,
    threads: int | None = None,
    device: str | torch.device = "cpu",
) -> tuple[pd.DataFrame, Latency]:
    """The one way trashkit compares models' speed: ``models`` maps a name to ``(model,
    input size or example input)``; each of ``repeats`` rounds times every model once with
    :func:`measure_latency` (median of ``runs`` calls), the models taking turns and the
    first one rotating from round to round.

    Why turns: on a shared machine the load drifts over seconds; timing model A for a minute
    and then model B compares two different machines. Taking turns exposes every model to
    the same noise, so their *ratio* is trustworthy even when the absolute ms is not.
    Returns one row per (repeat, model) with its median ms, and the last measurement (for
    the device, threads and torch version it was taken with).
    """
    if not models:
        raise ValueError("time_in_turns: no models given")
    names = list(models)
    rows, lat = [], None
    for r in range(repeats):
        for k in range(len(names)):
            name = names[(k + r) % len(names)]
            fn, size = models[name]
            lat = measure_latency(fn, size, batch, warmup, runs, threads, device)
            rows.append({"repeat": r, "model": name, "median ms": lat.median_ms})
    return pd.DataFrame(rows), lat


def interleaved_latency(
    models: dict[str, tuple[Callable, tuple[int, ...] | torch.Tensor]],
    rounds: int = 300,
    warmup: int = 10,
) -> pd.DataFrame:
    """Batch-1 CPU latency of several models side by side (:func:`time_in_turns` with one
    call per turn, ``rounds`` turns): one row per model with the median and p90 ms over its
    calls and the speed-up over the first model. A model's input is given by its size
    ``(C, H, W)`` or by an example tensor."""
    if warmup:  # warm-up turns, untimed
        time_in_turns(models, warmup, runs=1, warmup=0)
    turns, _ = time_in_turns(models, rounds, runs=1, warmup=0)
    first = next(iter(models))
    base = turns[turns.model == first]["median ms"].median()
    rows = []
    for name in models:
        t = sorted(turns[turns.model == name]["median ms"])
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
