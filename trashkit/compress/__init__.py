"""Chapter 7: from a training checkpoint to something a robot runs.

Distillation is a training callback (:class:`trashkit.train.Distill`, or ``teacher=`` in the
config); this package adds structured pruning (torch-pruning), Tucker/SVD decomposition
(tensorly), ONNX export with ONNX Runtime, int8 static quantization (ONNX Runtime), and the
comparison table.
"""

from .prune import prune_to_macs
from .decompose import decompose_model
from .onnx_rt import export_onnx, OrtModel, quantize_int8
from .report import Candidate, evaluate_candidate, variants_table, plot_variants

__all__ = [
    "prune_to_macs",
    "decompose_model",
    "export_onnx",
    "OrtModel",
    "quantize_int8",
    "Candidate",
    "evaluate_candidate",
    "variants_table",
    "plot_variants",
]
