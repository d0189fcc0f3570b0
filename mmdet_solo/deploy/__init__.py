"""Deployment: the exportable detector (network + static post-processing, :mod:`.graph`),
the ONNX export (:mod:`.export`) and the ONNX Runtime detector (:mod:`.runtime`).
See docs/DEPLOYMENT.md."""
from .graph import DEFAULT_MAX_CANDIDATES, ExportableDetector, static_postprocess
from .runtime import ONNXRuntimeDetector, init_onnx_detector, results_from_outputs

__all__ = ['DEFAULT_MAX_CANDIDATES', 'ExportableDetector', 'static_postprocess',
           'ONNXRuntimeDetector', 'init_onnx_detector', 'results_from_outputs']
