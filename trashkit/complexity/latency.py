"""Wall-clock latency that can be trusted: warm-up, many runs, median and p90, threads named.

Every figure carries the device, torch version and thread count it was measured with,
because a latency without them cannot be compared with anything.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import asdict, dataclass

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
        return (f"batch {self.batch}: median {self.median_ms:.2f} ms, p90 {self.p90_ms:.2f} ms, "
                f"{self.throughput:.0f} img/s [{self.device}, torch {self.torch}, "
                f"{self.threads} threads, {self.runs} runs]")

    def as_dict(self) -> dict:
        return asdict(self)


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu {platform.machine()} ({torch.get_num_threads()} threads)"


def measure_latency(model: nn.Module, input_size: tuple[int, ...] = (3, 156, 156),
                    batch: int = 1, warmup: int = 10, runs: int = 50,
                    threads: int | None = None, device: str | torch.device = "cpu",
                    min_seconds: float = 0.0) -> Latency:
    """Time ``model`` on zeros of ``(batch, *input_size)`` in eval mode without gradients.

    CUDA timings use CUDA events (GPU time, no host jitter) after a synchronise; CPU timings
    use ``perf_counter``. ``threads`` sets ``torch.set_num_threads`` for the measurement and
    restores it after. ``min_seconds`` keeps timing past ``runs`` for very fast models.
    """
    device = torch.device(device)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    used_threads = torch.get_num_threads()
    was_training = model.training
    model.eval().to(device)
    x = torch.zeros((batch, *input_size), device=device)
    times: list[float] = []
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start_all = time.perf_counter()
            while len(times) < runs or time.perf_counter() - start_all < min_seconds:
                if device.type == "cuda":
                    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    s.record()
                    model(x)
                    e.record()
                    torch.cuda.synchronize(device)
                    times.append(s.elapsed_time(e))
                else:
                    t0 = time.perf_counter()
                    model(x)
                    times.append((time.perf_counter() - t0) * 1000)
    finally:
        torch.set_num_threads(old_threads)
        model.train(was_training)
    times.sort()
    med = statistics.median(times)
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    return Latency(med, p90, statistics.fmean(times), batch, batch * 1000 / med, len(times),
                   device_name(device) if device.type == "cuda" else
                   f"cpu {platform.machine()}", used_threads, torch.__version__)


def interleaved_latency(models: dict[str, tuple], rounds: int = 300,
                        warmup: int = 10) -> pd.DataFrame:
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
        rows.append({"model": name, "median_ms": med, "p90_ms": t[int(0.9 * (len(t) - 1))],
                     "speedup": base / med, "rounds": rounds})
    return pd.DataFrame(rows)
