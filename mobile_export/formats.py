"""The ``FORMATS`` table: format name → :class:`~mobile_export.base.Exporter`. The CLI's
``click.Choice`` and ``verify``'s artifact recognition both come from here."""
from __future__ import annotations

from pathlib import Path

from . import coreml, executorch, onnx, tflite, torchscript
from .base import Exporter

__all__ = ["FORMATS", "exporter_for"]

FORMATS: dict[str, Exporter] = {
    "executorch": Exporter(
        name="executorch",
        summary="ExecuTorch .pte: XNNPACK delegate (Android/iOS CPU) and Core ML delegate (Apple)",
        requires=("executorch", "coremltools"),
        precisions=("fp32", "fp16"),
        suffixes=(".pte",),
        export=executorch.export_executorch,
        open_runner=executorch.open_runner,
        inspect=executorch.inspect,
        read_embedded_metadata=executorch.read_embedded_metadata,
    ),
    "coreml": Exporter(
        name="coreml",
        summary="Core ML .mlpackage (ML Program, image input), iOS 16+ / macOS 13+",
        requires=("coremltools",),
        precisions=("fp32", "fp16"),
        suffixes=(".mlpackage",),
        export=coreml.export_coreml,
        open_runner=coreml.open_runner,
        inspect=coreml.inspect,
        read_embedded_metadata=coreml.read_embedded_metadata,
    ),
    "tflite": Exporter(
        name="tflite",
        summary="LiteRT / TensorFlow Lite .tflite (Android, iOS), via litert-torch",
        requires=("litert_torch", "ai_edge_litert"),
        precisions=("fp32", "fp16"),
        suffixes=(".tflite",),
        export=tflite.export_tflite,
        open_runner=tflite.open_runner,
        inspect=tflite.inspect,
        read_embedded_metadata=tflite.read_embedded_metadata,
    ),
    "torchscript": Exporter(
        name="torchscript",
        summary="TorchScript .pt and lite-interpreter .ptl (PyTorch Mobile)",
        requires=(),
        precisions=("fp32",),
        suffixes=(".pt", ".ptl"),
        export=torchscript.export_torchscript,
        open_runner=torchscript.open_runner,
        inspect=torchscript.inspect,
        read_embedded_metadata=torchscript.read_embedded_metadata,
    ),
    "onnx": Exporter(
        name="onnx",
        summary="ONNX .onnx (opset 18) for ONNX Runtime (mobile, desktop, web)",
        requires=("onnx", "onnxruntime", "onnxscript"),
        precisions=("fp32",),
        suffixes=(".onnx",),
        export=onnx.export_onnx,
        open_runner=onnx.open_runner,
        inspect=onnx.inspect,
        read_embedded_metadata=onnx.read_embedded_metadata,
    ),
}


def exporter_for(path: Path) -> Exporter | None:
    """The format that owns an artifact path (by suffix), or None."""
    for exporter in FORMATS.values():
        if exporter.owns(Path(path)):
            return exporter
    return None
