"""ONNX ``.onnx`` for ONNX Runtime (Android/iOS ``onnxruntime-mobile``, desktop, web).

``torch.onnx.export(dynamo=True)`` (the ``torch.export``-based exporter, opset 18) with named
input ``image`` (uint8 NHWC, like the other tensor formats) and named outputs. fp32 only: ONNX
Runtime's mobile CPU kernels compute in float32. Metadata: the model's ``metadata_props`` entry
``starpose.metadata`` (``session.get_modelmeta().custom_metadata_map`` in every ONNX Runtime API)
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

__all__ = ["export_onnx", "open_runner", "inspect", "read_embedded_metadata"]

NAME = "onnx"
LAYOUT = "NHWC"
OPSET = 18
METADATA_KEY = "starpose.metadata"
_ORT_TYPES = {"tensor(uint8)": "uint8", "tensor(float)": "float32", "tensor(float16)": "float16",
              "tensor(int64)": "int64", "tensor(int32)": "int32"}


def export_onnx(network: nn.Module, out_dir: Path, options: ExportOptions) -> list[Path]:
    """Write ``<stem>.onnx`` and its sidecar; returns the paths."""
    import torch

    with torch.no_grad():
        return _export_onnx(network, out_dir, options)


def _export_onnx(network: nn.Module, out_dir: Path, options: ExportOptions) -> list[Path]:
    import torch

    from .bundle import PoseBundle

    if options.precision != "fp32":
        raise ValueError(f"ONNX export is fp32 only (ONNX Runtime mobile computes in float32); got {options.precision}")
    require("onnxscript", NAME)  # torch.onnx's dynamo exporter is built on it
    onnx = require("onnx", NAME)

    spec = network.spec
    variant = getattr(network, "variant", "custom")
    bundle = PoseBundle(network, spec, layout=LAYOUT, affine=options.affine, raw=options.raw).eval()
    name = artifact_stem(variant, None, options) + ".onnx"
    inputs = [IMAGE_INPUT, AFFINE_INPUT][: 2 if options.affine else 1]
    options.progress(f"onnx: torch.onnx.export (dynamo, opset {OPSET}) → {name}")
    program = torch.onnx.export(bundle, bundle.example_inputs(), dynamo=True, opset_version=OPSET,
                                input_names=inputs, output_names=list(bundle.output_names), verbose=False)
    model = program.model_proto
    meta = build_metadata(
        spec, variant=variant, weights=options.weights, fmt=NAME, precision=options.precision,
        backend="onnxruntime", layout=LAYOUT, affine=options.affine, raw=options.raw,
        runtime={"name": "onnxruntime", "platforms": ["android", "ios", "linux", "macos", "windows", "web"],
                 "opset": OPSET},
    )
    entry = onnx.StringStringEntryProto(key=METADATA_KEY, value=dumps(meta))
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend([*kept, entry])
    model.producer_name = "starpose-mobile"
    with Staging(out_dir) as stage:
        onnx.save_model(model, str(stage.path(name)))
        stage.write_text(sidecar_path(Path(name)).name, dumps(meta))
        return stage.commit()


def read_embedded_metadata(path: Path) -> dict[str, Any] | None:
    onnx = require("onnx", NAME)
    try:
        model = onnx.load(str(path), load_external_data=False)
        # a damaged string field decodes only when read (UnicodeDecodeError)
        text = next((p.value for p in model.metadata_props if p.key == METADATA_KEY), None)
    except Exception as e:  # noqa: BLE001 - protobuf DecodeError and friends
        raise ArtifactLoadError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from e
    if text is None:
        return None
    return parse_metadata(text, f"{path} (metadata_props '{METADATA_KEY}')")


def _session(path: Path) -> Any:
    ort = require("onnxruntime", NAME)
    options = ort.SessionOptions()
    options.intra_op_num_threads = runtime_threads()
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise ArtifactLoadError(f"{path}: ONNX Runtime could not load it ({type(e).__name__}: {e})") from e


def _infos(args: list[Any]) -> tuple[TensorInfo, ...]:
    return tuple(TensorInfo(a.name, tuple(int(d) for d in a.shape), _ORT_TYPES.get(a.type, a.type)) for a in args)


def inspect(path: Path) -> ObservedIO:
    s = _session(Path(path))
    return ObservedIO(_infos(s.get_inputs()), _infos(s.get_outputs()))


class _Runner:
    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.meta = meta
        self.session = _session(self.path)
        self.names = [o.name for o in self.session.get_outputs()]

    def observed_io(self) -> ObservedIO:
        return ObservedIO(_infos(self.session.get_inputs()), _infos(self.session.get_outputs()))

    def __call__(self, crop: np.ndarray, crop_to_image: np.ndarray | None = None) -> dict[str, np.ndarray]:
        feeds = {IMAGE_INPUT: image_array(crop, self.meta)}
        if self.meta["affine_input"]["present"]:
            if crop_to_image is None:
                raise ValueError(f"{self.path.name} has a crop_to_image input: pass the matrix")
            feeds[AFFINE_INPUT] = np.asarray(crop_to_image, np.float32).reshape(1, 2, 3)
        try:
            outs = self.session.run(None, feeds)
        except Exception as e:  # noqa: BLE001
            raise ArtifactLoadError(f"{self.path}: ONNX Runtime failed to run it ({e})") from e
        return {n: np.asarray(o, dtype=np.float32) for n, o in zip(self.names, outs)}


def open_runner(path: Path, meta: dict[str, Any]) -> _Runner:
    return _Runner(path, meta)
