"""The report of a quantization run: for the fp32 reference and each quantized artifact, OKS AP
on the validation people (the artifact itself, run in its runtime), artifact size, and parity
with the fp32 model (:class:`mobile_export.parity.ParityReport`: mean keypoint pixels, PCK
agreement, and both again on the fp32 model's most confident half and quarter of keypoints). Written as ``quantization_report.json`` and ``quantization_report.md``
(each to a temp file, then renamed).

AP is measured exactly as the phone computes keypoints: the validation person is cut out of
its image (ground-truth box, the spec's padding, affine warp), the uint8 crop goes through the
artifact, and its crop-pixel keypoints are mapped back into the image. No flip test (the
artifacts have none), so fp32 AP here is the artifact's, not the paper's flip-tested number.

The accuracy gates of int8 against fp32 (:data:`GATES`) are stricter than ``verify``'s int8
parity thresholds: they are what a trained model must keep to ship int8 by default. On
untrained weights (flat SimCC curves) they are meaningless, so the report says which weights
it measured.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from mobile_export.base import Runner
from mobile_export.formats import exporter_for
from mobile_export.manifest import describe_path
from mobile_export.metadata import read_metadata_file, sidecar_path
from mobile_export.parity import ParityReport, coco_crops, measure_parity
from starpose.fileio import atomic_write_json, atomic_write_text
from starpose.processing import apply_affine
from starpose.spec import PoseSpec

from .calibration import CocoSource, person_dataset

__all__ = ["GATES", "Gates", "ReportRow", "QuantizationReport", "artifact_ap", "measure_artifact", "write_report"]

REPORT_JSON = "quantization_report.json"
REPORT_MD = "quantization_report.md"


@dataclass(frozen=True)
class Gates:
    """int8 against fp32 on trained weights: mean keypoint distance (crop pixels, 256-high crop)
    and PCK@0.05 agreement."""

    mean_kpt_px: float = 2.0
    pck_agreement: float = 0.97

    def check(self, parity: ParityReport) -> list[str]:
        limit = self.mean_kpt_px * parity.input_height / 256
        failures = []
        if parity.mean_kpt_px > limit:
            failures.append(f"mean keypoint deviation {parity.mean_kpt_px:.2f} px > {limit:.2f} px")
        if parity.pck_agreement < self.pck_agreement:
            failures.append(f"PCK@0.05 agreement {parity.pck_agreement:.2%} < {self.pck_agreement:.0%}")
        return failures


GATES = Gates()


def _uint8_crop(image: torch.Tensor, spec: PoseSpec) -> np.ndarray:
    """The uint8 HWC crop a :class:`TopDownDataset` item was normalized from (exact: the crop was
    uint8, and ``x * std + mean`` restores it to within float rounding)."""
    x = image.numpy().transpose(1, 2, 0)
    crop = np.rint(x * np.asarray(spec.std, np.float32) + np.asarray(spec.mean, np.float32))
    return np.clip(crop, 0, 255).astype(np.uint8)


def artifact_ap(runner: Runner, source: CocoSource, spec: PoseSpec, *, affine: bool = False) -> dict[str, Any]:
    """OKS AP of ``runner`` on every labelled person of ``source`` (ground-truth boxes)."""
    from starpose.evaluation.oks import coco_keypoint_eval
    from starpose.inference import to_coco_results

    ds = person_dataset(source, spec)
    preds = []
    for i in range(len(ds)):
        item = ds[i]
        mat = item["crop_to_image"].numpy()
        out = runner(_uint8_crop(item["image"], spec), mat if affine else None)
        kp = np.asarray(out["keypoints"], np.float64).reshape(-1, 2)
        image_kp = kp if affine else apply_affine(kp, mat)
        scores = np.asarray(out["scores"], np.float64).reshape(-1)
        scale = item["scale"].numpy()
        preds.append({"keypoints": np.concatenate([image_kp, scores[:, None]], axis=1), "image_id": item["image_id"],
                      "bbox_score": 1.0, "area": float(np.prod(scale) / spec.bbox_padding**2),
                      "ann_id": item["ann_id"]})
    results = to_coco_results(preds, spec)
    metrics = coco_keypoint_eval(source.ann_file, results, spec.sigmas, mode="coco")
    return {"metrics": metrics, "num_people": len(ds)}


@dataclass
class ReportRow:
    """One line of the report: ``label`` (fp32 / int8-ptq / int8-qat ...), the artifact."""

    label: str
    artifact: str
    format: str
    precision: str
    size_bytes: int
    metrics: dict[str, float]
    parity: ParityReport | None
    gate_failures: list[str] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    latency_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "artifact": self.artifact, "format": self.format, "precision": self.precision,
                "size_bytes": self.size_bytes, "metrics": self.metrics,
                "parity": None if self.parity is None else self.parity.to_dict(),
                "gates": None if self.gate_failures is None else {"passed": not self.gate_failures,
                                                                    "failures": self.gate_failures},
                "timings_s": self.timings, "latency_ms": self.latency_ms}


def measure_artifact(
    path: Path, label: str, reference: nn.Module, source: CocoSource, *, gates: Gates | None = GATES,
    timings: dict[str, float] | None = None, crops_json: Path | None = None,
) -> ReportRow:
    """Open ``path`` in its runtime; AP on ``source``, parity with ``reference`` (the fp32 eager
    model) on the crops of ``crops_json`` (default: ``source``), size."""
    path = Path(path)
    exporter = exporter_for(path)
    if exporter is None:
        raise ValueError(f"{path}: not an artifact of a known format")
    meta = read_metadata_file(sidecar_path(path))
    runner = exporter.open_runner(path, meta)
    spec = PoseSpec.from_dict(meta["spec"])
    affine = bool(meta["affine_input"]["present"])
    ap = artifact_ap(runner, source, spec, affine=affine)
    crops = coco_crops(Path(crops_json) if crops_json else source.ann_file, spec, image_dir=source.image_dir)
    parity = measure_parity(runner, reference, meta, crops, artifact=path.name)
    failures = None
    if gates is not None and meta["precision"] == "int8":
        failures = gates.check(parity)
    return ReportRow(label, path.name, meta["format"], meta["precision"], int(describe_path(path)["size"]),
                     ap["metrics"], parity, failures, dict(timings or {}))


@dataclass
class QuantizationReport:
    variant: str
    weights: dict[str, Any]
    validation: str
    rows: list[ReportRow]
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, label: str, fmt: str = "executorch") -> ReportRow | None:
        return next((r for r in self.rows if r.label == label and r.format == fmt), None)

    def to_dict(self) -> dict[str, Any]:
        rows = [r.to_dict() for r in self.rows]
        for r in rows:
            base = self.row("fp32", r["format"]) or self.row("fp32")
            if base is not None and base.size_bytes:
                r["size_vs_fp32"] = round(r["size_bytes"] / base.size_bytes, 4)
        return {"variant": self.variant, "weights": self.weights, "validation": self.validation, "rows": rows,
                "gates": {"mean_kpt_px": GATES.mean_kpt_px, "pck_agreement": GATES.pck_agreement},
                "qat_vs_ptq": self.qat_vs_ptq(), "notes": self.notes, **self.extra}

    def qat_vs_ptq(self) -> dict[str, dict[str, Any]]:
        """Per format with both rows: QAT's AP against PTQ's (the quantization issue asks QAT's AP to
        be at least PTQ's) and the two parity distances."""
        out: dict[str, dict[str, Any]] = {}
        for qat in (r for r in self.rows if r.label == "int8-qat"):
            ptq = self.row("int8-ptq", qat.format)
            if ptq is None or "AP" not in qat.metrics or "AP" not in ptq.metrics:
                continue
            out[qat.format] = {
                "qat_ap": qat.metrics["AP"], "ptq_ap": ptq.metrics["AP"],
                "qat_ap_at_least_ptq": bool(qat.metrics["AP"] >= ptq.metrics["AP"]),
                "qat_mean_kpt_px": None if qat.parity is None else qat.parity.mean_kpt_px,
                "ptq_mean_kpt_px": None if ptq.parity is None else ptq.parity.mean_kpt_px,
            }
        return out

    def markdown(self) -> str:
        d = self.to_dict()
        lines = [f"# Quantization report: {self.variant}", "",
                 f"Weights: {self.weights.get('weights')} ({self.weights.get('weights_source')}). "
                 f"Validation: {self.validation} (ground-truth boxes, no flip).", "",
                 "| run | artifact | size | vs fp32 | AP | AP50 | mean kpt px | PCK@0.05 agr. | gates |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in d["rows"]:
            p = r["parity"]
            gates = "-" if r["gates"] is None else ("pass" if r["gates"]["passed"] else "FAIL: " + "; ".join(r["gates"]["failures"]))
            lines.append(
                f"| {r['label']} | {r['artifact']} | {r['size_bytes'] / 1e6:.2f} MB | {r.get('size_vs_fp32', 1.0):.2f}x "
                f"| {r['metrics'].get('AP', float('nan')):.3f} | {r['metrics'].get('AP50', float('nan')):.3f} "
                f"| {p['mean_kpt_px']:.2f} | {p['pck_agreement']:.1%} | {gates} |"
            )
        if d["qat_vs_ptq"]:
            lines += ["", "QAT against PTQ (AP should be at least PTQ's):", ""]
            for fmt, c in d["qat_vs_ptq"].items():
                verdict = "at least PTQ's" if c["qat_ap_at_least_ptq"] else "BELOW PTQ's"
                px = ("" if c["qat_mean_kpt_px"] is None or c["ptq_mean_kpt_px"] is None else
                      f"; mean kpt px vs fp32 {c['qat_mean_kpt_px']:.2f} (QAT) / {c['ptq_mean_kpt_px']:.2f} (PTQ)")
                lines.append(f"- {fmt}: QAT AP {c['qat_ap']:.3f} vs PTQ {c['ptq_ap']:.3f}: {verdict}{px}")
        banded = [r for r in d["rows"] if r["parity"] and r["parity"].get("by_reference_score") and r["precision"] != "fp32"]
        if banded:
            fractions = [b["fraction"] for b in banded[0]["parity"]["by_reference_score"]]
            lines += ["", "Agreement on the keypoints the fp32 model is surest of (ranked by its own score; "
                          "not gated): mean kpt px / PCK@0.05 agreement.", "",
                      "| run | artifact | " + " | ".join(f"top {f:.0%}" for f in fractions) + " |",
                      "|---|---|" + "---:|" * len(fractions)]
            for r in banded:
                cells = [f"{b['mean_kpt_px']:.2f} / {b['pck_agreement']:.1%} (score >= {b['min_score']:.2f})"
                         for b in r["parity"]["by_reference_score"]]
                lines.append(f"| {r['label']} | {r['artifact']} | " + " | ".join(cells) + " |")
        timing_rows = [(r["label"], r["format"], r["timings_s"]) for r in d["rows"] if r["timings_s"]]
        if timing_rows:
            lines += ["", "Seconds per stage (prepare, calibrate or train, convert, lower):", ""]
            for label, fmt, t in timing_rows:
                lines.append(f"- {label} / {fmt}: " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()))
        if self.notes:
            lines += ["", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines) + "\n"


def write_report(report: QuantizationReport, out_dir: Path, log: Callable[[str], None] = lambda m: None) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    jpath, mpath = out_dir / REPORT_JSON, out_dir / REPORT_MD
    atomic_write_json(jpath, report.to_dict(), indent=2)
    atomic_write_text(mpath, report.markdown())
    log(f"report: {jpath}, {mpath}")
    return jpath, mpath
