"""Accuracy gates of int8 against fp32 on trained weights (slow: minutes of CPU).

Until packaged weights exist (``starpose.models.weights.available_pretrained()``), the weights
are StarPose-t trained on the 12 people of the COCO fixture (no augmentation, so it memorizes
them and its SimCC curves are as peaked as a trained model's); with packaged weights the same
tests run on those. Gates (``quantization.report.GATES``): mean keypoint deviation from fp32
<= 2 px at 256x192 and PCK@0.05 agreement >= 97%, measured on the artifacts in their runtimes.
"""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from conftest import COCO_DIR, COCO_JSON, shared

pytestmark = pytest.mark.slow

import executorch  # noqa: F401  (an extra the test command installs: a broken install fails here)
import pycocotools  # noqa: F401  (an extra the test command installs: a broken install fails here)


@pytest.fixture(scope="session")
def trained_weights(tmp_path_factory):
    from starpose.models.weights import available_pretrained, weights_path

    if "starpose_t" in available_pretrained():
        from safetensors import safe_open

        with safe_open(str(weights_path("starpose_t")), "pt") as f:
            if (f.metadata() or {}).get("status", "release") == "release":
                return weights_path("starpose_t")
    # Interim packaged weights are not accurate enough for the gates to mean anything: train the
    # fixture people instead (the issue: gate on a fixture-trained model until real weights land).
    from starpose.train import TrainConfig
    from starpose.train.loop import train

    cfg = TrainConfig(variant="starpose_t", train_ann=str(shared(COCO_JSON)), train_images=str(shared(COCO_DIR)), epochs=60,
                      batch_size=12, base_lr=5e-3, auto_scale_lr_base_batch=0, warmup_iters=5, lr_steps=(),
                      augment=False, val_interval=0, num_workers=0, seed=0)
    result = train(cfg, tmp_path_factory.mktemp("fixture_train"), progress=False, log=lambda m: None)
    return result.final_weights


def test_ptq_and_qat_pass_the_gates(trained_weights, tmp_path):
    from mobile_export.source import resolve_model
    from quantization.calibration import resolve_coco_source
    from quantization.qat import QATConfig
    from quantization.run import run_qat

    model, info = resolve_model("starpose_t", trained_weights)
    run = run_qat(model, info, resolve_coco_source(shared(COCO_JSON)), tmp_path, QATConfig(epochs=4, batch_size=12, lr=5e-5,
                  augment=False), formats=("executorch",), progress=False, log=lambda m: None)
    report = run.report
    fp32 = report.row("fp32")
    assert fp32.metrics["AP"] > 0.5  # the weights are trained: the gates mean something
    for label in ("int8-ptq", "int8-qat"):
        row = report.row(label)
        assert row.gate_failures == [], (label, row.gate_failures)
        assert row.metrics["AP"] >= fp32.metrics["AP"] - 0.05
        assert row.size_bytes < 0.5 * fp32.size_bytes
    md = (tmp_path / "quantization_report.md").read_text()
    assert sum(1 for line in md.splitlines() if line.startswith("| int8-") and " MB | " in line) == 2
    assert "QAT against PTQ" in md and "surest of" in md
    assert set(report.qat_vs_ptq()) == {"executorch"}


def test_cli_int8_export_then_verify(trained_weights, tmp_path):
    from starpose.cli import main

    runner = CliRunner()
    out = tmp_path / "int8"
    result = runner.invoke(main, ["export", "--format", "executorch", "--precision", "int8", "--weights",
                                  str(trained_weights), "--calib-data", str(shared(COCO_JSON)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    pte = out / "starpose_t_xnnpack_int8_ptq.pte"
    assert pte.is_file()
    result = runner.invoke(main, ["verify", str(out), "--weights", str(trained_weights)])
    assert result.exit_code == 0, result.output
    assert "int8" in result.output and "FAIL" not in result.output
