"""Ship a trained model out: export (ONNX, TorchScript) and three runtimes behind one interface."""

from .export import ExportResult, export_model, export_onnx, export_torchscript
from .runtimes import (
    RUNTIMES,
    ModelInfo,
    Runtime,
    open_runtime,
    predict_images,
    preprocess,
)

__all__ = [
    "RUNTIMES", "ExportResult", "ModelInfo", "Runtime", "export_model", "export_onnx", "export_torchscript",
    "open_runtime", "predict_images", "preprocess",
]
