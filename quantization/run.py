"""End-to-end runs behind the CLI: ``starpose-mobile qat`` (fp32 reference, PTQ and QAT
artifacts, and the report comparing them) and ``starpose-mobile export --precision int8``."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch.nn as nn

from mobile_export.base import RuntimeUnavailable
from mobile_export.metadata import WeightsInfo

from .calibration import CocoSource
from .export import QuantizedExport, export_quantized, formats_for_scheme
from .qat import QATConfig, QATResult, load_qat, train_qat
from .report import QuantizationReport, ReportRow, measure_artifact, write_report
from .schemes import SCHEMES, Scheme, with_int8_depthwise

__all__ = ["QATRun", "run_qat", "export_int8", "check_qat_source"]

DEFAULT_FORMATS = ("executorch", "tflite")


@dataclass
class QATRun:
    out_dir: Path
    qat: QATResult
    artifacts: dict[str, list[Path]] = field(default_factory=dict)  # label → paths
    report: QuantizationReport | None = None
    report_paths: tuple[Path, Path] | None = None


def _model_files(paths: list[Path]) -> list[Path]:
    return [p for p in paths if not p.name.endswith(".json")]


def run_qat(
    model: nn.Module,
    weights: WeightsInfo,
    data: CocoSource,
    out_dir: str | Path,
    cfg: QATConfig,
    *,
    val: CocoSource | None = None,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    ptq: bool = True,
    report: bool = True,
    calibration_limit: int | None = None,
    resume: bool = False,
    int8_depthwise: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> QATRun:
    """QAT of ``model`` (eager, float weights ``weights``) on ``data`` into ``out_dir``: the QAT
    checkpoint, the int8 artifacts of ``formats`` (QAT, and PTQ unless ``ptq=False``), the fp32
    artifacts they are compared with, and the report (validation on ``val``, default ``data``)."""
    from mobile_export.export import export_formats
    from mobile_export.formats import FORMATS
    from mobile_export.source import deploy_network

    out_dir = Path(out_dir)
    val = val or data
    network = deploy_network(model.eval())
    meta = {"variant": str(getattr(model, "variant", "custom")), "source_weights": weights.name,
            "source_weights_sha256": weights.sha256, "source_weights_kind": weights.source}
    if weights.seed is not None:
        meta["source_weights_seed"] = str(weights.seed)
    schemes = ([SCHEMES["int8-ptq"]] if ptq else []) + [SCHEMES["int8-qat"]]
    if int8_depthwise:
        schemes = [with_int8_depthwise(s) for s in schemes]
    qat = train_qat(network, data, out_dir, cfg, scheme=schemes[-1], checkpoint_meta=meta, resume=resume,
                    progress=progress, log=log)
    log(f"QAT checkpoint: {qat.checkpoint}; eval-mode check: {qat.eval_check.to_dict() if qat.eval_check else '-'}")
    run = QATRun(out_dir, qat)
    timings: dict[str, dict[str, float]] = {}
    fp32_formats = [_runnable_here(FORMATS[f]) for f in formats if "fp32" in FORMATS[f].precisions]
    if fp32_formats:
        log("fp32 reference artifacts")
        paths = export_formats(model, weights, fp32_formats, out_dir, precision="fp32", progress=log)
        run.artifacts["fp32"] = paths
    for scheme in schemes:
        wanted = [f for f in formats if f in formats_for_scheme("all", scheme)]
        job = QuantizedExport(network, weights, scheme, out_dir, calibration=data, calibration_limit=calibration_limit,
                              qat=qat if scheme.train else None, progress=log)
        run.artifacts[scheme.name] = export_quantized(job, wanted)
        for fmt, t in job.timings.items():
            stages = dict(t.stages)
            if scheme.train:
                stages = {**{f"qat_{k}": v for k, v in qat.timings.stages.items()}, **stages}
            stages["total"] = sum(stages.values())
            timings[f"{scheme.name}/{fmt}"] = {k: round(v, 2) for k, v in stages.items()}
    if report:
        run.report = build_report(model, weights, val, run.artifacts, timings, log=log)
        run.report.extra["qat"] = {"config": cfg.to_dict(), "history": qat.history,
                                   "eval_mode_check": qat.eval_check.to_dict() if qat.eval_check else None}
        run.report_paths = write_report(run.report, out_dir, log)
    return run


def _runnable_here(exporter):
    """The fp32 reference of a format as the report compares it: ExecuTorch's XNNPACK program only
    (its Core ML-delegated twin runs only on Apple platforms, and the int8 path is XNNPACK's)."""
    if exporter.name != "executorch":
        return exporter
    from functools import partial

    from mobile_export.executorch import export_executorch

    return dataclasses.replace(exporter, export=partial(export_executorch, backends=("xnnpack",)))


def build_report(
    model: nn.Module, weights: WeightsInfo, val: CocoSource, artifacts: dict[str, list[Path]],
    timings: dict[str, dict[str, float]], *, log: Callable[[str], None] = print,
) -> QuantizationReport:
    """Rows for every artifact that runs on this machine; the others are listed in the notes."""
    rows: list[ReportRow] = []
    notes: list[str] = []
    for label, paths in artifacts.items():
        for path in _model_files(paths):
            fmt = "executorch" if path.suffix == ".pte" else "tflite" if path.suffix == ".tflite" else "coreml"
            log(f"measuring {path.name}")
            try:
                rows.append(measure_artifact(path, label, model, val, timings=timings.get(f"{label}/{fmt}")))
            except RuntimeUnavailable as e:
                notes.append(f"{path.name}: not measured here ({e})")
    return QuantizationReport(str(getattr(model, "variant", "custom")), weights.to_dict(), str(val), rows, notes)


def check_qat_source(extra: dict[str, object], weights: WeightsInfo, path: Path) -> None:
    """A QAT checkpoint must have started from the weights the export names (so that the
    artifact's metadata and ``verify`` refer to the right float model)."""
    sha = extra.get("source_weights_sha256")
    if sha is not None and sha != weights.sha256:
        raise ValueError(
            f"{path}: this QAT checkpoint was trained from weights {extra.get('source_weights')} "
            f"(sha256 {str(sha)[:12]}…), not from {weights.name} (sha256 {weights.sha256[:12]}…); "
            "pass the weights it started from with --weights"
        )


def export_int8(
    model: nn.Module,
    weights: WeightsInfo,
    scheme: Scheme,
    fmt: str,
    out_dir: str | Path,
    *,
    calibration: CocoSource | None,
    qat_checkpoint: Path | None = None,
    calibration_limit: int | None = None,
    affine: bool = False,
    raw: bool = False,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """``starpose-mobile export --precision int8``: one scheme, one format or ``all``."""
    from mobile_export.source import deploy_network

    from .schemes import check_float_modules

    formats = formats_for_scheme(fmt, scheme)
    network = deploy_network(model.eval())
    check_float_modules(network, scheme)
    qat = None
    if scheme.train:
        if qat_checkpoint is None:
            raise ValueError("--scheme qat needs --qat-checkpoint (written by `starpose-mobile qat`)")
        qat, extra = load_qat(qat_checkpoint, network, scheme=scheme)
        check_qat_source(extra, weights, Path(qat_checkpoint))
    elif qat_checkpoint is not None:
        raise ValueError(f"--qat-checkpoint is only used with --scheme qat, not {scheme.name}")
    job = QuantizedExport(network, weights, scheme, Path(out_dir), calibration=calibration,
                          calibration_limit=calibration_limit, qat=qat, affine=affine, raw=raw, progress=log)
    return export_quantized(job, formats)
