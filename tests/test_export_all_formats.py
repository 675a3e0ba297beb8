"""The whole CLI, every format, both precisions, with raw SimCC outputs and the affine input
(slow: each run exports seven artifacts, several minutes on two cores)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import executorch.exir  # noqa: F401  (an extra the test command installs: a broken install fails here)
import litert_torch  # noqa: F401  (an extra the test command installs: a broken install fails here)

from click.testing import CliRunner  # noqa: E402

from starpose.cli import main  # noqa: E402

pytestmark = pytest.mark.slow


def _export_and_verify(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "models"
    # the person detector (exported by default) has its own tests: tests/test_detector_export.py
    res = CliRunner().invoke(main, ["export", "--format", "all", "--weights", "random", "--no-detector", "--out", str(out),
                                    *args])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["verify", str(out), "--json", str(tmp_path / "report.json")])
    doc = json.loads((tmp_path / "report.json").read_text())
    assert res.exit_code == (0 if doc["ok"] else 1)
    assert doc["ok"], res.output
    return {a["name"]: a for a in doc["artifacts"]}


def test_all_formats_fp32_raw_affine(tmp_path, measured):
    arts = _export_and_verify(tmp_path, "--affine", "--raw-outputs")
    runnable = ["starpose_t_xnnpack_fp32_affine_raw.pte", "starpose_t_fp32_affine_raw.tflite",
                "starpose_t_fp32_affine_raw.pt", "starpose_t_fp32_affine_raw.ptl", "starpose_t_fp32_affine_raw.onnx"]
    assert set(arts) == set(runnable) | {"starpose_t_coreml_fp32_affine_raw.pte", "starpose_t_fp32_affine_raw.mlpackage"}
    for name in runnable:
        p = arts[name]["parity"]
        assert p["passed"], (name, p)
        assert p["raw_max_abs"] < 1e-3 and p["raw_mean_abs"] < 1e-4, (name, p)  # SimCC vectors, float32
        assert p["mean_kpt_px"] < 0.01 and p["argmax_agreement"] >= 0.99, (name, p)
        measured(name, f"raw max |diff| {p['raw_max_abs']:.3g}, mean keypoint dev {p['mean_kpt_px']:.3g} px")


def test_all_formats_fp16(tmp_path, measured):
    arts = _export_and_verify(tmp_path, "--precision", "fp16")
    # TorchScript and ONNX are fp32-only formats: --format all skips them at fp16.
    assert set(arts) == {"starpose_t_xnnpack_fp16.pte", "starpose_t_coreml_fp16.pte", "starpose_t_fp16.tflite",
                         "starpose_t_fp16.mlpackage"}
    for name in ("starpose_t_xnnpack_fp16.pte", "starpose_t_fp16.tflite"):
        p = arts[name]["parity"]
        assert p["precision"] == "fp16" and p["passed"], (name, p)
        measured(name, f"PCK agreement {p['pck_agreement']:.4f}, mean keypoint dev {p['mean_kpt_px']:.3g} px, "
                       f"identical argmax {p['argmax_agreement']:.4f}")
        assert p["pck_agreement"] >= 0.95 and p["mean_kpt_px"] <= 3.0, (name, p)
    # fp16 weights only (float32 compute): TFLite stays essentially exact.
    assert arts["starpose_t_fp16.tflite"]["parity"]["argmax_agreement"] >= 0.99
