"""Chapter 7: from a training checkpoint to something a robot runs.

Distillation lives in :func:`trashkit.train.kd_loss` / ``train(teacher=...)``; this package
adds structured pruning (torch-pruning), Tucker/SVD decomposition (tensorly), ONNX export
with ONNX Runtime, int8 static quantization (ONNX Runtime), and the comparison table.
"""

from .prune import prune_to_macs
from .decompose import decompose_model
from .onnx_rt import export_onnx, OrtModel, quantize_int8
from .report import Variant, evaluate_variant, variants_table, plot_variants

__all__ = ["prune_to_macs", "decompose_model", "export_onnx", "OrtModel", "quantize_int8",
           "Variant", "evaluate_variant", "variants_table", "plot_variants"]
