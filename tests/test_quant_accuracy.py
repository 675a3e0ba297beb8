"""Accuracy gates of int8 against fp32 on trained weights (slow: minutes of CPU).

The gates run on the packaged ``starpose_t`` weights (trained on real people,
``recipes/default_weights``) and on people they never saw: the 100 held-out stock17 people of
``recipes/default_weights/holdout.json`` (human COCO-17 labels, ``../shared/people/stock17``),
calibrated and QAT-trained on 200 of the stock17 people they were trained on. Gates
(``quantization.report.GATES``): mean keypoint deviation from fp32 <= 2 px at 256x192 and
PCK@0.05 agreement >= 97%, measured on the artifacts in their runtimes.

The CLI check (export, then ``verify``) runs on StarPose-t trained on the 12 people of the COCO
fixture (no augmentation, so it memorizes them and its SimCC curves are as peaked as a trained
model's): ``verify`` compares on the fixture crops, where those weights are sure of every point.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import COCO_DIR, COCO_JSON, shared

pytestmark = pytest.mark.slow

import executorch  # noqa: F401  (an extra the test command installs: a broken install fails here)
import pycocotools  # noqa: F401  (an extra the test command installs: a broken install fails here)

HOLDOUT = Path(__file__).resolve().parents[1] / "recipes" / "default_weights" / "holdout.json"
STOCK17 = "people/stock17"


@pytest.fixture(scope="session")
def fixture_trained_weights(tmp_path_factory):
    from starpose.train import TrainConfig
    from starpose.train.loop import train

    cfg = TrainConfig(variant="starpose_t", train_ann=str(shared(COCO_JSON)), train_images=str(shared(COCO_DIR)), epochs=60,
                      batch_size=12, base_lr=5e-3, auto_scale_lr_base_batch=0, warmup_iters=5, lr_steps=(),
                      augment=False, val_interval=0, num_workers=0, seed=0)
    result = train(cfg, tmp_path_factory.mktemp("fixture_train"), progress=False, log=lambda m: None)
    return result.final_weights


def _subset(doc: dict, image_ids: set[int], path: Path) -> Path:
    sub = dict(doc)
    sub["images"] = [im for im in doc["images"] if im["id"] in image_ids]
    sub["annotations"] = [a for a in doc["annotations"] if a["image_id"] in image_ids]
    path.write_text(json.dumps(sub))
    return path


def test_ptq_and_qat_pass_the_gates_on_held_out_people(tmp_path, measured):
    from mobile_export.source import resolve_model
    from quantization.calibration import resolve_coco_source
    from quantization.qat import QATConfig
    from quantization.report import GATES
    from quantization.run import run_qat
    from starpose.data.mix import load_holdout
    from starpose.models.weights import weights_path

    folder = shared(STOCK17)
    doc = json.loads((folder / "person_keypoints.json").read_text())
    held = load_holdout(HOLDOUT)["stock17"]
    seen = sorted(im["id"] for im in doc["images"] if im["id"] not in held)
    calib = set(random.Random(0).sample(seen, 200))
    train_src = resolve_coco_source(_subset(doc, calib, tmp_path / "calib.json"), folder / "images")
    val_src = resolve_coco_source(_subset(doc, held, tmp_path / "val.json"), folder / "images")

    model, info = resolve_model("starpose_t", weights_path("starpose_t"))
    run = run_qat(model, info, train_src, tmp_path / "run", QATConfig(epochs=1, batch_size=16, lr=5e-5), val=val_src,
                  formats=("executorch",), progress=False, log=lambda m: None)
    report = run.report
    fp32 = report.row("fp32")
    measured("fp32 .pte OKS AP on 100 held-out stock17 people", fp32.metrics["AP"])
    assert fp32.metrics["AP"] > 0.5  # the weights find these people: the gates mean something
    for label in ("int8-ptq", "int8-qat"):
        row = report.row(label)
        measured(f"{label} .pte", f"AP {row.metrics['AP']:.4f}, mean keypoint dev {row.parity.mean_kpt_px:.3f} px "
                                  f"(gate {GATES.mean_kpt_px}), PCK@0.05 agreement {row.parity.pck_agreement:.4f} "
                                  f"(gate {GATES.pck_agreement}), {row.size_bytes / fp32.size_bytes:.2f}x fp32 size")
        assert row.gate_failures == [], (label, row.gate_failures)
        assert row.metrics["AP"] >= fp32.metrics["AP"] - 0.05
        assert row.size_bytes < 0.5 * fp32.size_bytes
    md = (tmp_path / "run" / "quantization_report.md").read_text()
    assert sum(1 for line in md.splitlines() if line.startswith("| int8-") and " MB | " in line) == 2
    assert "QAT against PTQ" in md and "surest of" in md
    assert set(report.qat_vs_ptq()) == {"executorch"}


def test_cli_int8_export_then_verify(fixture_trained_weights, tmp_path, measured):
    trained_weights = fixture_trained_weights
    from starpose.cli import main

    runner = CliRunner()
    out = tmp_path / "int8"
    result = runner.invoke(main, ["export", "--format", "executorch", "--precision", "int8", "--weights",
                                  str(trained_weights), "--calib-data", str(shared(COCO_JSON)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    pte = out / "starpose_t_xnnpack_int8_ptq.pte"
    assert pte.is_file()
    result = runner.invoke(main, ["verify", str(out), "--weights", str(trained_weights), "--json", str(tmp_path / "v.json")])
    assert result.exit_code == 0, result.output
    parity = json.loads((tmp_path / "v.json").read_text())["artifacts"][0]["parity"]
    measured("int8 .pte verify on the fixture crops (fixture-trained weights)",
             ", ".join(f"{k} {v:.4g}" for k, v in parity.items() if isinstance(v, float)))
    assert "int8" in result.output and "FAIL" not in result.output
