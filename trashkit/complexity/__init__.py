"""Measuring instruments: analytic counts, the official MACs, latency, guideline studies.

Imports nothing else of trashkit (the data layer and this one are the foundation).
"""

from . import formulas
from .analytic import by_category, count_layers
from .formulas import Cost
from .guard import Escape, check_countable, find_escapes
from .latency import Latency, interleaved_latency, measure_latency, percentile, time_in_turns
from .official import compare_counters, flopcounter_macs, official_macs, ptflops_count

__all__ = [
    "Cost",
    "Escape",
    "Latency",
    "by_category",
    "check_countable",
    "compare_counters",
    "count_layers",
    "find_escapes",
    "flopcounter_macs",
    "formulas",
    "interleaved_latency",
    "percentile",
    "time_in_turns",
    "measure_latency",
    "official_macs",
    "ptflops_count",
]
