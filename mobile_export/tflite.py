"""LiteRT (TensorFlow Lite) ``.tflite`` flatbuffers, via litert-torch (formerly ai-edge-torch).

``litert_torch.convert`` traces the bundle with ``torch.export`` and lowers it to TFLite ops; the
input stays NHWC uint8 (TFLite's native layout, what Android's ``Bitmap`` hands over) and the
signature ``serving_default`` has named inputs (``image``, ``crop_to_image``) and outputs
(``keypoints``, ``scores``). Runs with the LiteRT interpreter (``ai_edge_litert``; Android
``com.google.ai.edge.litert``, iOS ``TensorFlowLiteSwift``) on its XNNPACK CPU path or the GPU
delegate.

fp16 is TFLite's "float16 quantization": convolution and fully-connected weights are stored as
float16 with DEQUANTIZE ops (``ai_edge_quantizer``'s float-casting recipe). The file is half the
size; the GPU delegate computes in fp16, the CPU path dequantizes once at load.

The uint8 input enters the XNNPACK delegate: the converter casts it to float with a ``CAST``,
which the delegate does not take (it stays on the builtin kernels, the one op outside the
delegate). :func:`uint8_input_as_dequantize` rewrites that op as a ``DEQUANTIZE`` of the input
declared as quantized with scale 1 and zero point 0 — the same float values, bit for bit, and
an op the delegate runs (XNNPACK's QU8 → F32 convert). The input stays a plain uint8 tensor for
the app; only its quantization parameters are new.

Metadata: a ``starpose_metadata`` entry in the flatbuffer's ``Model.metadata`` table (a named
buffer holding the JSON; readable with the flatbuffer schema, see :func:`read_embedded_metadata`)
and the sidecar JSON.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import (
    ArtifactLoadError,
    ExportOptions,
    ObservedIO,
    Staging,
    TensorInfo,
    artifact_stem,
    image_array,
    require,
    runtime_threads,
)
from .contract import AFFINE_INPUT, IMAGE_INPUT
from .metadata import build_metadata, dumps, parse_metadata, sidecar_path

if TYPE_CHECKING:
    import torch.nn as nn

# torch and the bundle are imported inside the export function: opening and running an artifact
# (open_runner, inspect, read_embedded_metadata) needs only numpy and the runtime.

__all__ = ["export_tflite", "open_runner", "inspect", "read_embedded_metadata", "embed_metadata",
           "uint8_input_as_dequantize"]

NAME = "tflite"
LAYOUT = "NHWC"
SIGNATURE = "serving_default"
METADATA_NAME = "starpose_metadata"


def _named(bundle: Any) -> Any:
    """The bundle with keyword inputs and dict outputs, so that the TFLite signature has names."""
    import torch
    import torch.nn as nn

    class Named(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bundle = bundle

        def forward(self, image: torch.Tensor, crop_to_image: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
            return dict(zip(self.bundle.output_names, self.bundle(image, crop_to_image)))

    return Named()


def export_tflite(network: nn.Module, out_dir: Path, options: ExportOptions) -> list[Path]:
    """Write ``<stem>.tflite`` and its sidecar; returns the paths."""
    import torch

    with torch.no_grad():
        return _export_tflite(network, out_dir, options)


def _export_tflite(network: nn.Module, out_dir: Path, options: ExportOptions) -> list[Path]:
    require("litert_torch", NAME)
    import litert_torch

    from .bundle import PoseBundle

    spec = network.spec
    variant = getattr(network, "variant", "custom")
    bundle = PoseBundle(network, spec, layout=LAYOUT, affine=options.affine, raw=options.raw).eval()
    names = (IMAGE_INPUT, AFFINE_INPUT)[: 2 if options.affine else 1]
    kwargs = dict(zip(names, bundle.example_inputs()))
    name = artifact_stem(variant, None, options) + ".tflite"
    options.progress(f"tflite: litert_torch.convert → {name}")
    edge = litert_torch.signature(SIGNATURE, _named(bundle).eval(), sample_kwargs=kwargs).convert()
    data = bytes(edge.model_content())
    if options.precision == "fp16":
        options.progress("tflite: float16 weights (ai_edge_quantizer float casting)")
        data = _fp16_weights(data)
    data = uint8_input_as_dequantize(data)
    meta = build_metadata(
        spec, variant=variant, weights=options.weights, fmt=NAME, precision=options.precision,
        backend="litert", layout=LAYOUT, affine=options.affine, raw=options.raw,
        runtime={"name": "litert", "platforms": ["android", "ios", "linux", "macos"],
                 "signature": SIGNATURE},
    )
    data = embed_metadata(data, dumps(meta))
    with Staging(out_dir) as stage:
        stage.write_bytes(name, data)
        stage.write_text(sidecar_path(Path(name)).name, dumps(meta))
        return stage.commit()


def _fp16_weights(data: bytes) -> bytes:
    require("ai_edge_quantizer", NAME)
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer

    q = quantizer.Quantizer(bytearray(data))
    q.add_weight_only_config(
        regex=".*",
        operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
        num_bits=16,
        granularity=qtyping.QuantGranularity.TENSORWISE,
        algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING,
    )
    return bytes(q.quantize().quantized_model)


def uint8_input_as_dequantize(data: bytes) -> bytes:
    """Rewrite each ``CAST`` of a uint8 graph input to float32 as a ``DEQUANTIZE`` of that input
    with scale 1 and zero point 0 (``float(x)``, exactly), so that LiteRT's XNNPACK delegate takes
    it; a model without such a cast comes back unchanged."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    codes = model.operatorCodes

    def builtin(index: int) -> int:
        return flatbuffer_utils.get_builtin_code_from_operator_code(codes[index])

    changed = 0
    for graph in model.subgraphs:
        inputs = {int(i) for i in graph.inputs}
        for op in graph.operators:
            if builtin(op.opcodeIndex) != schema.BuiltinOperator.CAST or int(op.inputs[0]) not in inputs:
                continue
            src, dst = graph.tensors[int(op.inputs[0])], graph.tensors[int(op.outputs[0])]
            if src.type != schema.TensorType.UINT8 or dst.type != schema.TensorType.FLOAT32 or (
                    src.quantization is not None and src.quantization.scale is not None
                    and len(src.quantization.scale)):
                continue
            index = next((i for i in range(len(codes)) if builtin(i) == schema.BuiltinOperator.DEQUANTIZE), None)
            if index is None:
                code = schema.OperatorCodeT()
                code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DEQUANTIZE
                code.version = 1  # uint8 input: the lowest version, which every LiteRT runtime has
                codes.append(code)
                index = len(codes) - 1
            op.opcodeIndex = index
            op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.NONE, None
            quant = schema.QuantizationParametersT()
            quant.scale, quant.zeroPoint = [1.0], [0]
            src.quantization = quant
            changed += 1
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)) if changed else data


def embed_metadata(data: bytes, text: str) -> bytes:
    """Add (or replace) the ``starpose_metadata`` entry of ``Model.metadata``."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) != METADATA_NAME] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_embedded_metadata(path: Path) -> dict[str, Any] | None:
    """The ``starpose_metadata`` entry, read with the flatbuffer schema (no interpreter). The
    generated Python reader trusts the offsets in the file: on a damaged one it raises whatever
    its unpacking hits (``struct.error``, ``TypeError``, ``IndexError``, ...), reported here as
    an unreadable file."""
    from ai_edge_litert import schema_py_generated as schema

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ArtifactLoadError(f"{path}: cannot read ({e})") from e
    try:
        text = _metadata_text(schema, data)
    except Exception as e:  # noqa: BLE001 - see the docstring
        raise ArtifactLoadError(f"{path}: not a readable TFLite flatbuffer ({type(e).__name__}: {e})") from e
    if text is None:
        return None
    return parse_metadata(text, f"{path} (Model.metadata '{METADATA_NAME}')")


def _metadata_text(schema: Any, data: bytes) -> str | None:
    if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise ValueError("missing the TFL3 file identifier")
    model = schema.Model.GetRootAs(data, 0)
    n = model.MetadataLength()
    if n * 4 > len(data):  # each entry is a 4-byte offset: a damaged length would loop for ever
        raise ValueError(f"the metadata table claims {n} entries in a {len(data)}-byte file")
    for i in range(n):
        entry = model.Metadata(i)
        if _name(entry.Name()) == METADATA_NAME:
            buf = model.Buffers(entry.Buffer())
            if buf is None:
                raise ValueError(f"metadata '{METADATA_NAME}' points at a missing buffer")
            return buf.DataAsNumpy().tobytes().decode("utf-8")
    return None


def _interpreter_class() -> Any:
    """LiteRT's interpreter; ``tflite_runtime`` where that is the only one installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        except ImportError as e:
            require("ai_edge_litert", NAME)
            raise e
    return Interpreter


def _interpreter(path: Path) -> Any:
    try:
        it = _interpreter_class()(model_path=str(path), num_threads=runtime_threads())
        it.allocate_tensors()
    except Exception as e:  # noqa: BLE001 - the interpreter raises ValueError, RuntimeError, ...
        raise ArtifactLoadError(f"{path}: the LiteRT interpreter could not load it ({e})") from e
    return it


def _details(rows: dict[str, Any] | list[dict[str, Any]]) -> tuple[TensorInfo, ...]:
    if isinstance(rows, dict):
        items = list(rows.items())
    else:
        items = [(r["name"], r) for r in rows]
    return tuple(TensorInfo(n, tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"]).name) for n, d in items)


class _Runner:
    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.meta = meta
        self.interpreter = _interpreter(self.path)
        try:
            self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        except ValueError as e:
            raise ArtifactLoadError(f"{path}: no '{SIGNATURE}' signature ({e})") from e

    def observed_io(self) -> ObservedIO:
        return ObservedIO(_details(self.runner.get_input_details()),
                          _details(self.runner.get_output_details()))

    def __call__(self, crop: np.ndarray, crop_to_image: np.ndarray | None = None) -> dict[str, np.ndarray]:
        feeds = {IMAGE_INPUT: image_array(crop, self.meta)}
        if self.meta["affine_input"]["present"]:
            if crop_to_image is None:
                raise ValueError(f"{self.path.name} has a crop_to_image input: pass the matrix")
            feeds[AFFINE_INPUT] = np.asarray(crop_to_image, np.float32).reshape(1, 2, 3)
        try:
            outs = self.runner(**feeds)
        except (ValueError, RuntimeError) as e:
            raise ArtifactLoadError(f"{self.path}: LiteRT failed to run it ({e})") from e
        return {k: np.asarray(v, dtype=np.float32) for k, v in outs.items()}


def open_runner(path: Path, meta: dict[str, Any]) -> _Runner:
    return _Runner(path, meta)


def inspect(path: Path) -> ObservedIO:
    it = _interpreter(Path(path))
    try:
        runner = it.get_signature_runner(SIGNATURE)
    except ValueError as e:
        raise ArtifactLoadError(f"{path}: no '{SIGNATURE}' signature ({e})") from e
    return ObservedIO(_details(runner.get_input_details()), _details(runner.get_output_details()))
