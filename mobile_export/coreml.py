"""Core ML ``.mlpackage`` (ML Program) for iOS and macOS, via coremltools 9.

The bundle is captured with ``torch.export`` (coremltools' preferred PyTorch frontend; the
TorchScript frontend is the fallback when that conversion fails) and converted with an image
input: ``ct.ImageType`` RGB, scale 1, no bias, so an app passes a ``CVPixelBuffer`` and Core ML
does the pixel-format work; mean/std normalization stays in the graph. Outputs are named
``keypoints`` and ``scores`` (plus ``simcc_x``/``simcc_y`` with raw outputs).

Precision: fp32 or fp16 compute (``compute_precision``). In fp16 the SimCC decoding after the
argmax and the crop → image affine stay float32 (an op selector), because image coordinates of a
few thousand pixels have a float16 step of 2-4 pixels.

Minimum deployment target: iOS 16 / macOS 13. ML Programs need iOS 15; iOS 16 (specification
version 7) is the oldest target with the iOS16 opset that coremltools 9 emits for this graph by
default, and it still covers every iPhone from the 8/X on. iOS 17 (which drops the 8/X) is only
needed for int8 activation quantization, which the quantization package targets separately.

``predict`` exists only on macOS (Core ML is an Apple framework). On Linux the saved spec is read
back with ``ct.utils.load_spec`` (input type and size, output names and shapes, metadata) and
parity is left to the macOS test.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import (
    ArtifactLoadError,
    ExportOptions,
    ObservedIO,
    RuntimeUnavailable,
    Staging,
    TensorInfo,
    artifact_stem,
    require,
)
from .contract import AFFINE_INPUT, IMAGE_INPUT
from .metadata import build_metadata, dumps, parse_metadata, sidecar_path

if TYPE_CHECKING:
    import torch.nn as nn

# torch and the bundle are imported inside the export function: reading an artifact's spec
# (inspect, read_embedded_metadata) needs only coremltools.

__all__ = ["export_coreml", "open_runner", "inspect", "read_embedded_metadata", "DEPLOYMENT_TARGET",
           "METADATA_KEY"]

NAME = "coreml"
LAYOUT = "NCHW"  # Core ML turns the image into a (1, 3, H, W) float tensor
DEPLOYMENT_TARGET = "iOS16"
METADATA_KEY = "starpose.metadata"
AUTHOR = "StarPose Mobile"
LICENSE = "Apache-2.0"
_MULTIARRAY_DTYPES = {65568: "float32", 65552: "float16", 131104: "int32", 65600: "float64"}


def export_coreml(network: nn.Module, out_dir: Path, options: ExportOptions) -> list[Path]:
    """Write ``<stem>.mlpackage`` and its sidecar; returns the paths."""
    require("coremltools", NAME)
    import coremltools as ct
    import torch

    from .bundle import PoseBundle

    spec = network.spec
    variant = getattr(network, "variant", "custom")
    bundle = PoseBundle(network, spec, layout=LAYOUT, affine=options.affine, raw=options.raw).eval()
    name = artifact_stem(variant, None, options) + ".mlpackage"
    inputs = [ct.ImageType(name=IMAGE_INPUT, shape=(1, 3, spec.input_h, spec.input_w), scale=1.0,
                           bias=[0.0, 0.0, 0.0], color_layout=ct.colorlayout.RGB)]
    if options.affine:
        inputs.append(ct.TensorType(name=AFFINE_INPUT, shape=(1, 2, 3), dtype=np.float32))
    # float32 outputs whatever the compute precision (iOS 16+ would otherwise return fp16 arrays).
    outputs = [ct.TensorType(name=n, dtype=np.float32) for n in bundle.output_names]
    precision = (ct.transform.FP16ComputePrecision(op_selector=_fp16_selector())
                 if options.precision == "fp16" else ct.precision.FLOAT32)
    example = bundle.example_inputs(torch.float32)
    common = dict(inputs=inputs, outputs=outputs, convert_to="mlprogram", compute_precision=precision,
                  minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET))
    options.progress(f"coreml: torch.export frontend → {name}")
    try:
        with torch.no_grad():
            ep = torch.export.export(bundle, example, strict=False).run_decompositions({})
        mlmodel = ct.convert(ep, **common)
        frontend = "torch.export"
    except Exception as e:  # noqa: BLE001 - fall back on any frontend failure, say why
        options.progress(f"coreml: torch.export frontend failed ({type(e).__name__}: {e}); using TorchScript")
        with torch.no_grad():
            traced = torch.jit.trace(bundle, example, check_trace=False)
        mlmodel = ct.convert(traced, **common)
        frontend = "torchscript"
    meta = build_metadata(
        spec, variant=variant, weights=options.weights, fmt=NAME, precision=options.precision,
        backend="mlprogram", layout=LAYOUT, affine=options.affine, raw=options.raw, input_type="image",
        runtime={"name": "coreml", "platforms": ["ios", "macos"], "minimum_deployment_target": DEPLOYMENT_TARGET,
                 "frontend": frontend},
    )
    _describe(mlmodel, meta, variant)
    with Staging(out_dir) as stage:
        mlmodel.save(str(stage.path(name)))
        stage.write_text(sidecar_path(Path(name)).name, dumps(meta))
        return stage.commit()


def _describe(mlmodel: Any, meta: dict[str, Any], variant: str) -> None:
    from starpose import __version__

    k = meta["spec"]["num_keypoints"]
    w, h = meta["input"]["width"], meta["input"]["height"]
    units = meta["outputs"]["keypoints"]["units"]
    mlmodel.author = AUTHOR
    mlmodel.license = LICENSE
    mlmodel.version = __version__
    mlmodel.short_description = (
        f"StarPose {variant} top-down pose estimation: a {w}x{h} RGB person crop → {k} keypoints "
        f"({units}) and their scores (SimCC decoded in the model)"
    )
    mlmodel.input_description[IMAGE_INPUT] = f"person crop, RGB, {w}x{h}; normalization is inside the model"
    if meta["affine_input"]["present"]:
        mlmodel.input_description[AFFINE_INPUT] = "2x3 crop → image affine matrix (1, 2, 3), float32"
    mlmodel.output_description["keypoints"] = f"(1, {k}, 2) x, y in {units}; -1 where score <= 0"
    mlmodel.output_description["scores"] = f"(1, {k}) SimCC confidence, min of the x and y maxima"
    for raw in ("simcc_x", "simcc_y"):
        if raw in meta["outputs"]:
            mlmodel.output_description[raw] = f"raw SimCC {raw[-1]} vectors {tuple(meta['outputs'][raw]['shape'])}"
    mlmodel.user_defined_metadata[METADATA_KEY] = json.dumps(meta)
    mlmodel.user_defined_metadata["starpose.variant"] = variant
    mlmodel.user_defined_metadata["starpose.keypoint_names"] = ",".join(meta["spec"]["keypoint_names"])


def _fp16_selector() -> Any:
    """``op_selector`` for FP16ComputePrecision: False (keep float32) for every op that depends
    on an argmax result or on the affine input, i.e. the decoding and image-coordinate math."""
    memo: dict[int, bool] = {}

    def downstream_of_decode(op: Any) -> bool:
        key = id(op)
        if key not in memo:
            memo[key] = False  # guards cycles; a MIL block is a DAG
            hit = op.op_type in ("reduce_argmax",)
            for value in _input_vars(op):
                if value.name == AFFINE_INPUT:
                    hit = True
                elif value.op is not None and downstream_of_decode(value.op):
                    hit = True
            memo[key] = hit
        return memo[key]

    return lambda op: not downstream_of_decode(op)


def _input_vars(op: Any) -> list[Any]:
    out = []
    for value in op.inputs.values():
        out.extend(value if isinstance(value, (list, tuple)) else [value])
    return out


def _load_spec(path: Path) -> Any:
    require("coremltools", NAME)
    import coremltools as ct

    if not Path(path).is_dir():
        raise ArtifactLoadError(f"{path}: not an .mlpackage directory")
    try:
        return ct.utils.load_spec(str(path))
    except Exception as e:  # noqa: BLE001 - protobuf and file errors
        raise ArtifactLoadError(f"{path}: coremltools could not read the model spec ({e})") from e


def read_embedded_metadata(path: Path) -> dict[str, Any] | None:
    spec = _load_spec(Path(path))
    text = spec.description.metadata.userDefined.get(METADATA_KEY)
    if text is None:
        return None
    return parse_metadata(text, f"{path} (user_defined_metadata '{METADATA_KEY}')")


def _feature(f: Any) -> TensorInfo:
    kind = f.type.WhichOneof("Type")
    if kind == "imageType":
        t = f.type.imageType
        colors = {10: 3, 20: 3, 30: 3, 40: 1}  # GRAYSCALE=10, RGB=20, BGR=30 (protobuf enum values)
        return TensorInfo(f.name, (1, colors.get(t.colorSpace, 3), int(t.height), int(t.width)), "image")
    if kind == "multiArrayType":
        t = f.type.multiArrayType
        return TensorInfo(f.name, tuple(int(s) for s in t.shape), _MULTIARRAY_DTYPES.get(t.dataType, str(t.dataType)))
    return TensorInfo(f.name, (), kind or "unknown")


# MIL DataType codes (coremltools.proto.MIL_pb2.DataType) → the weight-blob reader for that type
_BLOB_READERS = {10: "read_fp16_data", 11: "read_float_data", 21: "read_int8_data", 22: "read_int16_data",
                 23: "read_int32_data", 25: "read_int4_data", 31: "read_uint8_data", 32: "read_uint16_data",
                 33: "read_uint32_data", 35: "read_uint4_data", 36: "read_uint2_data", 37: "read_uint1_data",
                 38: "read_uint6_data", 39: "read_uint3_data"}
_WHOLE_BYTE_TYPES = {10, 11, 21, 22, 23, 31, 32, 33}


def check_weight_blobs(path: Path, spec: Any) -> int:
    """Read every weight blob the ML Program references from its weight file (MILBlob checks
    each blob's sentinel, data type and bounds) and compare its element count with the declared
    shape; returns the number of blobs. This catches a truncated or damaged ``weights/weight.bin``
    on any OS, where Core ML itself (macOS only) would first meet it at load time. A changed number
    inside a blob carries no checksum: only the manifest's sha256 catches that."""
    from coremltools.libmilstoragepython import _BlobStorageReader

    root = Path(path) / "Data" / "com.apple.CoreML"
    readers: dict[str, Any] = {}
    count = 0

    def check(name: str, value: Any) -> None:
        nonlocal count
        blob = value.blobFileValue
        file = blob.fileName.replace("@model_path", str(root), 1)
        where = f"{path}: weight '{name}' ({blob.fileName} at offset {blob.offset})"
        method = _BLOB_READERS.get(value.type.tensorType.dataType)
        if method is None:
            return
        try:
            if file not in readers:
                if not Path(file).is_file():
                    raise FileNotFoundError("the weight file is missing")
                readers[file] = _BlobStorageReader(file)
            data = getattr(readers[file], method)(int(blob.offset))
        except Exception as e:  # noqa: BLE001 - MILBlob raises RuntimeError / ValueError on bad blobs
            raise ArtifactLoadError(f"{where}: unreadable ({type(e).__name__}: {e})") from e
        dims = value.type.tensorType.dimensions
        whole_bytes = value.type.tensorType.dataType in _WHOLE_BYTE_TYPES  # sub-byte blobs come packed
        want = (int(np.prod([d.constant.size for d in dims])) if whole_bytes and dims
                and all(d.WhichOneof("dimension") == "constant" for d in dims) else None)
        if want is not None and len(data) != want:
            raise ArtifactLoadError(f"{where}: {len(data)} values, the model declares {want}")
        count += 1

    def walk(block: Any) -> None:
        for op in block.operations:
            for key, value in op.attributes.items():
                if value.WhichOneof("value") == "blobFileValue":
                    check(op.outputs[0].name if op.outputs else key, value)
            for inner in op.blocks:
                walk(inner)

    if spec.WhichOneof("Type") == "mlProgram":
        for function in spec.mlProgram.functions.values():
            for block in function.block_specializations.values():
                walk(block)
    return count


def inspect(path: Path) -> ObservedIO:
    spec = _load_spec(Path(path))
    check_weight_blobs(Path(path), spec)
    return ObservedIO(tuple(_feature(f) for f in spec.description.input),
                      tuple(_feature(f) for f in spec.description.output))


def image_color_space(path: Path) -> str:
    """``"RGB"``/``"BGR"``/``"GRAYSCALE"`` of the image input (for tests and verify)."""
    import coremltools as ct

    spec = _load_spec(Path(path))
    for f in spec.description.input:
        if f.type.WhichOneof("Type") == "imageType":
            return ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(f.type.imageType.colorSpace)
    return "none"


class _Runner:
    """Core ML prediction; only on macOS, where coremltools links the Core ML framework."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.meta = meta
        if sys.platform != "darwin":
            raise RuntimeUnavailable(
                f"{self.path.name}: Core ML predict() needs macOS (the Core ML framework); on {sys.platform} "
                "only the spec is checked"
            )
        import coremltools as ct

        try:
            self.model = ct.models.MLModel(str(self.path), compute_units=ct.ComputeUnit.CPU_ONLY)
        except Exception as e:  # noqa: BLE001
            raise ArtifactLoadError(f"{path}: Core ML could not load it ({e})") from e

    def observed_io(self) -> ObservedIO:
        return inspect(self.path)

    def __call__(self, crop: np.ndarray, crop_to_image: np.ndarray | None = None) -> dict[str, np.ndarray]:
        from PIL import Image

        h, w = self.meta["input"]["height"], self.meta["input"]["width"]
        crop = np.asarray(crop)
        if crop.shape != (h, w, 3) or crop.dtype != np.uint8:
            raise ValueError(f"expected a uint8 RGB crop of shape ({h}, {w}, 3), got {crop.dtype} {crop.shape}")
        feeds: dict[str, Any] = {IMAGE_INPUT: Image.fromarray(crop)}  # (H, W, 3) uint8 → RGB
        if self.meta["affine_input"]["present"]:
            if crop_to_image is None:
                raise ValueError(f"{self.path.name} has a crop_to_image input: pass the matrix")
            feeds[AFFINE_INPUT] = np.asarray(crop_to_image, np.float32).reshape(1, 2, 3)
        outs = self.model.predict(feeds)
        return {k: np.asarray(v, dtype=np.float32) for k, v in outs.items()}


def open_runner(path: Path, meta: dict[str, Any]) -> _Runner:
    return _Runner(path, meta)
