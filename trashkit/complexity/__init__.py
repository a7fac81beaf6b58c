"""Measuring instruments: analytic counts, the official MACs, latency, guideline studies.

Imports nothing else of trashkit (the data layer and this one are the foundation).
"""

from . import formulas
from .formulas import Cost
from .analytic import count_layers, by_category
from .official import official_macs, ptflops_count, flopcounter_macs, compare_counters
from .guard import find_escapes, check_countable, Escape
from .latency import Latency, interleaved_latency, measure_latency

__all__ = ["formulas", "Cost", "count_layers", "by_category", "official_macs",
           "ptflops_count", "flopcounter_macs", "compare_counters", "find_escapes",
           "check_countable", "Escape", "measure_latency", "Latency",
           "interleaved_latency"]
