"""Core ML weight compression on top of the ``.mlpackage`` exporter.

:func:`mobile_export.coreml.export_coreml` converts the network (fp16 compute by default) into
a temporary folder; the ML Program is then compressed with ``coremltools.optimize.coreml``:

- ``int8``: ``linear_quantize_weights`` (linear symmetric, per output channel). Every weight
  ``const`` becomes a ``constexpr_affine_dequantize`` (iOS 16 opset): int8 on disk and in memory,
  expanded to fp16 when the model loads or, on the Neural Engine, on the fly.
- ``palettize4``: ``palettize_weights`` with 4-bit k-means look-up tables per tensor
  (``constexpr_lut_to_dense``).

Activations stay in the compute precision (fp16): Core ML's activation quantization
(``linear_quantize_activations``) calibrates by running predictions, which needs macOS; it is
not offered here. Small tensors (at most ``WEIGHT_THRESHOLD`` elements: biases, norms, the
smallest 1x1 convolutions) stay float, as coremltools decides by default.

The compressed model is a new artifact: its metadata (precision, ``quantization`` block) is
written into ``user_defined_metadata`` and the sidecar before it is saved (staged, then
renamed). On Linux it cannot be run (Core ML is an Apple framework); :func:`compressed_op_counts`
reads the saved spec to show that the weights really are stored compressed.
"""
from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import torch.nn as nn

from mobile_export.base import EXTRA_HINT, ExportOptions, MissingExtraError, Staging, require
from mobile_export.metadata import WeightsInfo, dumps, sidecar_path

from .pt2e import int8_metadata
from .schemes import CoreMLRecipe, Scheme

__all__ = ["export_coreml_compressed", "compress", "compressed_op_counts", "float_consts", "COMPRESSED_OPS",
           "WEIGHT_THRESHOLD"]

WEIGHT_THRESHOLD = 2048  # coremltools' default: tensors of at most this many elements stay float
COMPRESSED_OPS = {
    "int8": ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale"),
    "palettize4": ("constexpr_lut_to_dense",),
}


def compress(mlmodel: Any, recipe: CoreMLRecipe) -> Any:
    """The compressed copy of an ML Program per ``recipe.weights`` (None: unchanged)."""
    import coremltools.optimize.coreml as cto

    if recipe.weights is None:
        return mlmodel
    if recipe.weights == "int8":
        op = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                         weight_threshold=WEIGHT_THRESHOLD)
        return cto.linear_quantize_weights(mlmodel, cto.OptimizationConfig(global_config=op))
    op = cto.OpPalettizerConfig(nbits=4, mode="kmeans", granularity="per_tensor", weight_threshold=WEIGHT_THRESHOLD)
    try:
        return cto.palettize_weights(mlmodel, cto.OptimizationConfig(global_config=op))
    except ImportError as e:  # k-means comes from scikit-learn (or kmeans1d)
        raise MissingExtraError(f"4-bit palettization needs k-means from scikit-learn ({e}); install it with: "
                                f"{EXTRA_HINT}") from e


def export_coreml_compressed(
    network: nn.Module,
    out_dir: Path,
    *,
    scheme: Scheme,
    weights: WeightsInfo,
    affine: bool = False,
    raw: bool = False,
    extra: dict[str, Any] | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> list[Path]:
    """Write ``<stem>.mlpackage`` compressed per ``scheme.coreml`` and its sidecar."""
    require("coremltools", "coreml")
    import coremltools as ct

    from mobile_export.coreml import DEPLOYMENT_TARGET, METADATA_KEY, export_coreml

    from .pt2e import quantized_stem

    recipe = scheme.coreml
    if recipe is None or recipe.weights is None:
        raise ValueError(f"scheme {scheme.name} has no Core ML weight compression; export it with mobile_export")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    variant = getattr(network, "variant", "custom")
    name = quantized_stem(variant, None, scheme, affine, raw) + ".mlpackage"
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".coreml-float-") as tmp:
        options = ExportOptions(precision=recipe.compute_precision, weights=weights, affine=affine, raw=raw,
                                progress=progress)
        paths = export_coreml(network, Path(tmp), options)
        package = next(p for p in paths if p.suffix == ".mlpackage")
        progress(f"coreml: {recipe.weights} weight compression → {name}")
        mlmodel = ct.models.MLModel(str(package), skip_model_load=True)
        compressed = compress(mlmodel, recipe)
        meta = int8_metadata(
            network, weights=weights, scheme=scheme, fmt="coreml", backend="mlprogram", layout="NCHW",
            affine=affine, raw=raw, input_type="image",
            runtime={"name": "coreml", "platforms": ["ios", "macos"], "minimum_deployment_target": DEPLOYMENT_TARGET},
            quantization={**recipe.describe(), "weight_threshold": WEIGHT_THRESHOLD, **(extra or {})},
        )
        compressed.user_defined_metadata[METADATA_KEY] = json.dumps(meta)
        with Staging(out_dir) as stage:
            compressed.save(str(stage.path(name)))
            stage.write_text(sidecar_path(Path(name)).name, dumps(meta))
            return stage.commit()


def _main_ops(path: Path) -> list[Any]:
    require("coremltools", "coreml")
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    if spec.WhichOneof("Type") != "mlProgram":
        raise ValueError(f"{path}: not an ML Program")
    ops: list[Any] = []

    def walk(block: Any) -> None:
        for op in block.operations:
            ops.append(op)
            for nested in op.blocks:
                walk(nested)

    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            walk(block)
    return ops


def compressed_op_counts(path: Path) -> Counter:
    """Op types of the saved ML Program (all functions and specializations), e.g. how many
    ``constexpr_affine_dequantize`` ops hold int8 weights."""
    return Counter(op.type for op in _main_ops(path))


def float_consts(path: Path) -> list[tuple[str, int]]:
    """(name, element count) of every float ``const`` tensor left in the saved ML Program: after
    compression only tensors of at most :data:`WEIGHT_THRESHOLD` elements should remain."""
    require("coremltools", "coreml")
    from coremltools.proto import MIL_pb2

    floats = {MIL_pb2.FLOAT16, MIL_pb2.FLOAT32, MIL_pb2.FLOAT64}
    out = []
    for op in _main_ops(path):
        if op.type != "const" or not op.outputs:
            continue
        t = op.outputs[0].type
        if t.WhichOneof("type") != "tensorType" or t.tensorType.dataType not in floats:
            continue
        n = 1
        for d in t.tensorType.dimensions:
            n *= int(d.constant.size)
        out.append((op.outputs[0].name, n))
    return out
