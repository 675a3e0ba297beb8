"""Quantized artifacts of one model: the ``QUANTIZED_FORMATS`` table (format → function), run
for a scheme and recorded in the export directory's ``manifest.json`` like every other export.

Sources per scheme:

- post-training schemes quantize the deploy network of the given weights, calibrated on a
  COCO-format folder of person crops (:mod:`quantization.calibration`);
- ``int8-qat`` takes a :class:`~quantization.qat.QATResult` (a fresh run or a checkpoint):
  ExecuTorch gets the converted QAT graph itself; LiteRT and Core ML quantize its trained float
  weights with their own tools.

An artifact's ``model.weights`` metadata names the float weights it was made from (for QAT the
weights the training started from, so that ``starpose-mobile verify`` measures an int8 artifact
against the float model it replaces); the ``quantization`` block names the scheme, the
quantizer, the calibration data and, for QAT, the checkpoint.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch.nn as nn

from mobile_export.base import require
from mobile_export.export import wrote_line
from starpose._quiet import captured, outside
from mobile_export.manifest import file_sha256, update_manifest
from mobile_export.metadata import WeightsInfo, read_metadata_file, sidecar_path

from .calibration import CocoSource, calibration_batches, calibration_loader
from .pt2e import Timings, export_executorch_int8, quantize_ptq
from .schemes import Scheme

__all__ = ["QuantizedExport", "QUANTIZED_FORMATS", "export_quantized", "formats_for_scheme"]


@dataclass
class QuantizedExport:
    """Everything one quantized export needs. ``network`` is the float deploy network;
    ``qat`` the QAT result for the ``int8-qat`` scheme."""

    network: nn.Module
    weights: WeightsInfo
    scheme: Scheme
    out_dir: Path
    calibration: CocoSource | None = None
    calibration_limit: int | None = None
    batch_size: int = 8
    qat: Any = None  # quantization.qat.QATResult
    affine: bool = False
    raw: bool = False
    progress: Callable[[str], None] = lambda message: None
    timings: dict[str, Timings] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.progress = outside(self.progress)  # our own lines reach the terminal from a captured call

    def batches(self):
        if self.calibration is None:
            raise ValueError(f"scheme {self.scheme.name} needs calibration data (a COCO-format folder of people)")
        spec = self.network.spec
        return calibration_batches(calibration_loader(self.calibration, spec, batch_size=self.batch_size,
                                                      limit=self.calibration_limit))

    def float_network(self) -> nn.Module:
        """The float weights the LiteRT / Core ML quantizers start from."""
        if self.scheme.train:
            return self._require_qat().float_network
        return self.network

    def _require_qat(self) -> Any:
        if self.qat is None:
            raise ValueError(f"scheme {self.scheme.name} needs a QAT result (run `starpose-mobile qat` first)")
        return self.qat

    def provenance(self) -> dict[str, Any]:
        if not self.scheme.train:
            return {}
        qat = self._require_qat()
        path = Path(qat.checkpoint)
        return {"qat_checkpoint": path.name, "qat_checkpoint_sha256": file_sha256(path) if path.is_file() else None,
                "qat_history": qat.history[-1:] if qat.history else []}

    def calibration_name(self) -> str:
        # the file's name only: an artifact carries no path of the machine that built it
        return "" if self.calibration is None else Path(self.calibration.ann_file).name


def _executorch(job: QuantizedExport) -> list[Path]:
    require("executorch.exir", "executorch")
    timings = job.timings.setdefault("executorch", Timings())
    if job.scheme.train:
        qnet = job._require_qat().quantized
    else:
        qnet = quantize_ptq(job.network, job.scheme, job.batches(), timings=timings,
                            calibration_source=job.calibration_name())
    return export_executorch_int8(qnet, job.out_dir, weights=job.weights, affine=job.affine, raw=job.raw,
                                  extra=job.provenance(), timings=timings, progress=job.progress)


def _tflite(job: QuantizedExport) -> list[Path]:
    from .litert import export_tflite_int8

    timings = job.timings.setdefault("tflite", Timings())
    # dynamic range needs one forward pass for its weight observers, not calibration data
    dynamic_only = job.scheme.tflite.dynamic and job.calibration is None
    batches = [_random_batch(job.network)] if dynamic_only else job.batches()
    return export_tflite_int8(job.float_network(), job.out_dir, scheme=job.scheme, batches=batches,
                              weights=job.weights, affine=job.affine, raw=job.raw,
                              calibration_source=job.calibration_name(), extra=job.provenance(), timings=timings,
                              progress=job.progress)


def _coreml(job: QuantizedExport) -> list[Path]:
    from .coreml import export_coreml_compressed

    timings = job.timings.setdefault("coreml", Timings())
    with timings.measure("convert+compress"):
        return export_coreml_compressed(job.float_network(), job.out_dir, scheme=job.scheme, weights=job.weights,
                                        affine=job.affine, raw=job.raw, extra=job.provenance(), progress=job.progress)


def _random_batch(network: nn.Module):
    import torch

    spec = network.spec
    return torch.randn(1, 3, spec.input_h, spec.input_w)


QUANTIZED_FORMATS: dict[str, tuple[Callable[[QuantizedExport], list[Path]], tuple[str, ...]]] = {
    # format: (export function, modules it needs)
    "executorch": (_executorch, ("executorch",)),
    "tflite": (_tflite, ("litert_torch", "ai_edge_litert")),
    "coreml": (_coreml, ("coremltools",)),
}


def formats_for_scheme(name: str, scheme: Scheme) -> list[str]:
    """``"all"`` → every format the scheme offers with a quantized path; a name → that format."""
    available = [f for f in QUANTIZED_FORMATS if f in scheme.offers and _has_quantized_path(scheme, f)]
    if name == "all":
        return available
    if name not in available:
        raise ValueError(f"scheme {scheme.name} has no quantized {name} path (it offers: {', '.join(available) or 'none'})")
    return [name]


def _has_quantized_path(scheme: Scheme, fmt: str) -> bool:
    if fmt == "coreml":
        return scheme.coreml is not None and scheme.coreml.weights is not None
    return getattr(scheme, fmt) is not None


def export_quantized(job: QuantizedExport, formats: list[str]) -> list[Path]:
    """Run each format's quantized exporter into ``job.out_dir`` and merge the artifacts into its
    manifest; dependencies of every format are checked before anything is written. What the
    quantizers and converters print is captured per format (:func:`starpose._quiet.captured`)."""
    for fmt in formats:
        formats_for_scheme(fmt, job.scheme)  # raises for a format the scheme has no quantized path to
    with captured("importing the quantized exporters"):
        for fmt in formats:
            for module in QUANTIZED_FORMATS[fmt][1]:
                require(module, fmt)
    written: list[Path] = []
    for fmt in formats:
        written += _export_one(job, fmt)
    return written


def _export_one(job: QuantizedExport, fmt: str) -> list[Path]:
    start = time.perf_counter()
    with captured(f"the int8 {fmt} exporter"):
        paths = QUANTIZED_FORMATS[fmt][0](job)
    seconds = round(time.perf_counter() - start, 2)  # quantize (prepare, calibrate, convert) + lower
    entries: dict[str, dict[str, Any]] = {}
    for p in paths:
        if p.name.endswith(".json"):
            entries[p.name] = {"role": "metadata"}
        else:
            meta = read_metadata_file(sidecar_path(p))
            entries[p.name] = {"role": "model", "format": fmt, "precision": meta["precision"],
                               "backend": meta["backend"], "scheme": job.scheme.name,
                               "metadata": sidecar_path(p).name, "export_seconds": seconds}
    update_manifest(job.out_dir, entries)
    for p in paths:
        if not p.name.endswith(".json"):
            job.progress(wrote_line(p))
    return paths

