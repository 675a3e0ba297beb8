"""PT2E int8 for ExecuTorch's XNNPACK delegate: the deploy form, captured with ``torch.export``,
prepared with a torchao quantizer, calibrated (or trained, see :mod:`quantization.qat`),
converted, wrapped in the shared :class:`~mobile_export.bundle.PoseBundle` and lowered with
``to_edge_transform_and_lower`` + ``XnnpackPartitioner`` into one ``.pte`` that
``executorch.runtime.Runtime`` (and the phones' runtime) runs.

What is quantized is the *deploy form* (:func:`starpose.models.deploy.reparameterize_model`,
NCHW, BatchNorm folded), made int8-ready by :func:`quantization.rewrite.int8_ready`: the released
graph's LayerNorm, ELU, token mean and matmul broadcasts stay outside the XNNPACK delegate,
so its int8 program is slower than fp32. The bundle's uint8 → float cast, normalization and
SimCC decoding stay float around the quantized network.

The graph is captured with a dynamic batch dimension, so that calibration and QAT run batches
and the lowered program is traced at batch 1.
"""
from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn

from mobile_export.base import Staging, require
from mobile_export.bundle import PoseBundle
from mobile_export.metadata import WeightsInfo, build_metadata, dumps, parse_metadata, sidecar_path

from .rewrite import int8_ready
from .schemes import QuantizerSpec, Scheme

__all__ = [
    "QuantizedNetwork",
    "capture",
    "prepare",
    "calibrate",
    "convert",
    "quantize_ptq",
    "int8_metadata",
    "quantized_stem",
    "lower_xnnpack",
    "export_executorch_int8",
    "float_weights",
]

EXECUTORCH_LAYOUT = "NHWC"  # as mobile_export.executorch
METADATA_METHOD = "metadata"  # the constant method mobile_export.executorch reads back
CAPTURE_BATCH = 2  # a dynamic dimension must not be traced at size 1


def _spec_of(network: nn.Module):
    spec = getattr(network, "spec", None)
    if spec is None:
        raise TypeError(f"{type(network).__name__} has no .spec (a StarPose deploy network is expected)")
    return spec


def capture(network: nn.Module) -> torch.fx.GraphModule:
    """``torch.export`` of ``network`` (normalized NCHW float in) with a dynamic batch dimension,
    as the ATen training-IR GraphModule that PT2E prepares."""
    spec = _spec_of(network)
    x = torch.randn(CAPTURE_BATCH, 3, spec.input_h, spec.input_w)
    batch = torch.export.Dim("batch", min=1, max=4096)
    ep = torch.export.export(network, (x,), strict=False, dynamic_shapes=({0: batch},))
    return ep.module()


def prepare(network: nn.Module, qspec: QuantizerSpec) -> torch.fx.GraphModule:
    """The deploy network made int8-ready, captured and prepared with ``qspec``'s quantizer:
    observers for post-training calibration, fake quantization for QAT."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, prepare_qat_pt2e

    ready = int8_ready(network)
    if qspec.qat:
        ready.requires_grad_(True)  # the deploy form is built frozen (inference only)
    gm = capture(ready)
    quantizer = qspec.build()
    return prepare_qat_pt2e(gm, quantizer) if qspec.qat else prepare_pt2e(gm, quantizer)


@torch.no_grad()
def calibrate(prepared: torch.fx.GraphModule, batches: Iterable[torch.Tensor],
              progress: Callable[[int], None] | None = None) -> int:
    """Run normalized crops through the observers; returns how many crops were seen."""
    seen = 0
    for images in batches:
        prepared(images)
        seen += int(images.shape[0])
        if progress is not None:
            progress(seen)
    if seen == 0:
        raise ValueError("calibration saw no images: the calibration loader is empty")
    return seen


def convert(prepared: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """``convert_pt2e`` (weights folded to int8 constants, activations as quantize/dequantize
    pairs); ``.eval()``/``.train()`` are made callable on the result so that the exporters'
    ``bundle.eval()`` works."""
    from torchao.quantization.pt2e import allow_exported_model_train_eval, move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    move_exported_model_to_eval(prepared)
    converted = convert_pt2e(prepared)
    allow_exported_model_train_eval(converted)
    return converted


class QuantizedNetwork(nn.Module):
    """A converted PT2E graph with the attributes the exporters read (``spec``, ``variant``),
    and where it came from (``scheme``, ``quantizer``, ``calibration``)."""

    def __init__(self, graph: torch.fx.GraphModule, source: nn.Module, scheme: Scheme, qspec: QuantizerSpec,
                 calibration: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.graph_module = graph
        self.spec = _spec_of(source)
        self.variant = getattr(source, "variant", "custom")
        self.cfg = getattr(source, "cfg", None)
        self.scheme = scheme
        self.qspec = qspec
        self.calibration = dict(calibration or {})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.graph_module(x)


@dataclass
class Timings:
    """Seconds per stage of one quantization run."""

    stages: dict[str, float] = field(default_factory=dict)

    def measure(self, name: str) -> "_Stage":
        return _Stage(self, name)

    @property
    def total(self) -> float:
        return sum(self.stages.values())

    def to_dict(self) -> dict[str, float]:
        return {**{k: round(v, 2) for k, v in self.stages.items()}, "total": round(self.total, 2)}


class _Stage:
    def __init__(self, timings: Timings, name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        self.timings.stages[self.name] = self.timings.stages.get(self.name, 0.0) + time.perf_counter() - self.t0


def quantize_ptq(
    network: nn.Module,
    scheme: Scheme,
    batches: Iterable[torch.Tensor],
    *,
    qspec: QuantizerSpec | None = None,
    timings: Timings | None = None,
    calibration_source: str = "",
) -> QuantizedNetwork:
    """Post-training static int8 of a deploy network: prepare → calibrate on ``batches``
    (normalized crops) → convert. ``qspec`` defaults to the scheme's ExecuTorch quantizer."""
    qspec = qspec or scheme.executorch
    if qspec is None:
        raise ValueError(f"scheme {scheme.name} has no PT2E quantizer for ExecuTorch")
    if qspec.qat:
        raise ValueError("quantize_ptq takes a post-training quantizer spec; QAT goes through quantization.qat")
    timings = timings if timings is not None else Timings()
    with timings.measure("prepare"):
        prepared = prepare(network, qspec)
    with timings.measure("calibrate"):
        # dynamic: one pass for the weight observers (activations are quantized at run time)
        seen = calibrate(prepared, itertools.islice(iter(batches), 1) if qspec.dynamic else batches)
    with timings.measure("convert"):
        converted = convert(prepared)
    return QuantizedNetwork(converted, network, scheme, qspec,
                            {"source": calibration_source, "crops": seen})


def float_weights(prepared: torch.fx.GraphModule, network: nn.Module) -> nn.Module:
    """The int8-ready float twin of ``network`` carrying the (QAT-trained) float weights of a
    prepared graph: what LiteRT and Core ML quantize with their own tools."""
    twin = int8_ready(network)
    own = twin.state_dict()
    trained = prepared.state_dict()
    missing = [k for k in own if k not in trained]
    if missing:
        raise KeyError(f"the prepared graph lacks {len(missing)} of the network's tensors (e.g. {missing[:3]})")
    twin.load_state_dict({k: trained[k] for k in own})
    return twin.eval().requires_grad_(False)


# --------------------------------------------------------------------------- artifacts


def quantized_stem(variant: str, tag: str | None, scheme: Scheme, affine: bool = False, raw: bool = False) -> str:
    """``starpose_t[_tag]_int8_ptq[_affine][_raw]``: the quantized counterpart of
    :func:`mobile_export.base.artifact_stem`, with the scheme (ptq / qat / dynamic) in the name."""
    parts = [variant] + ([tag] if tag else []) + [scheme.precision, scheme.name.removeprefix("int8-")]
    if affine:
        parts.append("affine")
    if raw:
        parts.append("raw")
    return "_".join(parts)


def int8_metadata(
    network: nn.Module,
    *,
    weights: WeightsInfo,
    scheme: Scheme,
    fmt: str,
    backend: str,
    layout: str,
    affine: bool,
    raw: bool,
    runtime: dict[str, Any],
    quantization: dict[str, Any],
    input_type: str = "tensor",
) -> dict[str, Any]:
    """The shared metadata document (precision ``scheme.precision``) plus a ``quantization``
    block: scheme, quantizer configuration, calibration / training provenance."""
    meta = build_metadata(
        _spec_of(network), variant=getattr(network, "variant", "custom"), weights=weights, fmt=fmt,
        precision=scheme.precision, backend=backend, layout=layout, affine=affine, raw=raw,
        input_type=input_type, runtime=runtime,
    )
    meta["quantization"] = {**scheme.describe(), **quantization}
    return parse_metadata(dumps(meta), f"<new int8 {fmt} metadata>")


def _xnnpack_runtime_note() -> dict[str, Any]:
    return {"name": "executorch", "delegate": "XnnpackBackend", "platforms": ["android", "ios", "linux", "macos"]}


@torch.no_grad()
def lower_xnnpack(qnet: QuantizedNetwork, meta: dict[str, Any], *, affine: bool = False, raw: bool = False) -> bytes:
    """The quantized network inside the uint8 → keypoints bundle, lowered to one XNNPACK ``.pte``
    with the metadata as the constant method ``metadata``."""
    require("executorch.exir", "executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    bundle = PoseBundle(qnet, qnet.spec, layout=EXECUTORCH_LAYOUT, affine=affine, raw=raw).eval()
    ep = torch.export.export(bundle, bundle.example_inputs(), strict=False)
    from mobile_export.executorch import xnnpack_edge_config

    # the same edge settings as the fp32 .pte: the uint8 input cast as the cheap aten._to_copy
    edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()], compile_config=xnnpack_edge_config(),
                                       constant_methods={METADATA_METHOD: json.dumps(meta)})
    return edge.to_executorch().buffer


def export_executorch_int8(
    qnet: QuantizedNetwork,
    out_dir: Path,
    *,
    weights: WeightsInfo,
    affine: bool = False,
    raw: bool = False,
    extra: dict[str, Any] | None = None,
    timings: Timings | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> list[Path]:
    """Write ``<stem>.pte`` and its sidecar JSON (staged, then renamed); returns both paths."""
    name = quantized_stem(qnet.variant, "xnnpack", qnet.scheme, affine, raw) + ".pte"
    meta = int8_metadata(
        qnet, weights=weights, scheme=qnet.scheme, fmt="executorch", backend="xnnpack", layout=EXECUTORCH_LAYOUT,
        affine=affine, raw=raw, runtime=_xnnpack_runtime_note(),
        quantization={**qnet.qspec.describe(), "calibration": qnet.calibration, **(extra or {})},
    )
    progress(f"executorch/xnnpack int8: torch.export + lowering → {name}")
    timings = timings if timings is not None else Timings()
    with timings.measure("lower"):
        program = lower_xnnpack(qnet, meta, affine=affine, raw=raw)
    with Staging(Path(out_dir)) as stage:
        stage.write_bytes(name, program)
        stage.write_text(sidecar_path(Path(name)).name, dumps(meta))
        return stage.commit()

